"""Recorder bandwidth: the same windows through a slower recorder's low-pass, several runs side by side.

    python scripts/bandwidth.py RUN [RUN ...] [--split val|test|both]

Recorders differ in how much of the ECG's fast detail they keep. The windows are 62.5 Hz (content
up to 31 Hz) and every training recorder keeps that much, so a recorder cutting at 12-25 Hz takes
away detail the models learned from. Per run
and split: pooled window-level macro, AF and noise F1 as stored and after a zero-phase
4th-order Butterworth low-pass (`scipy.signal.sosfiltfilt`, so 8th order in magnitude: sharper
than the training augmentation's, a filter the model has not seen) at 25, 20, 15 and 12 Hz, and the
share of windows whose class changes. Validation columns choose; used for the README's
"Recorder bandwidth" table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, sosfiltfilt
from split_figures import runs_and_splits, split_scorer  # scripts/ is on the path of a script run from it

from tinyrhythm.evaluate.metrics import classification_report

CUTOFFS_HZ = (25.0, 20.0, 15.0, 12.0)


class LowPassed(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, fs: float, cutoff_hz: float):
        super().__init__()
        self.model, self.sos = model, butter(4, cutoff_hz, fs=fs, output="sos")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = sosfiltfilt(self.sos, x.numpy().astype(np.float64), axis=-1)
        return self.model(torch.from_numpy(y.astype(np.float32)))


def bandwidth_figures(run: str, split: str) -> dict:
    ws, idx, score = split_scorer(run, split)
    y = ws.labels[idx].astype(int)
    full = score()
    out = {"full": (classification_report(y, full, ws.classes), 0.0)}
    for fc in CUTOFFS_HZ:
        p = score(lambda model, fs, fc=fc: LowPassed(model, fs, fc))
        out[fc] = (classification_report(y, p, ws.classes), float(np.mean(p != full)))
    return out


def main() -> None:
    runs, splits = runs_and_splits()
    print("| run | split | low-pass | macro F1 | AF F1 | noise F1 | AF recall | windows changing class |\n"
          "|---|---|---|---|---|---|---|---|")
    for run in runs:
        for split in splits:
            for fc, (r, changed) in bandwidth_figures(run, split).items():
                pc = r["per_class"]
                band = "as stored" if fc == "full" else f"{fc:g} Hz"
                print(f"| {Path(run).name} | {split} | {band} | {r['macro_f1']:.3f} | {pc['arrhythmia']['f1']:.3f} "
                      f"| {pc['noise']['f1']:.3f} | {pc['arrhythmia']['recall']:.3f} | {100 * changed:.1f} % |", flush=True)


if __name__ == "__main__":
    main()
