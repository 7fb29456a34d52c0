"""`tinyrhythm zoo add NAME RUN`: a trained (or quantized) run folder into the model zoo.

The card records the architecture, task, labels, input rate and length, the weights' SHA-256,
sizes, the training config and data (store config hash), and the run's validation and test
metrics as the run measured them (test scored once, after selection on validation), plus the
cross-dataset figures when `scripts/cross_dataset.py --out RUN/cross_dataset.json` measured them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import models, zoo
from ..errors import DataError, TinyRhythmError
from ..paths import sha256_file, write_atomic
from .card import ModelCard, read_json
from .load import load_model

RHYTHM_LIMITS = ("Trained on real ambulatory and handheld ECG of six sources (MITDB, AFTDB, AFPDB, CPSC 2021, "
                 "Icentia11k, CinC 2017) plus NSTDB noise, patient-level 64/16/20 split within each, both leads "
                 "of the two-lead Holter records; input conditioned inside the model (offset, wander and gain "
                 "removed per window). 'normal' means any non-AF rhythm. Not a medical device. Test figures per "
                 "dataset in metrics_by_dataset; few AF patients are in the shared data (5 in MITDB, 80 AFTDB "
                 "excerpts), so AF figures have wide uncertainty; untested on paediatric ECG.")
CINC_LIMITS = ("Trained on about 4,300 CinC 2017 training records (AliveCor handheld, lead I, 300 Hz, 9-61 s), "
               "our own patient-level 64/16/20 split of the 6,822 shared records. Not a medical device. "
               "Untested on Holter or chest-strap ECG, on paediatric ECG and on other leads; "
               "flutter is labelled 'other rhythm' in this task.")


def _pick(r: dict) -> dict:
    out = {k: round(r[k], 4) for k in ("cinc_score", "macro_f1", "af_f1", "accuracy") if k in r}
    out["per_class_f1"] = {c: round(v["f1"], 4) for c, v in r["per_class"].items()}
    out["n"], out["level"] = r["n"], r.get("level", "window")
    return out


def _by_dataset(run: Path) -> dict:
    path = run / "cross_dataset.json"
    if not path.is_file():
        return {}
    cross = read_json(path, "cross-dataset figures")
    out = {"metrics_by_dataset": {k: _pick(v) for k, v in cross.get("window", {}).items()}}
    for key, name in (("long", "long_record_metrics"), ("stress", "noise_stress_test")):
        if cross.get(key):
            out[name] = cross[key]
    return out


def card_for_run(name: str, card: ModelCard, parent: str | None = None, monitor_engine: str | None = None) -> dict:
    """The zoo card of a run folder's card (float PyTorch or ONNX int8), without its weights' hash yet."""
    run = Path(card.card_path).parent
    cfg = read_json(run / "config.json", "run card")
    if card.format not in ("torch", "onnx"):
        raise TinyRhythmError(f"{run}: a {card.format} run cannot ship in the zoo (PyTorch float or ONNX only)")
    metrics = card.metrics
    if "test" not in metrics or "val" not in metrics:
        raise DataError(run / "metrics.json", "missing or without val/test metrics: the run did not finish")
    model = models.from_config({**card.architecture, "num_classes": len(card.classes), "input_length": card.input_length})
    out = {"name": name, "architecture": card.architecture["name"], "task": card.task, "labels": list(card.classes),
           "fs": card.fs, "input_length": card.input_length, "params_table": models.count_params_table(model),
           "macs": models.count_macs(model)}
    if card.format == "onnx":
        out.update({"format": "onnx", "weight_bytes": metrics["weight_bytes"], "weights": f"{name}.onnx",
                    "parent": parent or card.parent, "quantization": card.quantization,
                    "fidelity_val": metrics["fidelity_val"], "parent_metrics": _pick(metrics["parent_test"]),
                    "runtime": "ONNX Runtime (CPUExecutionProvider), int8 QDQ graph"})
    else:
        trainable = sum(p.numel() for p in model.parameters())
        out.update({"params_trainable": trainable, "weight_bytes": 4 * trainable, "weights": f"{name}.pt",
                    "window": cfg.get("window"), "epochs_run": metrics.get("epochs_run"),
                    "train_seconds": metrics.get("train_seconds")})
        if card.architecture.get("mid_channels") or card.conditioning != "none":
            out["model_config"] = card.architecture
        for key in ("parent", "pruning"):
            if key in cfg:
                out[key] = parent if key == "parent" and parent else cfg[key]
    out.update({"metrics": _pick(metrics["test"]), "val_metrics": _pick(metrics["val"]), "split": "test",
                "train": card.train, "store_config_hash": cfg.get("store_config_hash"),
                "aggregation": "mean of window probabilities over half-window hops",
                "limitations": RHYTHM_LIMITS if card.task == "rhythm3" else CINC_LIMITS, **_by_dataset(run)})
    prior = card.prior_correction
    if prior is None and card.format == "onnx" and card.parent and (Path(card.parent) / "config.json").is_file():
        prior = ModelCard.from_run(card.parent).prior_correction  # the int8 head carries its parent's correction
    if prior:
        out["prior_correction"] = prior
    if monitor_engine:
        out["monitor_engine"] = monitor_engine
    if card.rr_context:
        out["rr_context"] = card.rr_context
    return out


def add_to_zoo(name: str, run: str | os.PathLike, parent: str | None = None, monitor_engine: str | None = None,
               zoo_dir: str | os.PathLike | None = None) -> dict:
    """Copy a run's weights into the zoo (cards/NAME.json + weights/NAME.pt|.onnx), both written
    atomically, the card holding the copied file's SHA-256; returns the card."""
    if not name or "/" in name or name.startswith("."):
        raise TinyRhythmError(f"zoo name {name!r}: a plain name such as rhythm-cnn3")
    if monitor_engine not in (None, "windows", "onepass"):
        raise TinyRhythmError(f"--monitor-engine must be windows or onepass, got {monitor_engine!r}")
    run_card = ModelCard.from_run(run)
    card = card_for_run(name, run_card, parent, monitor_engine)
    load_model(run)  # the weights checked against their recorded hashes, as any user would load them
    root = Path(zoo_dir) if zoo_dir else zoo.ZOO_DIR
    (root / "weights").mkdir(parents=True, exist_ok=True)
    (root / "cards").mkdir(parents=True, exist_ok=True)
    dst = root / "weights" / card["weights"]
    write_atomic(dst, (Path(run) / run_card.weights).read_bytes())
    card["sha256"] = sha256_file(dst)
    card["file_bytes"] = dst.stat().st_size
    write_atomic(root / "cards" / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return card
