"""Signals from the files a user points a model at: WFDB records, CinC .mat/.hea, EDF/EDF+,
one-column CSV and .npy (these two with an explicit sampling rate), or folders of them."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from .edf import EDF_SUFFIXES, read_edf
from .record import check_fs, check_samples_dtype, check_signal
from .wfdb_io import read_signal, record_base

WFDB_SUFFIXES = (".hea", ".mat", ".dat")
ARRAY_SUFFIXES = (".csv", ".npy")


def expand(paths: list[str | os.PathLike]) -> list[Path]:
    """Files to read: folders become their records (.hea, else .csv/.npy), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = (sorted(p.glob("*.hea")) or sorted(q for q in p.iterdir() if q.suffix.lower() in EDF_SUFFIXES)
                     or sorted(q for q in p.iterdir() if q.suffix in ARRAY_SUFFIXES))
            if not found:
                raise DataError(p, "folder holds no records (.hea, .edf, .csv or .npy)")
            out.extend(found)
        elif p.suffix in WFDB_SUFFIXES:
            out.append(Path(record_base(p) + ".hea"))
        elif p.suffix in ARRAY_SUFFIXES or p.suffix.lower() in EDF_SUFFIXES:
            out.append(p)
        elif not p.exists() and p.with_name(p.name + ".hea").is_file():  # a WFDB record name, as wfdb takes it
            out.append(p.with_name(p.name + ".hea"))
        elif not p.exists():
            raise DataError(p, "no such file or folder")
        else:
            raise DataError(p, f"unsupported file type {p.suffix!r} (expected .hea, .mat, .dat, .edf, .csv, .npy or a folder)")
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def read_array(path: Path, fs: float | None, lead: int | None) -> tuple[np.ndarray, float]:
    if fs is None:
        raise DataError(path, "a .csv or .npy signal needs its sampling rate: pass --fs")
    check_fs(fs, str(path))
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with warnings.catch_warnings():  # numpy warns on empty files; the checks below say it in one line
            warnings.simplefilter("ignore")
            if path.suffix == ".npy":
                x = load_npy(path)
            else:
                with open(path, encoding="utf-8") as f:
                    first = f.readline()
                skip = 0 if first.strip() and all(_is_number(v) for v in first.replace(";", ",").split(",")) else 1
                x = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable signal file ({str(exc).splitlines()[0][:160]})") from None
    check_samples_dtype(x.dtype, str(path))
    if x.ndim > 2:
        raise DataError(path, f"expected a 1-D signal or a (samples, leads) array, got shape {x.shape}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        k = lead or 0
        if x.shape[1] == 1 and k == 0:
            x = x[:, 0]
        elif 0 <= k < x.shape[1]:
            x = x[:, k]
        else:
            raise DataError(path, f"lead {k} does not exist; the file has {x.shape[1]} column(s)")
    return check_signal(x, str(path)), float(fs)


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """A .npy file's array without running pickled code (object arrays are refused)."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":  # np.load would otherwise try the file as a pickle
            raise DataError(path, "unreadable signal file (not in NumPy .npy format)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(path, "unsupported dtype object (pickled data is refused)") from None
        raise


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_any(path: Path, fs: float | None = None, lead: int | str | None = None) -> tuple[str, np.ndarray, float]:
    """(record name, signal in mV as float32, sampling rate)."""
    if path.suffix in ARRAY_SUFFIXES:
        signal, rate = read_array(path, fs, None if lead is None else int(lead))
        return path.stem, signal, rate
    if path.suffix.lower() in EDF_SUFFIXES:
        if fs is not None:
            raise DataError(path, "--fs applies to .csv/.npy files only; an EDF header gives its own rate")
        signal, rate, _ = read_edf(path, lead)
        return path.stem, check_signal(signal, str(path)), rate
    signal, rate, _ = read_signal(path, lead)
    return Path(record_base(path)).name, signal, rate
