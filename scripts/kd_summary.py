"""Distillation against the same student trained without it: mean and spread over seeds.

    python scripts/kd_summary.py [STUDY_DIR]

Reads the finished cells of the compression study (runs/study) and the undistilled CNN3
baselines (seeds 0-2); prints Markdown. Temperature and alpha are compared on validation
macro F1 only; test figures are reported, never used to choose.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def metrics(path: Path) -> dict | None:
    f = path / "metrics.json"
    return json.loads(f.read_text()) if f.is_file() else None


def row(label: str, runs: list[dict]) -> str:
    def ms(split, key):
        v = np.array([r[split][key] for r in runs])
        return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v[0]:.3f}"

    return (f"| {label} | {len(runs)} | {ms('val', 'macro_f1')} | {ms('test', 'macro_f1')} | {ms('test', 'cinc_score')} "
            f"| {ms('test', 'af_f1')} |")


def main(study: Path) -> None:
    print("| CNN3 | seeds | val macro F1 | test macro F1 | test CinC | test AF F1 |")
    print("|---|---|---|---|---|---|")
    base = [m for m in (metrics(study / n) for n in ("cnn3-fp32", "cnn3-s1-fp32", "cnn3-s2-fp32")) if m]
    kd = [m for m in (metrics(study / f"cnn3-kd-T4-a0.5-s{s}") for s in range(3)) if m]
    if base:
        print(row("no distillation", base))
    if kd:
        print(row("distilled from CNN5, T=4, alpha=0.5", kd))
    print()
    print("| student | T | alpha | seed | val macro F1 | test macro F1 | test CinC | test AF F1 |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in sorted(study.glob("*-kd-T*")):
        m = metrics(cell)
        if not m or not cell.is_dir():
            continue
        student, _, t, a, s = cell.name.split("-")
        print(f"| {student} | {t[1:]} | {a[1:]} | {s[1:]} | {m['val']['macro_f1']:.3f} | {m['test']['macro_f1']:.3f} "
              f"| {m['test']['cinc_score']:.3f} | {m['test']['af_f1']:.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/study"))
