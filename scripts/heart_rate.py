"""AF found by heart rate: window-level AF recall, and non-AF windows called AF, per heart-rate band.

    python scripts/heart_rate.py RUN [RUN ...] [--split val|test|both]

Each window's rate is its R-peak count over its duration (`WindowStore.window_rates`).
Training AF is mostly fast; this shows what that costs on slow AF (AF with a slow ventricular
response, common in rate-controlled patients): the README's "Slow AF" table. Validation rows
choose.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from split_figures import runs_and_splits  # scripts/ is on the path of a script run from it

from tinyrhythm.evaluate.scoring import eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store
from tinyrhythm.windows.store import WindowStore

BANDS = (0, 60, 80, 100, 120, 150, 400)  # beats per minute


@functools.cache
def window_rates(store_path: str, split: str) -> np.ndarray:
    """The split's rates, once per store for all runs."""
    ws = WindowStore(store_path)
    return ws.window_rates(eval_indices(ws, split))


def rate_figures(run: str, split: str) -> dict:
    lm = load_model(run)
    ws = training_store(lm)
    idx = eval_indices(ws, split)
    y, p = ws.labels[idx].astype(int), predict_proba(lm.model, ws, idx, "cpu").argmax(1)
    hr = window_rates(str(ws.path), split)
    af, noise = ws.classes.index("arrhythmia"), ws.classes.index("noise")
    out = {}
    for lo, hi in zip(BANDS[:-1], BANDS[1:]):
        band = (hr >= lo) & (hr < hi)
        is_af, non_af = band & (y == af), band & (y != af) & (y != noise)
        out[(lo, hi)] = (float(np.mean(p[is_af] == af)) if is_af.any() else None, int(is_af.sum()),
                         float(np.mean(p[non_af] == af)) if non_af.any() else None, int(non_af.sum()))
    return out


def main() -> None:
    runs, splits = runs_and_splits()
    heads = [f"{lo}-{hi}" if hi < BANDS[-1] else f">= {lo}" for lo, hi in zip(BANDS[:-1], BANDS[1:])]
    print("| run | split | windows | " + " | ".join(f"{h} bpm" for h in heads) + " |\n|---|---|---|"
          + "---|" * len(heads))
    for run in runs:
        for split in splits:
            f = rate_figures(run, split)
            fmt = lambda v, n: "–" if v is None else f"{100 * v:.1f} % ({n:,})"  # noqa: E731
            print(f"| {Path(run).name} | {split} | AF called AF | " + " | ".join(fmt(v[0], v[1]) for v in f.values()) + " |")
            print(f"| {Path(run).name} | {split} | normal called AF | " + " | ".join(fmt(v[2], v[3]) for v in f.values())
                  + " |", flush=True)


if __name__ == "__main__":
    main()
