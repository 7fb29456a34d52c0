"""`tinyrhythm export MODEL --format onnx --out DIR`: deployable files plus a report that proves
they give the PyTorch model's answers on real windows."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError

FORMATS = ("onnx",)


def _check_windows(lm, store: str | None, n: int = 1024) -> np.ndarray:
    from ..evaluate.run import store_for

    ws = store_for(lm, store)
    idx = ws.indices("val")
    rng = np.random.default_rng(0)
    return ws.batch(np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False)))[0][:, None, :]


def export(model: str, fmt: str, out: str | os.PathLike, force: bool = False, store: str | None = None,
           calibration: str = "percentile") -> dict:
    """Write `out/model.onnx` (float) and `out/model-int8.onnx` with `out/export_report.json`."""
    from ..compress.quantize import QuantizeConfig, calibration_windows, fidelity, quantize_onnx
    from ..evaluate.run import store_for
    from ..inference import load_model
    from ..models import TinyRhythmCNN, count_macs
    from .onnx import OrtModule, export_onnx, latency_ms, weight_bytes

    if fmt not in FORMATS:
        raise TinyRhythmError(f"unknown export format {fmt!r} (available: {', '.join(FORMATS)})")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise TinyRhythmError(f"{out}: exists and is not empty (use --force to replace it)")
    lm = load_model(model)
    x = _check_windows(lm, store)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report: dict = {"model": model, "classes": lm.classes, "fs": lm.fs, "input_length": lm.input_length,
                    "input": "ecg [batch, 1, input_length] float32, mV", "output": "logits [batch, classes]",
                    "check_windows": int(len(x)), "check_split": "val", "forms": {}}
    if isinstance(lm.model, TinyRhythmCNN):
        export_onnx(lm.model, work / "model.onnx", lm.input_length)
        cfg = QuantizeConfig(method="ptq", calibration=calibration)
        calib = calibration_windows(store_for(lm, store), cfg.calibration_windows, cfg.seed)
        quantize_onnx(work / "model.onnx", work / "model-int8.onnx", cfg, calib)
        reference, report["macs"] = lm.model, count_macs(lm.model)
        report["reference"] = "PyTorch float32"
    elif isinstance(lm.model, OrtModule):  # an int8 zoo model: ship it as it is
        shutil.copyfile(lm.model.path, work / "model-int8.onnx")
        parent = lm.meta.get("parent") or lm.meta.get("card", {}).get("parent")
        if not parent:
            raise TinyRhythmError(f"{model}: ONNX model without a float parent to check it against")
        reference = load_model(parent).model
        report["reference"] = f"float parent {parent}"
    else:
        raise TinyRhythmError(f"{model}: a PyTorch int8 (fbgemm) run has no ONNX form; export its float parent")
    for name in ("model.onnx", "model-int8.onnx"):
        path = work / name
        if not path.is_file():
            continue
        fid = fidelity(reference, OrtModule(path), x)
        report["forms"][name] = {"weight_bytes": weight_bytes(path)["total"], "file_bytes": path.stat().st_size,
                                 "latency_ms_batch1_1thread": round(latency_ms(path, lm.input_length), 4),
                                 "max_abs_diff": fid["max_abs_diff"], "argmax_agreement": fid["argmax_agreement"],
                                 "sqnr_db": fid["sqnr_db"]}
    (work / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(work, out)
    return report
