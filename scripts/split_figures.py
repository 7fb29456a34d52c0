"""Per-dataset window-level F1 on a run's validation (and test) split, several runs side by side.

    python scripts/split_figures.py RUN [RUN ...] [--split val|test|both]

Per run: macro F1 and per-class F1 (AF first) of the pooled split, then each dataset's F1 for
the classes it holds, support in brackets. Validation columns choose; test columns are
measured after the choice. Used for the README's "Sampling over datasets" table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tinyrhythm.evaluate.scoring import dataset_reports, eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store

ORDER = ("arrhythmia", "normal", "noise")


def split_scorer(run: str, split: str):
    """(store, window indices, score) of a run's split: score(wrap) is every window's class through
    wrap(model, fs), a model that changes its input first (None: the model as it is)."""
    lm = load_model(run)
    ws = training_store(lm)
    idx = eval_indices(ws, split)

    def score(wrap=None):
        model = lm.model if wrap is None else wrap(lm.model, ws.fs)
        return predict_proba(model, ws, idx, "cpu").argmax(1)

    return ws, idx, score


def split_figures(run: str, split: str) -> dict[str, dict]:
    ws, idx, score = split_scorer(run, split)
    return dataset_reports(ws, idx, score())


def cell(report: dict) -> str:
    per = report["per_class"]
    return ", ".join(f"{c} {per[c]['f1']:.3f} ({per[c]['support']:,})" for c in ORDER if per[c]["support"])


def runs_and_splits() -> tuple[list[str], tuple[str, ...]]:
    """The command line of the per-split scripts: RUN... [--split val|test|both]."""
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", choices=("val", "test", "both"), default="both")
    args = ap.parse_args()
    torch.set_num_threads(1)
    return args.runs, ("val", "test") if args.split == "both" else (args.split,)


def main() -> None:
    runs, splits = runs_and_splits()
    print("| run | split | macro F1 | AF F1 | normal F1 | noise F1 | per dataset |\n|---|---|---|---|---|---|---|")
    for run in runs:
        for split in splits:
            f = split_figures(run, split)
            per = f["all"]["per_class"]
            rest = "; ".join(f"{n}: {cell(r)}" for n, r in f.items() if n != "all")
            print(f"| {Path(run).name} | {split} | {f['all']['macro_f1']:.3f} | "
                  + " | ".join(f"{per[c]['f1']:.3f}" for c in ORDER) + f" | {rest} |", flush=True)


if __name__ == "__main__":
    main()
