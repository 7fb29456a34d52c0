"""Copy trained runs into the package's model zoo with a model card each.

    python scripts/package_zoo.py NAME=RUN_DIR [NAME=RUN_DIR ...]

Zoo v2 (compressed models):
    python scripts/package_zoo.py cnn3-kd=runs/study/cnn3-kd-T4-a0.5-s0 \
        cnn3-kd-int8=runs/zoo2/cnn3-kd-int8 cnn3-int8=runs/zoo2/cnn3-int8

The card records the architecture, task, labels, input rate and length, the weights'
SHA-256, sizes, the training config and data (store config hash), and the run's
validation and test metrics as measured by the training run (test scored once, after
model selection on validation).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tinyrhythm import models
from tinyrhythm.zoo import CARDS_DIR, WEIGHTS_DIR, sha256

RHYTHM_LIMITS = ("Trained on real ambulatory and handheld ECG of six sources (MITDB, AFTDB, AFPDB, CPSC 2021, "
                 "Icentia11k, CinC 2017) plus NSTDB noise, patient-level 64/16/20 split within each, both leads "
                 "of the two-lead Holter records; input conditioned inside the model (offset, wander and gain "
                 "removed per window). 'normal' means any non-AF rhythm. Not a medical device. Test figures per "
                 "dataset in metrics_by_dataset; few AF patients are in the shared data (5 in MITDB, 80 AFTDB "
                 "excerpts), so AF figures have wide uncertainty; untested on paediatric ECG.")
LIMITS = ("Trained on {n_train} CinC 2017 training records (AliveCor handheld, lead I, 300 Hz, 9-61 s), "
          "our own patient-level 64/16/20 split of the 6,822 shared records. Not a medical device. "
          "Untested on Holter or chest-strap ECG, on paediatric ECG and on other leads; "
          "flutter is labelled 'other rhythm' in this task.")


def card_for(name: str, run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    arch = cfg["model"]["name"]
    model = models.from_config(cfg["model"])
    trainable = sum(p.numel() for p in model.parameters())

    return {
        "name": name,
        "architecture": arch,
        "task": cfg["task"]["name"],
        "labels": cfg["classes"],
        "fs": cfg["fs"],
        "input_length": cfg["input_length"],
        "params_table": models.count_params_table(model),
        "params_trainable": trainable,
        "macs": models.count_macs(model),
        "weight_bytes": 4 * trainable,
        "weights": f"{name}.pt",
        "metrics": _pick(metrics["test"]),
        "val_metrics": _pick(metrics["val"]),
        "split": "test",
        "train": cfg["train"],
        "store_config_hash": cfg["store_config_hash"],
        "window": cfg["window"],
        "epochs_run": metrics.get("epochs_run"),
        "train_seconds": metrics.get("train_seconds"),
        **({"model_config": cfg["model"]} if cfg["model"].get("mid_channels")
           or cfg["model"].get("conditioning", "none") != "none" else {}),
        **({k: cfg[k] for k in ("parent", "pruning") if k in cfg}),
        "aggregation": "mean of window probabilities over half-window hops",
        "limitations": _limits(cfg),
        **_by_dataset(run),
    }


def _limits(cfg: dict) -> str:
    return RHYTHM_LIMITS if cfg["task"]["name"] == "rhythm3" else LIMITS.format(n_train="about 4,300")


def _by_dataset(run: Path) -> dict:
    """Cross-dataset test figures (scripts/cross_dataset.py --out RUN/cross_dataset.json), if measured."""
    path = run / "cross_dataset.json"
    if not path.is_file():
        return {}
    cross = json.loads(path.read_text())
    out = {"metrics_by_dataset": {k: _pick(v) for k, v in cross["window"].items()}}
    if cross.get("long"):
        out["long_record_metrics"] = cross["long"]
    if cross.get("stress"):
        out["noise_stress_test"] = cross["stress"]
    return out


def card_for_quantized(name: str, run: Path) -> dict:
    """Card of a quantized run (ONNX): weight_bytes is the int8 storage of all its constants."""
    cfg = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    model = models.from_config(cfg["model"])
    parent = cfg["parent"]
    return {
        "name": name, "architecture": cfg["model"]["name"], "format": "onnx", "task": cfg["task"]["name"],
        "labels": cfg["classes"], "fs": cfg["fs"], "input_length": cfg["input_length"],
        "params_table": models.count_params_table(model), "macs": models.count_macs(model),
        "weight_bytes": metrics["weight_bytes"], "weights": f"{name}.onnx",
        "parent": parent, "quantization": cfg["quantization"], "fidelity_val": metrics["fidelity_val"],
        "metrics": _pick(metrics["test"]), "val_metrics": _pick(metrics["val"]),
        "parent_metrics": _pick(metrics["parent_test"]), "split": "test", "train": cfg["train"],
        "store_config_hash": cfg["store_config_hash"],
        "runtime": "ONNX Runtime (CPUExecutionProvider), int8 QDQ graph",
        "aggregation": "mean of window probabilities over half-window hops",
        "limitations": _limits(cfg),
        **_by_dataset(run),
    }


def _pick(r):
    out = {k: round(r[k], 4) for k in ("cinc_score", "macro_f1", "af_f1", "accuracy") if k in r}
    out["per_class_f1"] = {c: round(v["f1"], 4) for c, v in r["per_class"].items()}
    out["n"], out["level"] = r["n"], r.get("level", "window")
    return out


def main(argv: list[str]) -> None:
    WEIGHTS_DIR.mkdir(exist_ok=True)
    CARDS_DIR.mkdir(exist_ok=True)
    names = {str(Path(item.split("=", 1)[1])): item.split("=", 1)[0] for item in argv}
    for item in argv:
        name, run = item.split("=", 1)
        run = Path(run)
        quantized = json.loads((run / "config.json").read_text()).get("format") == "onnx"
        card = card_for_quantized(name, run) if quantized else card_for(name, run)
        dst = WEIGHTS_DIR / card["weights"]
        shutil.copyfile(run / ("model.onnx" if quantized else "model.pt"), dst)
        if card.get("parent") in names:  # a parent packaged alongside: name it by its zoo name
            card["parent"] = names[card["parent"]]
        card["sha256"] = sha256(dst)
        card["file_bytes"] = dst.stat().st_size
        (CARDS_DIR / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
        print(f"{name}: {card['params_table']} params, test CinC {card['metrics'].get('cinc_score')}, AF F1 {card['metrics'].get('af_f1')}, "
              f"macro F1 {card['metrics']['macro_f1']}")


if __name__ == "__main__":
    main(sys.argv[1:])
