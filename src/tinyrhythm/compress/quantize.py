"""Quantization of a trained float model, executed for real and measured against its parent.

Methods:
- `ptq`: post-training static int8 in ONNX Runtime (QDQ or QOperator), weights per tensor or
  per channel, activations calibrated on training windows with MinMax, percentile or entropy.
- `fp16`: float16 weights and activations in ONNX (half the bytes, no calibration).
- `fbgemm`: post-training static int8 in PyTorch (FX graph mode, `fbgemm` engine).
- `qat`: quantization-aware training (FX, fake quantization, fine-tuned from the parent),
  converted to int8 and run with `fbgemm`.
Every result records its fidelity to the parent on real validation windows: SQNR of the
logits and argmax agreement, so a broken engine or kernel shows up as a number.
"""

from __future__ import annotations

import contextlib
import io
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_weights, record_hash
from ..errors import TinyRhythmError
from ..evaluate.scoring import score_split
from ..models import count_macs
from ..paths import sha256_file
from ..runtime.fbgemm import (ENGINE, convert_torch, fx_friendly, prepare_torch, torch_int8_bytes,  # noqa: F401
                              torch_latency_ms)
from ..runtime.ort import INPUT_NAME, OrtModule, export_onnx, latency_ms, weight_bytes
from ..tasks import get_task
from ..train.config import TrainConfig, training_store
from ..train.loop import train
from ..paths import write_json_atomic
from ..windows.store import WindowStore
from . import float_parent

METHODS = ("ptq", "fp16", "fbgemm", "qat")
CALIBRATIONS = ("minmax", "percentile", "entropy")
FORMATS = ("qdq", "qoperator")


@dataclass
class QuantizeConfig:
    method: str = "ptq"
    per_channel: bool = True
    calibration: str = "percentile"
    format: str = "qdq"
    calibration_windows: int = 1024  # class-balanced sample of training windows
    # 7-bit weights: ONNX Runtime's u8 x s8 kernels on x86 without VNNI sum pairs of products
    # in int16 and can saturate; with reduce_range they cannot, so the model computes the exact
    # integer arithmetic (what the generated C reproduces bit for bit).
    reduce_range: bool = False
    seed: int = 0
    qat_epochs: int = 8  # QAT fine-tuning from the parent
    qat_lr: float = 3e-4
    threads: int = 1

    def check(self) -> None:
        if self.method not in METHODS:
            raise TinyRhythmError(f"unknown quantization method {self.method!r} (known: {', '.join(METHODS)})")
        if self.calibration not in CALIBRATIONS:
            raise TinyRhythmError(f"unknown calibration {self.calibration!r} (known: {', '.join(CALIBRATIONS)})")
        if self.format not in FORMATS:
            raise TinyRhythmError(f"unknown ONNX quantization format {self.format!r} (known: {', '.join(FORMATS)})")
        if self.method != "fp16" and self.calibration_windows < 1:
            raise TinyRhythmError(f"int8 quantization needs calibration data: --calibration-windows must be >= 1, "
                                  f"got {self.calibration_windows}")


def calibration_windows(store: WindowStore, n: int, seed: int) -> np.ndarray:
    """[n, 1, length] training windows, class-balanced, so rare rhythms set ranges too."""
    idx = store.indices("train")
    if not len(idx):
        raise TinyRhythmError(f"{store.path}: no training windows to calibrate on")
    w = store.sample_weights("train")
    rng = np.random.default_rng(seed)
    pick = rng.choice(idx, size=min(n, len(idx)), replace=False, p=w / w.sum())
    return store.batch(np.sort(pick))[0][:, None, :].astype(np.float32)


def validation_windows(store: WindowStore, n: int, seed: int) -> np.ndarray:
    """[n, 1, length] random validation windows: where fidelity is checked (never test, never calibration data)."""
    idx = store.indices("val")
    rng = np.random.default_rng(seed)
    return store.batch(np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False)))[0][:, None, :]


def fidelity(parent: torch.nn.Module, child: torch.nn.Module, x: np.ndarray, batch: int = 512) -> dict:
    """SQNR (dB) of the child's logits against the parent's, and how often their argmax agrees."""
    with torch.no_grad():
        f = np.concatenate([parent(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])
        q = np.concatenate([child(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])
    noise = float(((f - q) ** 2).sum())
    sqnr = float("inf") if noise == 0 else 10 * np.log10(float((f ** 2).sum()) / noise)
    return {"sqnr_db": round(sqnr, 2), "argmax_agreement": round(float((f.argmax(1) == q.argmax(1)).mean()), 4),
            "max_abs_diff": round(float(np.abs(f - q).max()), 5), "windows": int(len(x))}


# --- ONNX Runtime ------------------------------------------------------------------------

class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an array of windows."""

    def __init__(self, x: np.ndarray, batch: int = 64):
        self.batches = iter([x[i:i + batch] for i in range(0, len(x), batch)])

    def get_next(self):
        b = next(self.batches, None)
        return None if b is None else {INPUT_NAME: b}

    def rewind(self):  # not needed by quantize_static, part of the protocol
        pass


def float_prefix_nodes(path: Path) -> list[str]:
    """Nodes of the model's input conditioning (everything before the first Conv): they stay
    float, so the quantized graph starts at the conditioned signal, whose range is fixed by
    the conditioning (and the generated C does them in float in tr_quantize)."""
    import onnx

    names = []
    for n in onnx.load(str(path)).graph.node:
        if n.op_type == "Conv":
            break
        names.append(n.name)
    return names


def quantize_onnx(float_path: Path, out_path: Path, cfg: QuantizeConfig, calib: np.ndarray | None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    tmp = out_path.with_name(out_path.name + ".tmp.onnx")
    if cfg.method == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True)
        onnx.save(model, str(tmp))
    else:
        pre = out_path.with_name("preprocessed.tmp.onnx")
        quant_pre_process(str(float_path), str(pre))
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[cfg.calibration]
        import logging

        logging.getLogger().setLevel(logging.ERROR)  # per-node chatter about BatchNorm axes
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress to stdout
            quantize_static(str(pre), str(tmp), _Reader(calib), nodes_to_exclude=float_prefix_nodes(pre),
                            quant_format=QuantFormat.QDQ if cfg.format == "qdq" else QuantFormat.QOperator,
                            per_channel=cfg.per_channel, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=method, reduce_range=cfg.reduce_range)
        pre.unlink(missing_ok=True)
    os.replace(tmp, out_path)


# --- PyTorch (FX graph mode, fbgemm) ----------------------------------------------------


# --- the command -------------------------------------------------------------------------

def quantize(parent: str, out: str | os.PathLike, cfg: QuantizeConfig, store: str | None = None,
             quiet: bool = False, force: bool = False) -> dict:
    """Quantize a run folder or zoo model into the run folder `out`; returns its metrics."""
    cfg.check()
    torch.set_num_threads(max(1, cfg.threads))
    lm, out = float_parent(parent, out, force, "quantized")
    try:
        ws = training_store(lm, store)
    except TinyRhythmError as exc:
        if cfg.method == "fp16":
            raise
        raise TinyRhythmError(f"no calibration data for {parent}: {exc}") from None
    calib = calibration_windows(ws, cfg.calibration_windows, cfg.seed) if cfg.method != "fp16" else None
    # Fidelity is measured on validation windows: never on the test split, never on calibration data.
    check_x = validation_windows(ws, 2048, cfg.seed + 1)

    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    parent_model = lm.model.eval()
    t0 = time.perf_counter()
    info: dict = {}
    if cfg.method in ("ptq", "fp16"):
        export_onnx(parent_model, work / "float.onnx", lm.input_length)
        quantize_onnx(work / "float.onnx", work / "model.onnx", cfg, calib)
        child = OrtModule(work / "model.onnx", threads=cfg.threads)
        info["format"] = "onnx"
        info["weight_bytes"] = weight_bytes(work / "model.onnx")["total"]
        info["float_weight_bytes"] = weight_bytes(work / "float.onnx")["total"]
        info["latency_ms"] = round(latency_ms(work / "model.onnx", lm.input_length), 4)
        info["float_latency_ms"] = round(latency_ms(work / "float.onnx", lm.input_length), 4)
        info["sha256"] = sha256_file(work / "model.onnx")
    else:
        prepared = prepare_torch(parent_model, lm.input_length, qat=cfg.method == "qat")
        if cfg.method == "fbgemm":
            with torch.no_grad():
                for i in range(0, len(calib), 128):
                    prepared(torch.from_numpy(calib[i:i + 128]))
        else:
            _qat_finetune(prepared, lm, ws, cfg, work, quiet)
        child = convert_torch(prepared)
        torch.save(prepared.state_dict(), work / "prepared.pt")
        torch.save(parent_model.state_dict(), work / "parent.pt")
        info["format"] = "fbgemm"
        info["weight_bytes"] = torch_int8_bytes(child)
        info["latency_ms"] = round(torch_latency_ms(child, lm.input_length), 4)
        info["float_latency_ms"] = round(torch_latency_ms(parent_model, lm.input_length), 4)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    fid = fidelity(parent_model, child, check_x)
    result = {
        "parent": str(parent), "method": cfg.method, **info, "macs": count_macs(parent_model),
        "fidelity_val": fid,
        "val": score_split(child, ws, "val", torch.device("cpu")),
        "test": score_split(child, ws, "test", torch.device("cpu")),
        "parent_val": score_split(parent_model, ws, "val", torch.device("cpu")),
        "parent_test": score_split(parent_model, ws, "test", torch.device("cpu")),
    }
    meta = {
        "format": info["format"], "quantization": dataclasses.asdict(cfg), "parent": str(parent),
        "model": {"name": (lm.card.architecture or {}).get("name"), **parent_model.config.to_dict()},
        "task": get_task(lm.task).to_dict(), "classes": lm.classes, "fs": lm.fs,
        "input_length": lm.input_length, "train": lm.card.train, "store": str(ws.path),
        "store_config_hash": ws.manifest["config_hash"], "sha256": info.get("sha256"),
    }
    write_json_atomic(work / "config.json", meta)
    for weights in ("prepared.pt", "parent.pt"):
        if (work / weights).is_file():
            record_hash(work / weights)
    write_json_atomic(work / "metrics.json", result)
    (work / "float.onnx").unlink(missing_ok=True)
    if out.exists():
        out.rmdir()
    os.replace(work, out)
    return result


def _qat_finetune(prepared, lm, ws: WindowStore, cfg: QuantizeConfig, work: Path, quiet: bool) -> None:
    """Fine-tune the fake-quantized model with the parent's own training recipe, shorter and
    at a lower learning rate; the best epoch by validation macro F1 is kept."""
    base = lm.card.train or {}
    tcfg = TrainConfig.from_dict({**base, "store": str(ws.path), "epochs": cfg.qat_epochs, "lr": cfg.qat_lr,
                                  "schedule": "cosine", "seed": cfg.seed, "threads": cfg.threads, "init": "",
                                  "teacher": "", "patience": cfg.qat_epochs})
    train(tcfg, work / "qat", quiet=quiet, model=prepared)
    prepared.load_state_dict(load_weights(work / "qat" / "model.pt"))
