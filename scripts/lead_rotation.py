"""Lead placement: the same moments seen from leads between a record's two, several runs side by side.

    python scripts/lead_rotation.py RUN [RUN ...] [--split val|test|both] [--angles 15 30 45 60]

Any surface lead is close to a projection of one cardiac dipole, so cos(a) x + sin(a) y of a
two-lead record's leads x and y at the same moment is the ECG of a lead at angle a from x: a
patch placed or oriented otherwise than any training recorder's (`augment.lead_mix` trains on
the same construction up to `lead_mix_deg`). Per run and split, the windows of the two-lead
records (MITDB, AFTDB, AFPDB, CPSC 2021; each lead is its own window, turned towards the other,
the sign of a alternating from window to window): pooled macro, AF and noise F1 as stored and
turned, AF precision and recall, and the share of windows whose class changes. Validation columns
choose; used for the README's "Lead mixing for the zoo".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from split_figures import split_scorer  # scripts/ is on the path of a script run from it

from tinyrhythm.evaluate.metrics import classification_report
from tinyrhythm.evaluate.scoring import predict_proba
from tinyrhythm.runtime import load_model

ANGLES_DEG = (15.0, 30.0, 45.0, 60.0)


class Rotated(torch.nn.Module):
    """The model on windows turned towards their partners, in the order predict_proba feeds them
    (the order of its index array, batch after batch)."""

    def __init__(self, model: torch.nn.Module, partner_windows: np.ndarray, angle_deg: float):
        super().__init__()
        self.model, self.partner = model, torch.from_numpy(np.ascontiguousarray(partner_windows, dtype=np.float32))
        sign = np.where(np.arange(len(partner_windows)) % 2 == 0, 1.0, -1.0)
        self.angle = torch.from_numpy(np.deg2rad(angle_deg * sign).astype(np.float32))
        self.at = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        a = self.angle[self.at:self.at + n][:, None, None]
        y = self.partner[self.at:self.at + n].unsqueeze(1)
        self.at += n
        return self.model(torch.cos(a) * x + torch.sin(a) * y)


def two_lead(ws, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(windows of idx that have a partner, the partners' windows)."""
    partners = ws.lead_partners()
    sub = idx[partners[idx] >= 0]
    return sub, ws.batch(partners[sub])[0]


def rotation_figures(model: torch.nn.Module, ws, idx: np.ndarray, angles=ANGLES_DEG) -> dict:
    """Reports of the two-lead windows of idx as stored and turned by each angle."""
    sub, other = two_lead(ws, idx)
    y = ws.labels[sub].astype(int)
    base = predict_proba(model, ws, sub, "cpu").argmax(1)
    out = {"windows": len(sub), "stored": classification_report(y, base, ws.classes)}
    for a in angles:
        pred = predict_proba(Rotated(model, other, a), ws, sub, "cpu").argmax(1)
        out[a] = {**classification_report(y, pred, ws.classes), "changed": float(np.mean(pred != base))}
    return out


def row(name: str, split: str, label: str, r: dict) -> str:
    af = r["per_class"]["arrhythmia"]
    changed = f"{100 * r['changed']:.1f} %" if "changed" in r else "–"
    return (f"| {name} | {split} | {label} | {r['macro_f1']:.3f} | {af['f1']:.3f} | {r['per_class']['noise']['f1']:.3f} "
            f"| {af['precision']:.3f} / {af['recall']:.3f} | {changed} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", choices=("val", "test", "both"), default="val")
    ap.add_argument("--angles", type=float, nargs="+", default=list(ANGLES_DEG))
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| run | split | lead | macro F1 | AF F1 | noise F1 | AF precision / recall | windows changing class |\n"
          "|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        for split in ("val", "test") if args.split == "both" else (args.split,):
            ws, idx, _ = split_scorer(run, split)
            f = rotation_figures(load_model(run).model, ws, idx, args.angles)
            print(row(Path(run).name, split, "as recorded", f["stored"]), flush=True)
            for a in args.angles:
                print(row(Path(run).name, split, f"±{a:g}°", f[a]), flush=True)


if __name__ == "__main__":
    main()
