"""Loading a trained model (run folder or zoo name) and classifying whole recordings.

A recording longer than one window is cut into windows at half-window hops (the last
window aligned to the end, so no part of the signal is left out) and classified by the
mean of the windows' class probabilities. A recording shorter than a window is
zero-padded to one window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import models
from .checkpoint import load_weights
from .errors import DataError, TinyRhythmError
from .windows.resample import resample


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    classes: list[str]
    fs: float
    input_length: int
    meta: dict

    @property
    def task(self) -> str:
        return self.meta["task"]["name"]


def read_run_card(cfg_path: Path) -> dict:
    """A run folder's config.json, checked before anything is sized or built from it."""
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(cfg_path, f"malformed run card (not JSON: {str(exc)[:100]})") from None
    if not isinstance(meta, dict):
        raise DataError(cfg_path, "malformed run card (not a JSON object)")
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(cfg_path, f"run card 'classes' must be a list of class names, got {classes!r}")
    fs = meta.get("fs")
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not np.isfinite(fs) or not 1 <= fs <= 10_000:
        raise DataError(cfg_path, f"run card 'fs' must be a sampling rate in Hz, got {fs!r}")
    n = meta.get("input_length")
    if isinstance(n, bool) or not isinstance(n, int) or not 16 <= n <= 1 << 20:
        raise DataError(cfg_path, f"run card 'input_length' must be a window length in samples, got {n!r}")
    if meta.get("format") not in ("onnx", "fbgemm") and not isinstance(meta.get("model"), dict):
        raise DataError(cfg_path, "run card 'model' section missing or not an object")
    return meta


def load_run(path: str | os.PathLike) -> LoadedModel:
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise DataError(path, "not a run folder (config.json missing)")
    meta = read_run_card(cfg_path)
    if meta.get("format") in ("onnx", "fbgemm"):
        from .compress.quantize import load_quantized

        model = load_quantized(path, meta)
        return LoadedModel(path.name, model, meta["classes"], float(meta["fs"]), int(meta["input_length"]), meta)
    try:
        model = models.from_config(meta["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(cfg_path, f"invalid model section ({exc})") from None
    try:
        model.load_state_dict(load_weights(path / "model.pt"))
    except RuntimeError as exc:
        raise DataError(path / "model.pt", f"weights do not fit model {meta['model'].get('name', '?')} ({str(exc).splitlines()[0]})") from None
    model.eval()
    return LoadedModel(path.name, model, meta["classes"], float(meta["fs"]), int(meta["input_length"]), meta)


def load_model(name_or_path: str | os.PathLike) -> LoadedModel:
    """A run folder, or the name of a shipped zoo model."""
    p = Path(name_or_path)
    if p.is_dir():
        return load_run(p)
    from . import zoo

    if str(name_or_path) in zoo.names():
        return zoo.load(str(name_or_path))
    raise TinyRhythmError(f"{name_or_path}: neither a run folder nor a zoo model (zoo: {', '.join(zoo.names()) or 'empty'})")


def record_windows(signal: np.ndarray, fs: float, target_fs: float, length: int) -> np.ndarray:
    """[n, length] windows at half-window hops covering the whole (resampled) signal."""
    x = resample(signal, fs, target_fs)
    if len(x) <= length:
        return np.pad(x, (0, length - len(x)))[None, :]
    hop = length // 2
    starts = list(range(0, len(x) - length + 1, hop))
    if starts[-1] != len(x) - length:
        starts.append(len(x) - length)
    return np.stack([x[s : s + length] for s in starts])


@torch.no_grad()
def predict_signals(lm: LoadedModel, signals: list[tuple[np.ndarray, float]], batch: int = 2048) -> np.ndarray:
    """Class probabilities [n_records, n_classes], windows of many records batched together."""
    wins = [record_windows(s, fs, lm.fs, lm.input_length) for s, fs in signals]
    counts = np.array([len(w) for w in wins])
    if not len(wins):
        return np.zeros((0, len(lm.classes)), np.float32)
    x = np.concatenate(wins).astype(np.float32)
    probs = []
    for i in range(0, len(x), batch):
        probs.append(torch.softmax(lm.model(torch.from_numpy(x[i : i + batch]).unsqueeze(1)), dim=1).numpy())
    p = np.concatenate(probs)
    owner = np.repeat(np.arange(len(wins)), counts)
    out = np.zeros((len(wins), p.shape[1]))
    np.add.at(out, owner, p)
    return (out / counts[:, None]).astype(np.float32)
