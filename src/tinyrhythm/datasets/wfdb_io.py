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


# Bytes per sample of the WFDB storage formats whose size is a plain multiple.
FORMAT_BYTES = {"8": 1, "80": 1, "16": 2, "61": 2, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3, "24": 3, "32": 4}
# Storage formats the wfdb package reads.
WFDB_FORMATS = {"8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524"}
MAX_HEADER_BYTES = 1 << 20


def _check_header_text(hea: str) -> None:
    """Validate a header's text before wfdb parses it: wfdb assumes 250 Hz when a header gives
    no rate, reads a missing signal line as None, takes a gain of 0 as 200, and follows any
    file name; each of those is refused here with the reason."""
    try:
        if os.path.getsize(hea) > MAX_HEADER_BYTES:
            raise DataError(hea, "not a WFDB header (larger than 1 MB)")
        raw = Path(hea).read_bytes()
    except OSError as exc:
        raise DataError(hea, f"unreadable header ({exc.strerror})") from None
    if b"\x00" in raw:
        raise DataError(hea, "not a WFDB header (binary data or NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if sum(not (c.isprintable() or c in "\r\n\t") for c in text) > 0:
        raise DataError(hea, "not a WFDB header (binary data)")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    fields = lines[0].split() if lines else []
    if len(fields) < 2:
        raise DataError(hea, "not a WFDB header (no record line)")
    if len(fields) < 3:
        raise DataError(hea, "missing sampling rate in the record line")
    if "/" in fields[0]:
        return  # a multi-segment record: its segments' headers are checked when read
    if not fields[1].isdigit() or int(fields[1]) == 0:
        raise DataError(hea, f"record line declares {fields[1]!r} signals (expected a positive count)")
    try:
        fs = float(fields[2].split("/")[0].split("(")[0])
    except ValueError:
        raise DataError(hea, f"unreadable sampling rate {fields[2]!r} in the record line") from None
    if not fs > 0:
        raise DataError(hea, f"missing or invalid sampling rate {fs!r}")
    if len(fields) > 3 and not fields[3].isdigit():
        raise DataError(hea, f"record line declares {fields[3]!r} samples (expected a count)")
    n_sig = int(fields[1])
    if len(lines) - 1 < n_sig:
        raise DataError(hea, f"record line declares {n_sig} signal(s) but the header has {len(lines) - 1} signal line(s)")
    for k, line in enumerate(lines[1 : 1 + n_sig]):
        f = line.split()
        if len(f) < 2:
            raise DataError(hea, f"signal line {k} has no storage format")
        name = f[0]
        if name != "~" and (os.path.isabs(name) or "/" in name or "\\" in name or name in (".", "..")):
            raise DataError(hea, f"signal file {name!r} lies outside the record's folder")
        fmt = f[1].split("x")[0].split(":")[0].split("+")[0]
        if fmt not in WFDB_FORMATS:
            raise DataError(hea, f"signal {k}: unsupported WFDB storage format {f[1]!r}")
        if len(f) > 2:
            gain = f[2].split("(")[0].split("/")[0]
            try:
                if float(gain) == 0:
                    raise DataError(hea, f"lead {k} has ADC gain 0 (uncalibrated): cannot convert to mV")
            except ValueError:
                raise DataError(hea, f"signal {k}: unreadable ADC gain {f[2]!r}") from None


def open_header(path: str | os.PathLike, lead: int | str | None = None):
    """(record base, header, lead index, signal file, fs) of a WFDB record, every check done."""
    base = record_base(path)
    hea = base + ".hea"
    if not os.path.isfile(hea):
        raise DataError(hea, "header file not found")
    _check_header_text(hea)
    try:
        header = wfdb.rdheader(base)
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise DataError(hea, f"unreadable WFDB header ({exc})") from None
    fs = check_fs(header.fs, hea)
    if not header.sig_len or header.n_sig == 0 or not header.file_name:
        raise DataError(hea, "empty record (header declares 0 samples or 0 signals)")
    k = _select_lead(header, lead, hea)
    dat = os.path.join(os.path.dirname(base), header.file_name[k])
    if not os.path.isfile(dat):
        raise DataError(dat, "signal file named in the header not found")
    if dat.endswith(".mat"):
        _check_mat(dat, header)
    n = samples_in_file(header, k, dat)
    if n is not None:
        if header.sig_len - n > max(n, int(3600 * fs)):
            # More than an hour, and more than the data itself, missing: the header lies, and
            # memory sized by it would be allocated for samples that do not exist.
            raise DataError(dat, f"header declares {header.sig_len} samples but the file holds {n}: "
                                 "a lying header or a file truncated beyond use")
    return base, header, k, dat, fs


def samples_in_file(header, k: int, dat: str) -> int | None:
    """Samples of lead k the signal file holds, from its size (None for formats of no fixed size)."""
    fmt = str(header.fmt[k])
    if fmt not in FORMAT_BYTES or dat.endswith(".mat"):
        return None
    in_file = sum(1 for f in header.file_name if f == header.file_name[k])
    offset = (header.byte_offset or [None] * header.n_sig)[k] or 0
    return int((os.path.getsize(dat) - offset) / (FORMAT_BYTES[fmt] * in_file))


def _check_mat(dat: str, header) -> None:
    """A WFDB-style MATLAB v4 file (as PhysioNet writes them) holds one variable `val` of shape
    (signals, samples); wfdb reads it by byte offset, so any other content would be read as ECG."""
    import struct

    with open(dat, "rb") as f:
        head = f.read(20)
        if len(head) < 20:
            raise DataError(dat, "not a MATLAB v4 signal file (shorter than its header)")
        mopt, rows, cols, imag, namelen = struct.unpack("<5i", head)
        name = f.read(max(0, min(namelen, 64)))
    if mopt >= 1000 or not 0 < namelen <= 64:
        raise DataError(dat, "not a little-endian MATLAB v4 signal file")
    if name.rstrip(b"\x00") != b"val" or imag:
        raise DataError(dat, f"MATLAB file holds {name.rstrip(bytes(1)).decode('latin-1')!r}, not the real variable 'val'")
    if (rows, cols) != (header.n_sig, header.sig_len):
        raise DataError(dat, f"'val' has shape ({rows}, {cols}); the header declares ({header.n_sig}, {header.sig_len})")


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
