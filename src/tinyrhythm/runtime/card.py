"""The model card: one description of a trained model, whatever made it.

A training run writes `config.json`, the zoo ships `cards/NAME.json`, `export` writes
`export_report.json`; they grew different keys ("classes" or "labels", "model" or
"architecture" + "model_config", "task" as a dict or a name). `ModelCard` reads all three,
checks them before anything is sized or built from them, and gives the rest of the package
one schema (`ModelCard.to_dict()`), so no caller looks in two places for the training recipe.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError
from .rr_context import RRContext

FORMATS = ("torch", "onnx", "fbgemm", "tflite")


def read_json(path: Path, what: str) -> dict:
    """A JSON object from a card file, or one line naming the file and the problem."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, f"{what} missing") from None
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(path, f"malformed {what} (not JSON: {str(exc)[:100]})") from None
    if not isinstance(d, dict):
        raise DataError(path, f"malformed {what} (not a JSON object)")
    return d


@dataclass(frozen=True)
class ModelCard:
    """What a trained model is: its file format, architecture, classes, input and provenance.

    format: torch (float PyTorch), onnx (ONNX Runtime float/int8/fp16), fbgemm (PyTorch int8),
    tflite; architecture: the models.from_config dict (a zoo card may name only a registry
    model; None where only a graph was kept);
    weights: the model file's name in its folder; sha256: the model file's hash where the card
    records one (run folders record theirs per file in `weights_sha256`, checked by
    tinyrhythm.checkpoint); source: run, zoo or export."""

    name: str
    format: str
    task: str
    classes: tuple[str, ...]
    fs: float
    input_length: int
    architecture: dict | None = None
    conditioning: str = "none"
    train: dict | None = None
    parent: str | None = None
    metrics: dict = field(default_factory=dict)
    macs: int | None = None  # multiply-accumulates per window
    weights: str | None = None
    sha256: str | None = None
    quantization: dict | None = None
    # The per-class logit offsets folded into the head after training (evaluate.scoring.correct_priors).
    prior_correction: dict | None = None
    monitor_engine: str = "windows"
    # RR context fusion (runtime.rr_context) for the monitor and `predict`, fitted on validation windows.
    rr_context: dict | None = None
    source: str = "run"
    card_path: str = ""  # the file this card was read from, named in errors

    @property
    def logit_offsets(self) -> list[float] | None:
        """The per-class offsets of the prior correction folded into the head, if any."""
        return (self.prior_correction or {}).get("logit_offsets")

    @property
    def rr_fusion(self) -> RRContext | None:
        """The card's RR context fusion, if it has one (checked when the card was read)."""
        return RRContext.from_card(self.rr_context, len(self.classes), self.card_path) if self.rr_context else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return d

    # -- readers ----------------------------------------------------------------------
    @classmethod
    def from_run(cls, folder: str | Path) -> "ModelCard":
        """A run folder's card (config.json; metrics.json where present)."""
        folder = Path(folder)
        path = folder / "config.json"
        if not path.is_file():
            raise DataError(folder, "not a run folder (config.json missing)")
        meta = read_json(path, "run card")
        fmt = meta.get("format") or "torch"
        if fmt not in ("torch", "onnx", "fbgemm"):
            raise DataError(path, f"run card 'format' must be onnx or fbgemm when given, got {fmt!r}")
        model = meta.get("model")
        if fmt != "onnx" and not isinstance(model, dict):
            raise DataError(path, "run card 'model' section missing or not an object")
        task = meta.get("task")
        task = task.get("name") if isinstance(task, dict) else task
        metrics = {}
        if (folder / "metrics.json").is_file():
            try:
                metrics = read_json(folder / "metrics.json", "metrics file")
            except DataError:
                metrics = {}  # figures, not what the model computes: a damaged file costs only them
        weights = {"torch": "model.pt", "onnx": "model.onnx", "fbgemm": "prepared.pt"}[fmt]
        return cls._checked(path, name=folder.name, format=fmt, task=task, classes=meta.get("classes"),
                            fs=meta.get("fs"), input_length=meta.get("input_length"),
                            architecture=model if isinstance(model, dict) else None, train=meta.get("train"),
                            parent=meta.get("parent"), metrics=metrics, weights=weights, sha256=meta.get("sha256"),
                            quantization=meta.get("quantization"), monitor_engine=meta.get("monitor_engine"),
                            prior_correction=metrics.get("prior_correction"), macs=metrics.get("macs"),
                            rr_context=meta.get("rr_context"), source="run")

    @classmethod
    def from_zoo(cls, card: dict, path: Path) -> "ModelCard":
        """A shipped card (zoo/cards/NAME.json, already parsed)."""
        arch = card.get("model_config") or ({"name": card["architecture"]} if card.get("architecture") else None)
        return cls._checked(path, name=card.get("name"), format=card.get("format") or "torch", task=card.get("task"),
                            classes=card.get("labels"), fs=card.get("fs"), input_length=card.get("input_length"),
                            architecture=arch, train=card.get("train"), parent=card.get("parent"),
                            metrics=card.get("metrics") or {}, weights=card.get("weights"), sha256=card.get("sha256"),
                            quantization=card.get("quantization"), monitor_engine=card.get("monitor_engine"),
                            prior_correction=card.get("prior_correction"), macs=card.get("macs"),
                            rr_context=card.get("rr_context"), source="zoo")

    @classmethod
    def from_export(cls, folder: str | Path, file: str) -> "ModelCard":
        """One form of an `export` folder (export_report.json beside model-int8.tflite/.onnx)."""
        folder = Path(folder)
        path = folder / "export_report.json"
        if not path.is_file():
            raise DataError(folder / file, "no export_report.json beside it: its classes, rate and window "
                                           "length are unknown (load the export folder `tinyrhythm export` wrote)")
        rep = read_json(path, "export report")
        form = (rep.get("forms") or {}).get(file)
        if not isinstance(form, dict):
            raise DataError(path, f"the export report lists no form {file!r}")
        fmt = "tflite" if file.endswith(".tflite") else "onnx"
        return cls._checked(path, name=f"{folder.name}/{file}", format=fmt, task=rep.get("task"),
                            classes=rep.get("classes"), fs=rep.get("fs"), input_length=rep.get("input_length"),
                            parent=rep.get("model"), weights=file, sha256=form.get("sha256"), macs=rep.get("macs"),
                            rr_context=rep.get("rr_context"), source="export",
                            metrics={k: form[k] for k in ("argmax_agreement", "sqnr_db", "max_abs_diff") if k in form})

    @classmethod
    def _checked(cls, path: Path, **kw) -> "ModelCard":
        classes = kw["classes"]
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise DataError(path, f"card 'classes' must be a list of class names, got {classes!r}")
        fs = kw["fs"]
        if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not math.isfinite(fs) or not 1 <= fs <= 10_000:
            raise DataError(path, f"card 'fs' must be a sampling rate in Hz, got {fs!r}")
        n = kw["input_length"]
        if isinstance(n, bool) or not isinstance(n, int) or not 16 <= n <= 1 << 20:
            raise DataError(path, f"card 'input_length' must be a window length in samples, got {n!r}")
        if kw["format"] not in FORMATS:
            raise DataError(path, f"card 'format' {kw['format']!r} is none of {', '.join(FORMATS)}")
        arch = kw.get("architecture")
        if arch is not None and not isinstance(arch, dict):
            raise DataError(path, "card architecture is not an object")
        engine = kw.get("monitor_engine") or "windows"
        if engine not in ("windows", "onepass"):
            raise DataError(path, f"card 'monitor_engine' must be windows or onepass, got {engine!r}")
        train = kw.get("train")
        rr = kw.get("rr_context")
        if rr is not None:
            RRContext.from_card(rr, len(classes), path)
        return cls(name=str(kw["name"]), format=kw["format"], task=str(kw["task"] or ""), classes=tuple(classes),
                   fs=float(fs), input_length=n, architecture=arch,
                   conditioning=(arch or {}).get("conditioning") or (train or {}).get("conditioning") or "none",
                   train=train if isinstance(train, dict) else None, parent=kw.get("parent"),
                   metrics=kw.get("metrics") or {}, macs=kw.get("macs"), weights=kw.get("weights"), sha256=kw.get("sha256"),
                   quantization=kw.get("quantization"), prior_correction=kw.get("prior_correction"),
                   monitor_engine=engine, rr_context=rr, source=kw["source"],
                   card_path=str(path))
