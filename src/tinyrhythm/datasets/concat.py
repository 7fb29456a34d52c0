"""Long WFDB recordings with known rhythm episodes, built by joining real records.

The shared data hold no long AF recording, so episode detection is measured on
recordings made of real CinC 2017 records of one split, joined in blocks of one label
(a block of several AF records is one AF episode of minutes), written as a WFDB record
with a reference `.atr` of rhythm notes like AFDB's. Records of the validation split
tune the monitor; the test split's only report it. Also joins Icentia11k segments into
day-long recordings for throughput benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import wfdb

from ..errors import TinyRhythmError
from .split import assign_split
from .cinc2017 import Cinc2017
from .wfdb_io import read_signal

NOTES = {"N": "(N", "A": "(AFIB", "O": "(O", "~": "(NOISE"}
GAIN = 1000.0  # adu per mV, as CinC 2017 stores them


def write_wfdb(name: str, out: str | os.PathLike, signal: np.ndarray, fs: float,
               starts: list[int] | None = None, notes: list[str] | None = None) -> Path:
    """A one-lead fmt-16 WFDB record (and a reference .atr when notes are given)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = np.clip(np.round(np.nan_to_num(signal, nan=-32768 / GAIN) * GAIN), -32768, 32767).astype(np.int16)
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["ECG"], d_signal=d[:, None].astype(np.int64), fmt=["16"],
                adc_gain=[GAIN], baseline=[0], write_dir=str(out))
    if notes:
        wfdb.wrann(name, "atr", np.asarray(starts, dtype=np.int64), symbol=["+"] * len(notes), aux_note=list(notes),
                   write_dir=str(out))
    return out / f"{name}.hea"


def cinc_episode_recording(out: str | os.PathLike, split: str, minutes: float = 60.0, seed: int = 0,
                           root: str | os.PathLike | None = None, name: str | None = None) -> Path:
    """Join CinC 2017 records of `split` into a recording of about `minutes` minutes.

    Blocks follow a random order of labels weighted N 4 : A 3 : O 2 : ~ 1 with 2-8
    records each, so AF episodes last minutes and are surrounded by other rhythms.
    """
    ds = Cinc2017(root)
    labels = ds.labels
    rng = np.random.default_rng(seed)
    pools = {c: [r for r in sorted(labels) if labels[r] == c and assign_split(f"cinc2017/{r}", 0) == split]
             for c in NOTES}
    for c in pools:
        rng.shuffle(pools[c])
    if not pools["A"] or not pools["N"]:
        raise TinyRhythmError(f"{ds.root}: no AF or normal records in split {split!r}")
    fs, parts, starts, notes, n = 300.0, [], [], [], 0
    order, weights = np.array(list(NOTES)), np.array([4, 3, 2, 1]) / 10
    last = None
    while n < minutes * 60 * fs:
        c = str(rng.choice(order, p=weights))
        if c == last or not pools[c]:
            continue
        last = c
        starts.append(n)
        notes.append(NOTES[c])
        for _ in range(int(rng.integers(2, 9))):
            if not pools[c]:
                break
            x, rate, _ = read_signal(ds.root / pools[c].pop())
            if rate != fs:
                raise TinyRhythmError(f"{ds.root}: expected 300 Hz CinC records, got {rate}")
            parts.append(x)
            n += len(x)
        if not any(pools[k] for k in ("A", "N")):
            break
    return write_wfdb(name or f"cinc-{split}-{seed}", out, np.concatenate(parts), fs, starts, notes)


def join_records(paths: list[str | os.PathLike], seconds: float, out: str | os.PathLike, name: str) -> Path:
    """Repeat the given records end to end until `seconds` long (throughput benchmarks)."""
    fs, parts, n = None, [], 0
    while True:
        for p in paths:
            x, rate, _ = read_signal(p)
            if fs is None:
                fs = rate
            elif rate != fs:
                raise TinyRhythmError(f"{p}: sampling rate {rate} differs from {fs}")
            take = min(len(x), int(seconds * fs) - n)
            parts.append(x[:take])
            n += take
            if n >= int(seconds * fs):
                return write_wfdb(name, out, np.concatenate(parts), fs)
