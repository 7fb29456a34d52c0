"""WFDB reading through the `wfdb` package, with the checks it leaves to the caller.

`wfdb` reads a truncated file, a header that disagrees with its data or a missing
annotation file with exceptions of many kinds (or, for checksums, not at all); here
each becomes a DataError naming the file and the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import wfdb

from ..errors import DataError
from .record import AFIB, AFL, NOISE, NSR, OTHER, Zone, check_fs, check_signal

# Rhythm aux notes (MIT-BIH convention, plus '(NOISE' and '(UNREADABLE' that tinyrhythm writes) -> canonical label. Anything else that opens
# with "(" is a rhythm we do not model and becomes OTHER, keeping its note.
RHYTHM_NOTES = {"N": NSR, "AFIB": AFIB, "AFL": AFL, "NOISE": NOISE, "UNREADABLE": NOISE}

# Beat symbols of the WFDB standard; rhythm ('+'), noise ('~') and other non-beat
# annotations are not beats.
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


def record_base(path: str | os.PathLike) -> str:
    """'dir/100', 'dir/100.hea' or 'dir/100.dat' -> 'dir/100'."""
    p = str(path)
    for ext in (".hea", ".dat", ".mat", ".atr"):
        if p.endswith(ext):
            return p[: -len(ext)]
    return p


def _select_lead(header: wfdb.Record, lead: int | str | None, hea: str) -> int:
    if lead is None:
        return 0
    if isinstance(lead, str) and not lead.isdigit():
        names = list(header.sig_name or [])
        if lead not in names:
            raise DataError(hea, f"no lead named {lead!r}; leads are {names}")
        return names.index(lead)
    k = int(lead)
    if not 0 <= k < header.n_sig:
        raise DataError(hea, f"lead {k} does not exist; the record has {header.n_sig} lead(s)")
    return k


def _check_record_line(hea: str) -> None:
    """wfdb silently assumes 250 Hz when a header gives no rate; we refuse instead."""
    try:
        with open(hea, errors="replace") as f:
            line = next((ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")), "")
    except OSError as exc:
        raise DataError(hea, f"unreadable header ({exc.strerror})") from None
    fields = line.split()
    if len(fields) < 2:
        raise DataError(hea, "not a WFDB header (no record line)")
    if len(fields) < 3:
        raise DataError(hea, "missing sampling rate in the record line")


def open_header(path: str | os.PathLike, lead: int | str | None = None):
    """(record base, header, lead index, signal file, fs) of a WFDB record, every check done."""
    base = record_base(path)
    hea = base + ".hea"
    if not os.path.isfile(hea):
        raise DataError(hea, "header file not found")
    _check_record_line(hea)
    try:
        header = wfdb.rdheader(base)
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise DataError(hea, f"unreadable WFDB header ({exc})") from None
    fs = check_fs(header.fs, hea)
    if not header.sig_len or header.n_sig == 0:
        raise DataError(hea, "empty record (header declares 0 samples or 0 signals)")
    k = _select_lead(header, lead, hea)
    dat = os.path.join(os.path.dirname(base), header.file_name[k])
    if not os.path.isfile(dat):
        raise DataError(dat, "signal file named in the header not found")
    return base, header, k, dat, fs


def mv_scale(gain: float, units: str | None, hea: str, k: int) -> float:
    """Multiplier from (digital - baseline) / gain to millivolts."""
    if not gain:
        raise DataError(hea, f"lead {k} has ADC gain 0: cannot convert to mV")
    units = units or "mV"
    scale = {"mv": 1.0, "uv": 1e-3, "v": 1e3}.get(units.lower())
    if scale is None:
        raise DataError(hea, f"lead {k} is in unsupported units {units!r} (expected mV, uV or V)")
    return scale


def read_signal(path: str | os.PathLike, lead: int | str | None = None) -> tuple[np.ndarray, float, str]:
    """Read one lead of a WFDB record: (signal in mV as float32, fs, lead name)."""
    base, header, k, dat, fs = open_header(path, lead)
    hea = base + ".hea"
    try:
        rec = wfdb.rdrecord(base, channels=[k], physical=False, return_res=32)
    except Exception as exc:
        size = os.path.getsize(dat)
        raise DataError(
            dat, f"truncated or does not match its header ({header.sig_len} samples declared, file is {size} bytes): {exc}"
        ) from None
    digital = rec.d_signal[:, 0]
    if len(digital) != header.sig_len:
        raise DataError(dat, f"header declares {header.sig_len} samples, file holds {len(digital)}")
    checksum = (header.checksum or [0] * header.n_sig)[k]
    # A zero checksum means "not filled in" in many databases (CinC 2017 writes 0 everywhere).
    if checksum and (int(digital.astype(np.int64).sum()) - checksum) % 65536:
        raise DataError(dat, f"checksum mismatch with header (lead {k}): data does not match its header")
    gain = rec.adc_gain[0]
    scale = mv_scale(gain, (rec.units or ["mV"])[0], hea, k)
    invalid = digital == -32768  # WFDB's invalid-sample marker for 16-bit formats
    signal = (digital.astype(np.float64) - rec.baseline[0]) / gain * scale
    if invalid.any():
        signal[invalid] = np.nan
    signal = check_signal(signal, dat)
    name = (rec.sig_name or [""])[0]
    return signal, fs, name


def read_annotations(path: str | os.PathLike, extension: str, sig_len: int) -> tuple[list[Zone], np.ndarray, np.ndarray]:
    """Rhythm zones, beat samples and beat symbols from a WFDB annotation file.

    A zone opens at a '+' whose aux note starts with '(' and ends at the next ')', at
    the next rhythm note (MIT-BIH style: notes only open zones), or at the end of the
    record. A note like '(N)' is a zone of one beat. Spans in no zone have no label.
    """
    base = record_base(path)
    ann_file = f"{base}.{extension}"
    if not os.path.isfile(ann_file):
        raise DataError(ann_file, "annotation file not found")
    try:
        ann = wfdb.rdann(base, extension)
    except Exception as exc:
        raise DataError(ann_file, f"unreadable annotation file ({exc})") from None
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = np.asarray(ann.symbol)
    if len(samples) and (samples.min() < 0 or samples.max() >= sig_len):
        raise DataError(ann_file, f"annotation at sample {int(samples.max())} lies outside the signal ({sig_len} samples)")
    zones: list[Zone] = []
    open_at: tuple[int, str, str] | None = None
    for s, sym, aux in zip(samples.tolist(), symbols.tolist(), ann.aux_note or [""] * len(samples)):
        if sym != "+":
            continue
        note = (aux or "").replace("\x00", "").strip()
        if note == ")":
            if open_at is not None:
                zones.append(Zone(open_at[0], s, open_at[1], open_at[2]))
            open_at = None
            continue
        if not note.startswith("("):
            continue
        if open_at is not None:  # a new rhythm closes the previous one just before it
            zones.append(Zone(open_at[0], max(open_at[0], s - 1), open_at[1], open_at[2]))
            open_at = None
        name = note[1:].rstrip(")")
        label = RHYTHM_NOTES.get(name, OTHER)
        if note.endswith(")"):
            zones.append(Zone(s, s, label, note))
        else:
            open_at = (s, label, note)
    if open_at is not None:
        zones.append(Zone(open_at[0], sig_len - 1, open_at[1], open_at[2]))
    is_beat = np.array([s in BEAT_SYMBOLS for s in symbols.tolist()], dtype=bool)
    return zones, samples[is_beat], symbols[is_beat].astype("<U1")


def wfdb_records_under(root: Path) -> list[Path]:
    """Every WFDB record (by its .hea) under a folder, sorted."""
    return sorted(root.rglob("*.hea"))
