"""Classifying whole recordings with a loaded model (tinyrhythm.runtime.load_model).

A recording longer than one window is cut into windows at half-window hops (the last
window aligned to the end, so no part of the signal is left out) and classified by the
mean of the windows' class probabilities. A recording shorter than a window is
zero-padded to one window.
"""

from __future__ import annotations

import numpy as np

from .runtime import LoadedModel, load_model  # noqa: F401  (the names scripts import from here)
from .windows.resample import resample


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


def predict_signals(lm: LoadedModel, signals: list[tuple[np.ndarray, float]], batch: int = 2048) -> np.ndarray:
    """Class probabilities [n_records, n_classes], windows of many records batched together."""
    wins = [record_windows(s, fs, lm.fs, lm.input_length) for s, fs in signals]
    counts = np.array([len(w) for w in wins])
    if not len(wins):
        return np.zeros((0, len(lm.classes)), np.float32)
    p = lm.predict_proba(np.concatenate(wins), batch)
    owner = np.repeat(np.arange(len(wins)), counts)
    out = np.zeros((len(wins), p.shape[1]))
    np.add.at(out, owner, p)
    return (out / counts[:, None]).astype(np.float32)
