"""The sample recording the demo and the examples run on, cut on first use.

The repository carries no ECG: the sample (6 minutes of MIT-BIH Arrhythmia Database record
222, with AF and flutter) is cut from the MITDB record under TINYRHYTHM_DATA when that holds
MITDB, else from record 222 downloaded from PhysioNet (three files, about 2 MB, checked
against PhysioNet's SHA256SUMS.txt), and kept in a cache folder. The excerpt's own SHA-256
values are fixed here, so every machine gets the same sample bytes.

    >>> from tinyrhythm import samples
    >>> samples.path()          # a WFDB record path (no extension), for every reader and command
    PosixPath('~/.cache/tinyrhythm/samples/mitdb222_13m')

`python -m tinyrhythm.samples` prints the paths, for shell use:
`tinyrhythm monitor "$(python -m tinyrhythm.samples)" --reference atr`.
Source and licence: ATTRIBUTION.md beside this file.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..datasets.download import fetch, read_checksums
from ..paths import sha256_file
from ..errors import DataError, TinyRhythmError


@dataclass(frozen=True)
class Sample:
    record: str  # MITDB record
    start_s: int
    stop_s: int
    sha256: dict[str, str]  # of the excerpt's files, by extension


SAMPLES = {
    "mitdb222_13m": Sample("222", 13 * 60, 19 * 60, {
        "hea": "28157b0a405c5fbf299586a52bd4eecb615fd588aebd66ffc3371c1f118e1b63",
        "dat": "3728a26886556933b56888079be988a9f21de0ea440175efd991136e99111823",
        "atr": "74e9a64908e2c0225a4de463537ca8ec456e004cb883a51d4a4b2d0122adc947",
    }),
}
DEFAULT = "mitdb222_13m"
PHYSIONET_MITDB = "https://physionet.org/files/mitdb/1.0.0"


def names() -> list[str]:
    return sorted(SAMPLES)


def cache_dir() -> Path:
    return Path(os.environ.get("TINYRHYTHM_SAMPLES") or Path.home() / ".cache" / "tinyrhythm" / "samples")


def path(name: str = DEFAULT, base_url: str = PHYSIONET_MITDB) -> Path:
    """The record path of a sample (`path.hea`, `path.dat`, reference annotations `path.atr`),
    cut into the cache on first use."""
    if name not in SAMPLES:
        raise TinyRhythmError(f"no sample record {name!r}; samples: {', '.join(names())}")
    out = cache_dir() / name
    if not all(out.with_suffix(f".{e}").is_file() for e in SAMPLES[name].sha256):
        materialize(name, cache_dir(), base_url)
    return out


def attribution() -> str:
    """Where the samples come from and under which licence they are redistributed."""
    return (Path(str(resources.files(__name__))) / "ATTRIBUTION.md").read_text()


def _source_record(s: Sample, work: Path, base_url: str) -> Path:
    """MITDB record `s.record` from TINYRHYTHM_DATA, else downloaded into `work`."""
    local = Path(os.environ.get("TINYRHYTHM_DATA", "")) / "mitdb" / s.record
    if os.environ.get("TINYRHYTHM_DATA") and local.with_suffix(".hea").is_file():
        return local
    sums = read_checksums(f"{base_url}/SHA256SUMS.txt")
    for ext in ("hea", "dat", "atr"):
        rel = f"{s.record}.{ext}"
        if rel not in sums:
            raise DataError(f"{base_url}/SHA256SUMS.txt", f"does not list {rel}")
        fetch(f"{base_url}/{rel}", work / rel, sums[rel])
    return work / s.record


def materialize(name: str, out_dir: Path, base_url: str = PHYSIONET_MITDB) -> Path:
    """Cut sample `name` into out_dir (atomically, SHA-256 checked); returns its record path."""
    import wfdb

    s = SAMPLES[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sample-", dir=out_dir) as tmp:
        work = Path(tmp)
        src = str(_source_record(s, work, base_url))
        h = wfdb.rdheader(src)
        lo, hi = int(s.start_s * h.fs), int(s.stop_s * h.fs)
        rec = wfdb.rdrecord(src, sampfrom=lo, sampto=hi, physical=False)
        ann = wfdb.rdann(src, "atr")
        keep = (ann.sample >= lo) & (ann.sample < hi)
        idx = np.flatnonzero(keep)
        before = [i for i in np.flatnonzero(ann.sample < lo) if ann.symbol[i] == "+"]
        if before and not (len(idx) and ann.sample[idx[0]] == lo and ann.symbol[idx[0]] == "+"):
            idx = np.concatenate([[before[-1]], idx])  # the rhythm in force at the start opens the excerpt
        sample = np.maximum(ann.sample[idx] - lo, 0)
        comments = [f"Excerpt of MIT-BIH Arrhythmia Database record {s.record}, {s.start_s // 60}:00-{s.stop_s // 60}:00 "
                    "(PhysioNet mitdb 1.0.0, ODC-By 1.0)", *h.comments]
        wfdb.wrsamp(name, fs=h.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal, fmt=rec.fmt,
                    adc_gain=rec.adc_gain, baseline=rec.baseline, comments=comments, write_dir=tmp)
        wfdb.wrann(name, "atr", sample, symbol=[ann.symbol[i] for i in idx], subtype=ann.subtype[idx],
                   chan=ann.chan[idx], num=ann.num[idx], aux_note=[ann.aux_note[i].rstrip("\x00") for i in idx],
                   fs=h.fs, write_dir=tmp)
        for ext, want in s.sha256.items():
            if sha256_file(work / f"{name}.{ext}") != want:
                raise DataError(src, f"the {name} excerpt cut from it differs from the published sample ({ext})")
        for ext in s.sha256:
            os.replace(work / f"{name}.{ext}", out_dir / f"{name}.{ext}")
    return out_dir / name
