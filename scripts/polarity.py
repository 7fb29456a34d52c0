"""Lead polarity: the same windows upright and inverted (x -> -x), several runs side by side.

    python scripts/polarity.py RUN [RUN ...] [--split val|test|both]

A patch stuck on the other way round, swapped electrodes or a Holter channel wired in reverse
give the model the same ECG with its sign flipped, and nothing in a recording says which way
is up. Per run and split: pooled window-level macro, AF and noise F1 upright and inverted, and
the share of windows whose class changes. Validation columns choose; used for the README's
"Lead polarity" table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from split_figures import runs_and_splits, split_scorer  # scripts/ is on the path of a script run from it

from tinyrhythm.evaluate.metrics import classification_report


class Inverted(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(-x)


def polarity_figures(run: str, split: str) -> dict:
    ws, idx, score = split_scorer(run, split)
    y = ws.labels[idx].astype(int)
    up, down = score(), score(lambda model, fs: Inverted(model))
    return {"upright": classification_report(y, up, ws.classes), "inverted": classification_report(y, down, ws.classes),
            "changed": float(np.mean(up != down))}


def main() -> None:
    runs, splits = runs_and_splits()
    print("| run | split | macro F1 upright / inverted | AF F1 upright / inverted | noise F1 upright / inverted "
          "| AF precision / recall upright | inverted | windows changing class |\n|---|---|---|---|---|---|---|---|")
    for run in runs:
        for split in splits:
            f = polarity_figures(run, split)
            u, d = f["upright"], f["inverted"]
            f1 = {c: f"{u['per_class'][c]['f1']:.3f} / {d['per_class'][c]['f1']:.3f}" for c in ("arrhythmia", "noise")}
            pr = ["{precision:.3f} / {recall:.3f}".format(**r["per_class"]["arrhythmia"]) for r in (u, d)]
            print(f"| {Path(run).name} | {split} | {u['macro_f1']:.3f} / {d['macro_f1']:.3f} | {f1['arrhythmia']} "
                  f"| {f1['noise']} | {pr[0]} | {pr[1]} | {100 * f['changed']:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
