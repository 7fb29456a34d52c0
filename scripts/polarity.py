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
from split_figures import runs_and_splits  # scripts/ is on the path of a script run from it

from tinyrhythm.evaluate.scoring import dataset_reports, eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store


class Inverted(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(-x)


def polarity_figures(run: str, split: str) -> dict:
    lm = load_model(run)
    ws = training_store(lm)
    idx = eval_indices(ws, split)
    up = predict_proba(lm.model, ws, idx, "cpu").argmax(1)
    down = predict_proba(Inverted(lm.model), ws, idx, "cpu").argmax(1)
    return {"upright": dataset_reports(ws, idx, up)["all"], "inverted": dataset_reports(ws, idx, down)["all"],
            "changed": float(np.mean(up != down))}


def main() -> None:
    runs, splits = runs_and_splits()
    print("| run | split | macro F1 upright / inverted | AF F1 upright / inverted | noise F1 upright / inverted "
          "| AF precision / recall upright | inverted | windows changing class |\n|---|---|---|---|---|---|---|---|")
    for run in runs:
        for split in splits:
            f = polarity_figures(run, split)
            u, d = f["upright"], f["inverted"]
            cls = lambda r, c: r["per_class"][c]["f1"]  # noqa: E731
            pr = lambda r: "{precision:.3f} / {recall:.3f}".format(**r["per_class"]["arrhythmia"])  # noqa: E731
            print(f"| {Path(run).name} | {split} | {u['macro_f1']:.3f} / {d['macro_f1']:.3f} "
                  f"| {cls(u, 'arrhythmia'):.3f} / {cls(d, 'arrhythmia'):.3f} "
                  f"| {cls(u, 'noise'):.3f} / {cls(d, 'noise'):.3f} | {pr(u)} | {pr(d)} | {100 * f['changed']:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
