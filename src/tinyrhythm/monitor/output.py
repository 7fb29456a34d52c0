"""Monitor results on disk: a WFDB rhythm annotation file beside the signal's name, CSVs, JSON.

`RECORD_rr.csv` holds every RR interval: the time of its closing beat, its length, whether
that beat lies in AF or flutter, and whether it counts (not in or across noise).

Files are written to a temporary folder inside DIR and moved into place one by one, so
an interrupted run leaves earlier results intact and never a half-written file.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import wfdb

from ..datasets.record import AFIB, AFL, NOISE, NSR, OTHER
from ..paths import check_annotation_extension, check_output_dir
from .analyse import MonitorResult
from .episodes import UNREADABLE

# Rhythm aux notes as MIT-BIH/AFDB write them; "(O" and the two last are tinyrhythm's.
AUX_NOTES = {NSR: "(N", AFIB: "(AFIB", AFL: "(AFL", OTHER: "(O", NOISE: "(NOISE", UNREADABLE: "(UNREADABLE"}


def write_outputs(result: MonitorResult, out: str | os.PathLike, ann_ext: str = "tr",
                  evaluation: dict | None = None) -> list[Path]:
    out = check_output_dir(out)
    check_annotation_extension(ann_ext)
    out.mkdir(parents=True, exist_ok=True)
    # WFDB record names are letters, digits, '-' and '_': "my rec.npy" writes my_rec.tr and my_rec_*.csv.
    name = re.sub(r"[^A-Za-z0-9_-]", "_", result.record) or "record"
    tmp = Path(tempfile.mkdtemp(prefix=".monitor-", dir=out))
    try:
        starts = np.array([int(round(e.start_s * result.fs)) for e in result.episodes], dtype=np.int64)
        n = int(round(result.duration_s * result.fs))
        starts = np.minimum(starts, max(0, n - 1))
        wfdb.wrann(name, ann_ext, starts, symbol=["+"] * len(starts),
                   aux_note=[AUX_NOTES[e.label] for e in result.episodes], fs=result.fs, write_dir=str(tmp))
        with open(tmp / f"{name}_episodes.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "start_s", "end_s", "duration_s"])
            for e in result.episodes:
                w.writerow([e.label, f"{e.start_s:.3f}", f"{e.end_s:.3f}", f"{e.duration_s:.3f}"])
        with open(tmp / f"{name}_windows.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["start_s", "end_s", "label", "unreadable", *[f"p_{c}" for c in result.classes]])
            for i, lab in enumerate(result.labels):
                w.writerow([f"{result.bounds[i]:.3f}", f"{result.bounds[i + 1]:.3f}", lab, int(result.unreadable[i]),
                            *[f"{p:.4f}" for p in result.probs[i]]])
        if result.beats is not None:
            rr = result.rr
            with open(tmp / f"{name}_rr.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["time_s", "rr_s", "af", "valid"])
                for t, r, a, v in zip(rr["time_s"], rr["rr_s"], rr["af"], rr["valid"]):
                    w.writerow([f"{t:.3f}", f"{r:.3f}", int(a), int(v)])
        summary = result.to_json()
        if evaluation is not None:
            summary["evaluation"] = evaluation
        (tmp / f"{name}_monitor.json").write_text(json.dumps(summary, indent=2) + "\n")
        written = []
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
            written.append(out / f.name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
