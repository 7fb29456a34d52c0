"""The one in-memory form every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

# Canonical rhythm labels shared by all readers; tasks (tinyrhythm.tasks) map them to classes.
NSR, AFIB, AFL, OTHER, NOISE = "N", "AFIB", "AFL", "OTHER", "NOISE"
RHYTHM_LABELS = (NSR, AFIB, AFL, OTHER, NOISE)

# Flat-line: the whole record varies by less than this (mV). Real ECG, even a noisy
# one, moves far more; a constant signal is a disconnected lead or a zero-filled file.
FLAT_MV = 1e-3


@dataclass(frozen=True)
class Zone:
    """A rhythm zone: samples start..end inclusive, both at the record's own rate."""

    start: int
    end: int
    label: str  # canonical label (RHYTHM_LABELS)
    note: str = ""  # the label as written in the source, e.g. "(SVTA"


@dataclass
class Record:
    """One recording, one lead.

    `beats` are sample indices and `beat_symbols` their WFDB symbols (N, S, V, Q, ...).
    `label` is set for datasets with one label per record (CinC 2017).
    """

    record_id: str
    patient_id: str
    dataset: str
    fs: float
    signal: np.ndarray  # float32, mV
    zones: list[Zone] = field(default_factory=list)
    beats: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beat_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<U1"))
    label: str | None = None
    path: str = ""
    lead: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


def check_signal(signal: np.ndarray, path: str, *, check_flat: bool = True) -> np.ndarray:
    """Return the signal as float32 or raise DataError for what no model should see."""
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise DataError(path, f"expected one lead, got an array of shape {signal.shape}")
    if signal.size == 0:
        raise DataError(path, "empty record (0 samples)")
    bad = ~np.isfinite(signal)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} NaN/Inf samples, first at sample {int(np.argmax(bad))}")
    check_amplitude(signal, path)
    if check_flat and float(signal.max() - signal.min()) < FLAT_MV:
        raise DataError(path, "flat-line signal (no variation): lead off or empty data")
    return signal.astype(np.float32, copy=False)


AMPLITUDE_MAX_MV = 1e5  # 100 V: no ECG in any unit a file might be in (and float32 overflows at 3e38)


def check_amplitude(signal: np.ndarray, path: str) -> None:
    finite = np.abs(signal[np.isfinite(signal)]) if signal.size else signal
    peak = float(finite.max()) if finite.size else 0.0
    if peak > AMPLITUDE_MAX_MV:
        raise DataError(path, f"implausible amplitude {peak:.3g} mV: not ECG in mV (or the wrong units)")


def check_samples_dtype(dtype: np.dtype, path: str) -> None:
    """Signals are integer or floating-point samples; strings, booleans, complex values,
    records and objects are refused before any conversion warns or guesses."""
    if dtype.kind not in "iuf":
        raise DataError(path, f"unsupported dtype {dtype} (expected integer or floating-point samples)")


# Recordings are accepted between these rates (any real value in between is resampled):
# below 50 Hz a QRS complex is a sample or two; above 10 kHz is not ECG (and would make a
# day's record tens of GB).
FS_RANGE = (50.0, 10_000.0)


def check_fs(fs: float | None, path: str) -> float:
    try:
        fs = None if fs is None else float(fs)
    except (TypeError, ValueError):
        fs = float("nan")
    if fs is None or not np.isfinite(fs) or fs <= 0:
        raise DataError(path, f"missing or invalid sampling rate {fs!r}")
    if not FS_RANGE[0] <= fs <= FS_RANGE[1]:
        raise DataError(path, f"sampling rate {fs:g} Hz outside the supported {FS_RANGE[0]:g}-{FS_RANGE[1]:g} Hz")
    return fs
