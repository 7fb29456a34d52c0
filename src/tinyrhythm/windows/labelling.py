"""Cutting a record into fixed-length windows and giving each window one label.

The rule (documented in the README):

1. The record is resampled to `fs`; windows of `length` samples start every `hop`.
2. For each window, count the fraction of its samples inside zones of each rhythm label.
   If one label covers at least `purity` of the window, the window gets that label.
3. Noise: in datasets whose unzoned spans are noise (Icentia11k, where everything the
   annotators left out of a rhythm zone is undefined 'Q' beats), a window with at least
   `purity` of its samples outside every zone is NOISE when at least `noise_q_fraction`
   of the beats inside it are 'Q' beats, or when it holds no beat at all.
4. Every other window (a rhythm change inside it, a mixed window) is left out.
5. A record shorter than one window is zero-padded at its end to one window if it
   holds at least `min_pad_fraction` of a window (`short="pad"`), else skipped; with
   `short="skip"` it is always skipped. The tail after the last full window is dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ..datasets.record import NOISE, RHYTHM_LABELS, Record
from ..errors import TinyRhythmError
from .resample import resample


@dataclass(frozen=True)
class WindowConfig:
    fs: float = 62.5
    length: int = 513
    hop: int = 513
    purity: float = 0.9
    noise_q_fraction: float = 0.5
    short: str = "pad"  # "pad" or "skip"
    min_pad_fraction: float = 0.5

    def __post_init__(self):
        if self.length < 1 or self.hop < 1:
            raise TinyRhythmError(f"window length and hop must be positive, got {self.length} and {self.hop}")
        if not 0.5 < self.purity <= 1.0:
            raise TinyRhythmError(f"purity must be in (0.5, 1], got {self.purity}")
        if self.short not in ("pad", "skip"):
            raise TinyRhythmError(f"short must be 'pad' or 'skip', got {self.short!r}")
        if not 0 < self.min_pad_fraction <= 1:
            raise TinyRhythmError(f"min_pad_fraction must be in (0, 1], got {self.min_pad_fraction}")
        if self.fs <= 0:
            raise TinyRhythmError(f"window sampling rate must be positive, got {self.fs}")

    @property
    def seconds(self) -> float:
        return self.length / self.fs

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _zone_codes(record: Record, n: int) -> np.ndarray:
    """Per-sample rhythm label code at the record's rate (-1 outside every zone)."""
    codes = np.full(n, -1, dtype=np.int8)
    for z in record.zones:
        codes[z.start : z.end + 1] = RHYTHM_LABELS.index(z.label)
    return codes


def label_windows(record: Record, starts_native: np.ndarray, ends_native: np.ndarray, cfg: WindowConfig,
                  unzoned_noise: bool) -> np.ndarray:
    """Canonical label code (index into RHYTHM_LABELS) per window, -1 = left out.

    Windows are given by their native-rate sample spans [start, end).
    """
    n = len(record.signal)
    codes = _zone_codes(record, n)
    labels = np.full(len(starts_native), -1, dtype=np.int8)
    if not len(starts_native):
        return labels
    ends_c = np.minimum(ends_native, n)
    span = np.maximum(ends_c - starts_native, 1)  # zero padding of a short record does not count
    # Per-label cumulative counts: coverage of any span is then two lookups.
    best_frac = np.zeros(len(starts_native))
    for k in range(len(RHYTHM_LABELS)):
        csum = np.concatenate([[0], np.cumsum(codes == k, dtype=np.int64)])
        frac = (csum[ends_c] - csum[starts_native]) / span
        better = frac > best_frac
        labels[better & (frac >= cfg.purity)] = k
        best_frac = np.maximum(best_frac, frac)
    if unzoned_noise:
        csum = np.concatenate([[0], np.cumsum(codes == -1, dtype=np.int64)])
        unzoned = (csum[ends_c] - csum[starts_native]) / span
        beats = np.asarray(record.beats)
        is_q = np.concatenate([[0], np.cumsum(np.asarray(record.beat_symbols) == "Q", dtype=np.int64)])
        lo = np.searchsorted(beats, starts_native, side="left")
        hi = np.searchsorted(beats, ends_c, side="left")
        n_beats = hi - lo
        n_q = is_q[hi] - is_q[lo]
        q_ok = (n_beats == 0) | (n_q >= cfg.noise_q_fraction * np.maximum(n_beats, 1))
        labels[(labels == -1) & (unzoned >= cfg.purity) & q_ok] = RHYTHM_LABELS.index(NOISE)
    return labels


def make_windows(record: Record, cfg: WindowConfig, unzoned_noise: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows float32 [n, length], canonical label codes int8 [n], starts at cfg.fs [n]).

    Windows whose label is -1 are kept here so callers can count them; stores drop them.
    """
    x = resample(record.signal, record.fs, cfg.fs)
    n = len(x)
    if n < cfg.length:
        if cfg.short == "skip" or n < cfg.min_pad_fraction * cfg.length:
            return np.zeros((0, cfg.length), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int64)
        x = np.pad(x, (0, cfg.length - n))
        n = cfg.length
    starts = np.arange(0, n - cfg.length + 1, cfg.hop, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(x, cfg.length)[starts]
    scale = record.fs / cfg.fs
    s_nat = np.floor(starts * scale).astype(np.int64)
    e_nat = np.floor((starts + cfg.length) * scale).astype(np.int64)
    labels = label_windows(record, s_nat, e_nat, cfg, unzoned_noise)
    return np.ascontiguousarray(windows, dtype=np.float32), labels, starts


def record_starts(n: int, length: int) -> np.ndarray:
    """The one windowing rule for classifying a whole record, shared by `predict` and the
    record-level scores of `evaluate`: windows at half-window hops from the record's start
    (a record shorter than a window is one zero-padded window). The record-level figures a
    card reports are therefore exactly what `predict` does."""
    if n <= length:
        return np.zeros(1, np.int64)
    return np.arange(0, n - length + 1, length // 2, dtype=np.int64)


def on_record_grid(starts: np.ndarray, length: int) -> np.ndarray:
    """Which of a store's window starts (every `hop` samples, hop dividing half a window) are
    `record_starts` windows of their record: the starts at multiples of half a window."""
    return np.asarray(starts) % (length // 2) == 0
