"""How far RR irregularity alone separates AF from non-AF rhythm in long validation records.

    python scripts/rr_irregularity.py [--split val|test] [--beats 20]

R peaks from `windows.beats` (as the monitor finds them) on every MITDB, AFTDB and AFPDB
record of the split (lead 0); every 5th beat starts a context of `--beats` RR intervals,
labelled by the reference rhythm zone holding it (AF or flutter, or any other rhythm;
contexts across zones are left out). Prints quantiles of the median relative successive RR
difference (|RR[i+1] - RR[i]| / RR[i+1]) per dataset and rhythm: the README's "Slow AF"
paragraph on what a monitor-level remedy would face (ectopy is irregular too).
"""

from __future__ import annotations

import argparse

import numpy as np

from cross_dataset import test_records  # scripts/ is on the path of a script run from it

from tinyrhythm.runtime.rr_context import relative_changes
from tinyrhythm.windows.beats import detect_beats

QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)
AF = {"AFIB", "AFL"}


def contexts(name: str, split: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"AF": [], "non-AF": []}
    for rec in test_records(name, split):
        beats = detect_beats(rec.signal, rec.fs)
        rr = np.diff(beats) / rec.fs
        for j in range(0, len(rr) - n, 5):
            zone = [z for z in rec.zones if z.start <= beats[j] and beats[j + n] <= z.end]
            if zone:
                out["AF" if zone[0].label in AF else "non-AF"].append(float(np.median(relative_changes(rr[j : j + n]))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--beats", type=int, default=20)
    args = ap.parse_args()
    print("| dataset | rhythm | contexts | " + " | ".join(f"q{q:g}" for q in QUANTILES) + " |\n|---|---|---|"
          + "---|" * len(QUANTILES))
    for name in ("aftdb", "mitdb", "afpdb"):
        for rhythm, v in contexts(name, args.split, args.beats).items():
            if v:
                q = np.quantile(v, QUANTILES)
                print(f"| {name} | {rhythm} | {len(v):,} | " + " | ".join(f"{x:.3f}" for x in q) + " |", flush=True)


if __name__ == "__main__":
    main()
