"""Long recordings read in chunks, so memory stays flat whatever their length.

Unlike `files.read_any`, which refuses a record with NaNs (a model must not see them),
a stream hands them on: monitoring marks such stretches unreadable instead of failing
the whole Holter day. Invalid WFDB samples (the format's -32768 marker) become NaN, and
a signal file shorter than its header declares is read up to where it ends, the missing
tail reported in `notes` and treated as a gap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import wfdb

from ..errors import DataError
from .files import ARRAY_SUFFIXES, WFDB_SUFFIXES, load_npy
from .record import check_amplitude, check_fs, check_samples_dtype
from .edf import EDF_SUFFIXES, edf_signals, open_edf
from .wfdb_io import mv_scale, open_header, record_base, samples_in_file



@dataclass
class SignalStream:
    name: str
    fs: float
    n_samples: int  # samples we can deliver (a truncated file's tail is not counted)
    declared_samples: int  # what the header says
    lead: str
    path: str
    _read: Callable[[int, int], np.ndarray]
    notes: list[str] = field(default_factory=list)
    # Clock time of the first sample where the file says it: ISO "YYYY-MM-DDTHH:MM:SS" or,
    # with a time and no date (WFDB allows it), "HH:MM:SS".
    start_time: str | None = None

    @property
    def duration_s(self) -> float:
        return self.declared_samples / self.fs

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples start..stop-1 in mV as float64, NaN where invalid or beyond the data."""
        start, stop = max(0, start), min(stop, self.declared_samples)
        out = np.full(max(0, stop - start), np.nan)
        have = min(stop, self.n_samples)
        if have > start:
            out[: have - start] = self._read(start, have)
        return out

    def inverted(self) -> SignalStream:
        """The same recording with its sign flipped: a lead wired or a patch stuck on the other
        way round, put the right way up before analysis."""
        read = self._read
        return replace(self, lead=f"{self.lead} (inverted)" if self.lead else "inverted",
                       _read=lambda start, stop: -read(start, stop))

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        for s in range(0, self.declared_samples, size):
            yield s, self.read(s, s + size)


def open_stream(path: str | os.PathLike, fs: float | None = None, lead: int | str | None = None,
                invert: bool = False) -> SignalStream:
    """The recording as a stream; `invert`: its lead is known to be reversed (`SignalStream.inverted`)."""
    stream = _open(Path(path), fs, lead)
    return stream.inverted() if invert else stream


ALL_LEADS = "all"  # `--lead all`: every ECG signal of a recording, weighed together by the monitor


def open_streams(path: str | os.PathLike, fs: float | None = None, invert: bool = False) -> list[SignalStream]:
    """Every ECG signal of a recording as streams on one clock (`--lead all`): the signals in
    mV, uV or V at the first one's rate and length. Others (an accelerometer, a respiration
    belt, a signal at another rate) are left out, each with a note on the first stream."""
    p = Path(path)
    if p.is_dir() or not (p.exists() or Path(record_base(p) + ".hea").is_file()):
        return [open_stream(p, fs, None, invert)]  # which says what is wrong with the path
    signals = _signals(p)
    streams = []
    left_out = [f"signal {k} ({label}): not in mV, uV or V" for k, label, volts in signals if not volts]
    for k in (k for k, _, volts in signals if volts):
        s = open_stream(p, fs, k, invert)
        if streams and (s.fs != streams[0].fs or s.declared_samples != streams[0].declared_samples):
            left_out.append(f"signal {k} ({s.lead}): {s.fs:g} Hz and {s.declared_samples} samples, not "
                            f"{streams[0].fs:g} Hz and {streams[0].declared_samples} as {streams[0].lead}")
            continue
        streams.append(s)
    if not streams:
        raise DataError(p, "no signal in mV, uV or V")
    streams[0].notes.extend(f"{p}: {x}: left out of --lead all" for x in left_out)
    return streams


def _signals(p: Path) -> list[tuple[int, str, bool]]:
    """(index, label, whether its units are a voltage) of every signal of a recording."""
    if p.suffix in ARRAY_SUFFIXES:
        if p.suffix == ".npy":
            x = load_npy(p, mmap=True)
            n = x.shape[1] if x.ndim == 2 else 1
        else:
            with open(p, encoding="utf-8", errors="replace") as f:
                n = len(f.readline().split(","))
        return [(k, f"column {k}", True) for k in range(n)]
    if p.suffix.lower() in EDF_SUFFIXES:
        return [(k, label, volts) for k, (label, volts) in enumerate(edf_signals(p))]
    header = open_header(p)[1]
    names, units = header.sig_name or [""] * header.n_sig, header.units or [None] * header.n_sig
    return [(k, names[k], (u or "mV").lower() in ("mv", "uv", "v")) for k, u in enumerate(units)]


def _open(p: Path, fs: float | None, lead: int | str | None) -> SignalStream:
    if p.is_dir():
        raise DataError(p, "is a folder; monitor takes one recording (a .hea, .dat, .mat, .csv or .npy file)")
    if p.suffix in ARRAY_SUFFIXES:
        return _array_stream(p, fs, lead)
    if p.suffix.lower() in EDF_SUFFIXES:
        if fs is not None:
            raise DataError(p, "--fs applies to .csv/.npy files only; an EDF header gives its own rate")
        e = open_edf(p, lead)
        return SignalStream(e.name, e.fs, e.n_samples, e.n_samples, e.label, str(p), e.read, [], e.start_time)
    if p.suffix in WFDB_SUFFIXES or Path(record_base(p) + ".hea").is_file():
        if fs is not None:
            raise DataError(p, "--fs applies to .csv/.npy files only; a WFDB header gives its own rate")
        return _wfdb_stream(p, lead)
    if not p.exists():
        raise DataError(p, "no such file")
    raise DataError(p, f"unsupported file type {p.suffix!r} (expected .hea, .dat, .mat, .edf, .csv or .npy)")


def _array_stream(p: Path, fs: float | None, lead: int | str | None) -> SignalStream:
    k = 0 if lead is None else int(lead)
    if p.suffix == ".npy":
        if fs is None:
            raise DataError(p, "a .npy signal needs its sampling rate: pass --fs")
        check_fs(fs, str(p))
        try:
            x = load_npy(p, mmap=True)
        except (ValueError, OSError) as exc:
            raise DataError(p, f"unreadable .npy file ({str(exc).splitlines()[0][:160]})") from None
        check_samples_dtype(x.dtype, str(p))
        if x.ndim == 2:
            if not 0 <= k < x.shape[1]:
                raise DataError(p, f"lead {k} does not exist; the file has {x.shape[1]} column(s)")
            x = x[:, k]
        elif x.ndim != 1 or k != 0:
            raise DataError(p, f"expected a 1-D signal or a (samples, leads) array, got shape {x.shape}")
    else:  # CSV: parsed whole (text files of a day's ECG are rare and large anyway)
        x = _read_csv_tolerant(p, fs, k)
    if len(x) == 0:
        raise DataError(p, "empty record (0 samples)")
    for i in range(0, len(x), 1 << 22):  # one pass in blocks: a memory map stays a memory map
        check_amplitude(np.asarray(x[i : i + (1 << 22)], dtype=np.float64), str(p))
    return SignalStream(p.stem, float(fs), len(x), len(x), f"column {k}", str(p),
                        lambda a, b: np.asarray(x[a:b], dtype=np.float64))


def _read_csv_tolerant(p: Path, fs: float | None, k: int) -> np.ndarray:
    import warnings

    # read_array refuses NaNs; a monitor marks them instead, so parse with NaN allowed.
    if fs is None:
        raise DataError(p, "a .csv signal needs its sampling rate: pass --fs")
    check_fs(fs, str(p))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _csv_column(p, k)
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise DataError(p, f"unreadable signal file ({str(exc).splitlines()[0][:160]})") from None


def _csv_column(p: Path, k: int) -> np.ndarray:
    x = np.genfromtxt(p, delimiter=",", skip_header=0, ndmin=2, dtype=np.float64, invalid_raise=True)
    if x.size and np.isnan(x[0]).all():  # a header line
        x = x[1:]
    if x.shape[1] <= k:
        raise DataError(p, f"lead {k} does not exist; the file has {x.shape[1]} column(s)")
    return x[:, k]


def _wfdb_stream(p: Path, lead: int | str | None) -> SignalStream:
    base, header, k, dat, fs = open_header(p, lead)
    gain = header.adc_gain[k]
    scale = mv_scale(gain, (header.units or [None] * header.n_sig)[k], base + ".hea", k)
    n, notes = header.sig_len, []
    fmt = str(header.fmt[k])
    offset = (header.byte_offset or [None] * header.n_sig)[k] or 0
    in_file = samples_in_file(header, k, dat)
    if in_file is not None:
        n = min(n, in_file)
        if n < header.sig_len:
            notes.append(f"{dat}: truncated, holds {n} of {header.sig_len} samples; the last "
                         f"{(header.sig_len - n) / fs:.1f} s are marked unreadable")
    if n <= 0:
        raise DataError(dat, "signal file holds no samples")
    baseline = header.baseline[k]
    if fmt == "16" and not dat.endswith(".mat"):
        # Little-endian int16 frames read with one seek per chunk: a day of Holter ECG in a
        # fraction of the time wfdb's general reader takes (tested equal to it), and unlike
        # a memory map, pages already read do not stay in this process's memory.
        cols = [i for i, f in enumerate(header.file_name) if f == header.file_name[k]]
        col = cols.index(k)

        def read_fast(a: int, b: int) -> np.ndarray:
            with open(dat, "rb") as f:
                f.seek(offset + 2 * a * len(cols))
                d = np.fromfile(f, dtype="<i2", count=(b - a) * len(cols)).reshape(-1, len(cols))[:, col]
            x = (d.astype(np.float64) - baseline) / gain * scale
            x[d == -32768] = np.nan
            return x

        return SignalStream(Path(base).name, fs, n, header.sig_len, (header.sig_name or [""] * header.n_sig)[k], base,
                            read_fast, notes, _wfdb_start(header))

    def read(a: int, b: int) -> np.ndarray:
        try:
            rec = wfdb.rdrecord(base, sampfrom=a, sampto=b, channels=[k], physical=False, return_res=32)
        except Exception as exc:
            raise DataError(dat, f"unreadable samples {a}..{b} ({exc})") from None
        d = rec.d_signal[:, 0]
        x = (d.astype(np.float64) - baseline) / gain * scale
        x[d == -32768] = np.nan
        return x

    name = Path(base).name
    return SignalStream(name, fs, n, header.sig_len, (header.sig_name or [""] * header.n_sig)[k], base, read, notes,
                        _wfdb_start(header))


def _wfdb_start(header) -> str | None:
    t = getattr(header, "base_time", None)
    if t is None:
        return None
    d = getattr(header, "base_date", None)
    return f"{d.isoformat()}T{t.strftime('%H:%M:%S')}" if d is not None else t.strftime("%H:%M:%S")
