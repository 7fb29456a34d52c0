"""Classifying whole recordings with a loaded model (tinyrhythm.runtime.load_model).

A recording is cut into windows by `windows.labelling.record_starts` (half-window hops from
its start, the rule record-level evaluation scores) and classified by the mean of the
windows' class probabilities. A recording shorter than a window is zero-padded to one window.
Where the model card's `rr_context` has record offsets, each window's probabilities are first
weighed with the RR features of the beats within 15 s of its centre (`runtime.rr_context`),
and the record offsets decide the mean (README, "RR context").
"""

from __future__ import annotations

import numpy as np

from .runtime import LoadedModel, load_model  # noqa: F401  (the names scripts import from here)
from .runtime.rr_context import context_features
from .windows.beats import detect_beats
from .windows.labelling import record_starts
from .windows.resample import resample


def windows_and_starts(signal: np.ndarray, fs: float, target_fs: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """([n, length] windows of the (resampled) signal, their `record_starts` at target_fs)."""
    x = resample(signal, fs, target_fs)
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    starts = record_starts(len(x), length)
    return np.stack([x[s : s + length] for s in starts]), starts


def record_windows(signal: np.ndarray, fs: float, target_fs: float, length: int) -> np.ndarray:
    """[n, length] windows of the (resampled) signal at `record_starts`."""
    return windows_and_starts(signal, fs, target_fs, length)[0]


def record_fusion(lm: LoadedModel, rr_context: bool = True):
    """The card's RR context fusion where it decides whole recordings, else None."""
    fusion = lm.card.rr_fusion if rr_context else None
    return fusion if fusion is not None and fusion.record_offsets is not None else None


def predict_signals(lm: LoadedModel, signals: list[tuple[np.ndarray, float]], batch: int = 2048,
                    rr_context: bool = True) -> np.ndarray:
    """Class probabilities [n_records, n_classes], windows of many records batched together."""
    cut = [windows_and_starts(s, fs, lm.fs, lm.input_length) for s, fs in signals]
    wins = [w for w, _ in cut]
    counts = np.array([len(w) for w in wins])
    if not len(wins):
        return np.zeros((0, len(lm.classes)), np.float32)
    p = lm.predict_proba(np.concatenate(wins), batch)
    fusion = record_fusion(lm, rr_context)
    if fusion is not None:
        out, ends = [], np.cumsum(counts)
        for (s, fs), (_, starts), end in zip(signals, cut, ends):
            centres = (starts + lm.input_length / 2) / lm.fs
            feats = context_features(detect_beats(s, fs) / fs, centres, fusion.context_s)
            out.append(fusion.record_probabilities(p[end - len(starts): end], feats))
        return np.stack(out).astype(np.float32)
    owner = np.repeat(np.arange(len(wins)), counts)
    out = np.zeros((len(wins), p.shape[1]))
    np.add.at(out, owner, p)
    return (out / counts[:, None]).astype(np.float32)
