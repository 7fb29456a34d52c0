"""EDF and EDF+ recordings (what many wearables and Holter systems export), read with pyedflib.

One signal at a time, chosen by index or label, converted to mV from the file's physical
dimension; EDF+ annotation channels are not signals. Read in pieces, so a day-long file
streams like a WFDB record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .record import check_fs

EDF_SUFFIXES = (".edf",)
_UNITS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "": 1.0}


@dataclass
class EdfSignal:
    name: str
    fs: float
    n_samples: int
    label: str
    start_time: str | None
    read: Callable[[int, int], np.ndarray]  # samples a..b-1 in mV


def _reader(path: Path):
    import pyedflib

    try:
        return pyedflib.EdfReader(str(path))
    except OSError as exc:
        raise DataError(path, f"not a readable EDF/EDF+ file ({str(exc).strip()[:160]})") from None


def open_edf(path: str | os.PathLike, lead: int | str | None = None) -> EdfSignal:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    f = _reader(path)
    try:
        labels = [s.strip() for s in f.getSignalLabels()]
        if not labels:
            raise DataError(path, "EDF file holds no signals")
        k = _select(labels, lead, path)
        fs = check_fs(float(f.getSampleFrequency(k)), str(path))
        n = int(f.getNSamples()[k])
        if n <= 0:
            raise DataError(path, f"signal {labels[k]!r} holds no samples")
        unit = f.getPhysicalDimension(k).strip()
        scale = _UNITS.get(unit.lower())
        if scale is None:
            raise DataError(path, f"signal {labels[k]!r} is in unsupported units {unit!r} (expected mV, uV or V)")
        try:
            start = f.getStartdatetime().strftime("%Y-%m-%dT%H:%M:%S")
        except (ValueError, OSError):
            start = None
    finally:
        f.close()

    def read(a: int, b: int) -> np.ndarray:
        r = _reader(path)
        try:
            return r.readSignal(k, start=a, n=b - a) * scale
        finally:
            r.close()

    return EdfSignal(path.stem, fs, n, labels[k], start, read)


def edf_signals(path: str | os.PathLike) -> list[tuple[str, bool]]:
    """(label, whether its units are mV, uV or V) of every signal of an EDF/EDF+ file."""
    f = _reader(Path(path))
    try:
        return [(f.getLabel(k).strip(), f.getPhysicalDimension(k).strip().lower() in _UNITS)
                for k in range(f.signals_in_file)]
    finally:
        f.close()


def read_edf(path: str | os.PathLike, lead: int | str | None = None) -> tuple[np.ndarray, float, str]:
    """(whole signal in mV, sampling rate, signal label)."""
    e = open_edf(path, lead)
    return e.read(0, e.n_samples), e.fs, e.label


def _select(labels: list[str], lead: int | str | None, path: Path) -> int:
    if lead is None:
        return 0
    if isinstance(lead, int) or str(lead).lstrip("-").isdigit():
        k = int(lead)
        if 0 <= k < len(labels):
            return k
    else:
        low = [s.lower() for s in labels]
        if str(lead).strip().lower() in low:
            return low.index(str(lead).strip().lower())
    raise DataError(path, f"lead {lead!r} does not exist; the file's signals: {', '.join(labels)}")
