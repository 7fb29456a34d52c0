"""Markdown result tables from training runs (the README's baseline and input-rate tables).

    python scripts/results_table.py runs/zoo

Runs are grouped by model and input rate; a group of several seeds is reported as
mean ± standard deviation (sample std, n-1).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from tinyrhythm import models


def load(runs: Path) -> dict:
    groups = defaultdict(list)
    for m in sorted(runs.glob("*/metrics.json")):
        cfg = json.loads((m.parent / "config.json").read_text())
        groups[(cfg["model"]["name"], cfg["fs"])].append((m.parent.name, cfg, json.loads(m.read_text())))
    return groups


def fmt(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def main(runs: str) -> None:
    groups = load(Path(runs))
    print("| model | input | params (table) | MACs/window | float32 KB | val macro F1 | test macro F1 | test CinC score "
          "| test AF F1 | train time (1 thread) | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    order = ["cnn1", "cnn2", "cnn3", "cnn3-gap", "cnn4", "cnn5", "teacher"]
    for (name, fs), rows in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        m0 = rows[0][2]
        kb = models.describe(name, len(rows[0][1]["classes"]), rows[0][1]["input_length"])["float32_bytes"] / 1024
        secs = [r[2]["train_seconds"] for r in rows]
        print(f"| {name} | {rows[0][1]['input_length']} @ {fs:g} Hz | {m0['params_table']:,} | {m0['macs']:,} "
              f"| {kb:.1f} | {fmt([r[2]['val']['macro_f1'] for r in rows])} "
              f"| {fmt([r[2]['test']['macro_f1'] for r in rows])} | {fmt([r[2]['test']['cinc_score'] for r in rows])} "
              f"| {fmt([r[2]['test']['af_f1'] for r in rows])} | {np.mean(secs) / 60:.0f} min "
              f"| {len(rows)} |")
    print()
    print("| model | input | test F1 N | test F1 A | test F1 O | test F1 ~ | test accuracy |")
    print("|---|---|---|---|---|---|---|")
    for (name, fs), rows in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        per = [fmt([r[2]["test"]["per_class"][c]["f1"] for r in rows]) for c in ("N", "A", "O", "~")]
        print(f"| {name} | {rows[0][1]['input_length']} @ {fs:g} Hz | {' | '.join(per)} "
              f"| {fmt([r[2]['test']['accuracy'] for r in rows])} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo")
