"""Classifying whole recordings with a loaded model (tinyrhythm.runtime.load_model).

A recording is cut into windows by `windows.labelling.record_starts` (half-window hops from
its start, the rule record-level evaluation scores) and classified by the mean of the
windows' class probabilities. A recording shorter than a window is zero-padded to one window.
"""

from __future__ import annotations

import numpy as np

from .runtime import LoadedModel, load_model  # noqa: F401  (the names scripts import from here)
from .windows.labelling import record_starts
from .windows.resample import resample


def record_windows(signal: np.ndarray, fs: float, target_fs: float, length: int) -> np.ndarray:
    """[n, length] windows of the (resampled) signal at `record_starts`."""
    x = resample(signal, fs, target_fs)
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    return np.stack([x[s : s + length] for s in record_starts(len(x), length)])


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
