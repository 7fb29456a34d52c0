"""README tables of the rhythm models from their cross_dataset.json files.

    python scripts/rhythm_table.py runs/rhythm-cnn1 runs/rhythm-cnn3 runs/rhythm-cnn3-int8 runs/rhythm-cnn5 \
        [--lodo mitdb=runs/lodo-mitdb cinc2017=runs/lodo-cinc2017 holter=runs/lodo-holter]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATASETS = ("mitdb", "aftdb", "afpdb", "cinc2017", "nstdb", "mitdb+cpsc2021+aftdb", "all")
HOLTER = ("aftdb", "afpdb", "cpsc2021", "icentia11k")


def f(v, nd=3):
    return "" if v is None else f"{v:.{nd}f}"


def window_rows(name: str, cross: dict) -> list[str]:
    rows = []
    for ds in DATASETS:
        r = cross["window"].get(ds)
        if not r:
            continue
        pc = r["per_class"]
        cell = lambda c: f"{pc[c]['f1']:.3f} ({pc[c]['support']:,})" if pc[c]["support"] else "–"  # noqa: E731
        rows.append(f"| {name} | {ds} | {cell('arrhythmia')} | {cell('normal')} | {cell('noise')} | {r['n']:,} |")
    return rows


def long_rows(name: str, cross: dict) -> list[str]:
    rows = []
    for ds, r in cross.get("long", {}).items():
        rows.append(f"| {name} | {ds} | {r['records']} | {r['hours']} | {f(r['af_f1_per_second'])} | "
                    f"{f(r['episode_sensitivity'])} | {f(r['episode_ppv'])} | {f(r['mean_abs_burden_error'])} | "
                    f"{f(r['false_af_min_per_hour'], 2)} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--lodo", nargs="*", default=[])
    a = ap.parse_args()
    crosses = {Path(r).name: json.loads((Path(r) / "cross_dataset.json").read_text()) for r in a.runs}
    print("| model | test patients of | AF F1 (windows) | normal F1 | noise F1 | windows |")
    print("|---|---|---|---|---|---|")
    for name, c in crosses.items():
        print("\n".join(window_rows(name, c)))
    print()
    print("| model | long records | records | hours | per-second AF F1 | episode Se | episode PPV | mean abs AF-burden error | false AF min/h |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, c in crosses.items():
        print("\n".join(long_rows(name, c)))
    if a.lodo:
        print()
        print("| held out | trained on | tested on (test patients) | AF F1 | normal F1 | noise F1 | same cell, all datasets in training (rhythm-cnn3) |")
        print("|---|---|---|---|---|---|---|")
        ref = crosses.get("rhythm-cnn3")
        for item in a.lodo:
            held, run = item.split("=", 1)
            c = json.loads((Path(run) / "cross_dataset.json").read_text())
            cfg = json.loads((Path(run) / "config.json").read_text())["train"]
            targets = HOLTER if held == "holter" else (held,)
            for ds in targets:
                r = c["window"].get(ds)
                if not r:
                    continue
                pc = r["per_class"]
                cell = lambda p, k: f"{p[k]['f1']:.3f}" if p[k]["support"] else "–"  # noqa: E731
                base = ref["window"].get(ds) if ref else None
                b = (f"AF {cell(base['per_class'], 'arrhythmia')}, normal {cell(base['per_class'], 'normal')}, "
                     f"noise {cell(base['per_class'], 'noise')}") if base else ""
                print(f"| {held} | {', '.join(cfg['datasets'])} | {ds} | {cell(pc, 'arrhythmia')} | "
                      f"{cell(pc, 'normal')} | {cell(pc, 'noise')} | {b} |")
    stress = next((c["stress"] for c in crosses.values() if c.get("stress")), None)
    if stress:
        name = next(n for n, c in crosses.items() if c.get("stress"))
        print()
        print(f"Noise stress test ({name}):")
        print()
        print("| noise | SNR dB | AF Se (per second) | AF PPV | false AF min/h |")
        print("|---|---|---|---|---|")
        c = stress["clean"]
        print(f"| none | – | {f(c['af_sensitivity'])} | {f(c['af_ppv'])} | {f(c['false_af_min_per_hour'], 2)} |")
        for key, r in stress.items():
            if key == "clean":
                continue
            kind, snr = key.split("_")
            print(f"| {kind} | {snr} | {f(r['af_sensitivity'])} | {f(r['af_ppv'])} | {f(r['false_af_min_per_hour'], 2)} |")


if __name__ == "__main__":
    main()
