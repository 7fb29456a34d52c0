"""Cut the packaged sample recording (tinyrhythm.samples) from the MIT-BIH Arrhythmia Database.

    python scripts/make_sample.py [--data ../shared/data] [--out src/tinyrhythm/samples]

MITDB record 222, 13:00-19:00: sinus rhythm, short runs of atrial flutter, a two-minute
episode of atrial fibrillation and flutter, nodal rhythm, then sinus rhythm again; both
leads, the original 212 format and gains, and the reference beat and rhythm annotations
shifted to the excerpt (the rhythm in force at 13:00 opens it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import wfdb

RECORD, START_S, STOP_S = "222", 13 * 60, 19 * 60
NAME = "mitdb222_13m"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TINYRHYTHM_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=Path("src/tinyrhythm/samples"))
    a = ap.parse_args()
    src = str(a.data / "mitdb" / RECORD)
    h = wfdb.rdheader(src)
    lo, hi = int(START_S * h.fs), int(STOP_S * h.fs)
    rec = wfdb.rdrecord(src, sampfrom=lo, sampto=hi, physical=False)
    ann = wfdb.rdann(src, "atr")
    keep = (ann.sample >= lo) & (ann.sample < hi)
    sample, symbol = ann.sample[keep] - lo, list(np.asarray(ann.symbol)[keep])
    aux, sub, chan, num = list(np.asarray(ann.aux_note)[keep]), ann.subtype[keep], ann.chan[keep], ann.num[keep]
    before = [i for i in np.flatnonzero(ann.sample < lo) if ann.symbol[i] == "+"]
    if before and not (len(sample) and sample[0] == 0 and symbol[0] == "+"):
        i = before[-1]
        sample = np.concatenate([[0], sample])
        symbol, aux = ["+"] + symbol, [ann.aux_note[i]] + aux
        sub, chan, num = (np.concatenate([[v[i]], w]) for v, w in ((ann.subtype, sub), (ann.chan, chan), (ann.num, num)))
    a.out.mkdir(parents=True, exist_ok=True)
    comments = [f"Excerpt of MIT-BIH Arrhythmia Database record {RECORD}, {START_S // 60}:00-{STOP_S // 60}:00 "
                "(PhysioNet mitdb 1.0.0, ODC-By 1.0)", *h.comments]
    wfdb.wrsamp(NAME, fs=h.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal, fmt=rec.fmt,
                adc_gain=rec.adc_gain, baseline=rec.baseline, comments=comments, write_dir=str(a.out))
    wfdb.wrann(NAME, "atr", sample, symbol=symbol, subtype=sub, chan=chan, num=num, aux_note=aux, fs=h.fs,
               write_dir=str(a.out))
    for ext in ("hea", "dat", "atr"):
        print(a.out / f"{NAME}.{ext}", (a.out / f"{NAME}.{ext}").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
