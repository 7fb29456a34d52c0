"""R-peak detectors against the MITDB reference beats (the table in windows/beats.py and the README).

    python scripts/beat_detection.py [--methods used,kalidas2017,neurokit,c]

`c` is the streaming C detector the C export ships (tr_beats.c), built with the host's gcc.

Every shared MITDB record, lead 0, whole record; a detection within 150 ms of a reference
beat (any beat label) is a true positive, matched one to one; ventricular flutter or
fibrillation (`[` ... `]`, rhythm `(VFL`) is excluded from scoring, as in ANSI/AAMI EC57.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import wfdb

from tinyrhythm.datasets.base import data_root
from tinyrhythm.windows.beats import TOLERANCE_S, detect_beats

BEATS = set("NLRBAaJSVrFejnE/fQ?")


def excluded(ann, n: int) -> np.ndarray:
    ex, start = np.zeros(n, bool), None
    for s, sym, aux in zip(ann.sample, ann.symbol, ann.aux_note):
        opens = sym == "[" or (sym == "+" and aux.strip("\x00") == "(VFL")
        if start is not None and (sym == "]" or sym == "+"):
            ex[start:s] = True
            start = None
        if opens:
            start = s
    if start is not None:
        ex[start:] = True
    return ex


def match(ref: np.ndarray, det: np.ndarray, tol: int) -> int:
    """One-to-one matches within tol samples (both sorted)."""
    used, tp = np.zeros(len(det), bool), 0
    pos = np.searchsorted(det, ref)
    for s, p in zip(ref, pos):
        cands = [c for c in (p - 1, p) if 0 <= c < len(det) and not used[c] and abs(det[c] - s) <= tol]
        if cands:
            used[min(cands, key=lambda c: abs(det[c] - s))] = True
            tp += 1
    return tp


def detector(method: str):
    """`run(x, fs)` -> R-peak sample indices: the monitor's detector ("used"), the C export's ("c"),
    or one NeuroKit2 detector alone after NeuroKit2's cleaning."""
    if method == "used":
        return detect_beats
    if method == "c":  # the streaming C detector shipped with the C export (export/c_beats)
        from tinyrhythm.export.c_beats import detect_beats_c

        return detect_beats_c
    import neurokit2 as nk

    def run(x, fs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, info = nk.ecg_peaks(nk.ecg_clean(np.nan_to_num(x), sampling_rate=fs, method="neurokit"),
                                       sampling_rate=fs, method=method)
            except (ValueError, IndexError, ZeroDivisionError):  # a short or flat record: no beats
                return np.zeros(0, np.int64)
        return np.unique(np.asarray(info["ECG_R_Peaks"], np.int64))

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="used,kalidas2017,neurokit")
    a = ap.parse_args()
    root = data_root() / "mitdb"
    records = sorted(p.stem for p in root.glob("*.hea"))
    print("| detector | records | reference beats | sensitivity | positive predictivity | s per 30 min |")
    print("|---|---|---|---|---|---|")
    for method in a.methods.split(","):
        run, tp, fp, fn, secs = detector(method), 0, 0, 0, 0.0
        for r in records:
            rec = wfdb.rdrecord(str(root / r), channels=[0])
            ann = wfdb.rdann(str(root / r), "atr")
            ex = excluded(ann, rec.sig_len)
            ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEATS], np.int64)
            ref = ref[~ex[ref]]
            t0 = time.perf_counter()
            det = run(rec.p_signal[:, 0], rec.fs)
            secs += time.perf_counter() - t0
            det = det[~ex[det]]
            k = match(ref, det, int(TOLERANCE_S * rec.fs))
            tp, fn, fp = tp + k, fn + len(ref) - k, fp + len(det) - k
        per30 = secs / len(records) * 1800 / (rec.sig_len / rec.fs)
        print(f"| {method} | {len(records)} | {tp + fn} | {tp / (tp + fn):.2%} | {tp / (tp + fp):.2%} | {per30:.3f} |")


if __name__ == "__main__":
    main()
