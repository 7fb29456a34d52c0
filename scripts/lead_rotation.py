"""Lead placement: the same moments seen from leads between a record's two, several runs side by side.

    python scripts/lead_rotation.py RUN [RUN ...] [--split val|test|both] [--angles 15 30 45 60]
    python scripts/lead_rotation.py MODEL [MODEL ...] --monitor [--split val|test|both] [--angles 30 45]

Any surface lead is close to a projection of one cardiac dipole, so cos(a) x + sin(a) y of a
two-lead record's leads x and y at the same moment is the ECG of a lead at angle a from x: a
patch placed or oriented otherwise than any training recorder's (`augment.lead_mix` trains on
the same construction up to `lead_mix_deg`). Per run and split, the windows of the two-lead
records (MITDB, AFTDB, AFPDB, CPSC 2021; each lead is its own window, turned towards the other,
the sign of a alternating from window to window): pooled macro, AF and noise F1 as stored and
turned, AF precision and recall, and the share of windows whose class changes. --monitor does the
same to whole recordings: `monitor` (its RR context and smoothing, as a user runs it) on every
MITDB, AFTDB and AFPDB record of the split with its two leads combined at each angle (the sign of
a alternating from record to record), pooled as `scripts/cross_dataset.py` pools them: per-second
AF F1 and false-AF minutes per hour. Validation rows choose; used for the README's "Lead placement
and lead mixing for the zoo".
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from cross_dataset import pooled, score_record  # scripts/ is on the path of a script run from it

from tinyrhythm.datasets import open_dataset
from tinyrhythm.datasets.split import assign_split
from tinyrhythm.errors import DataError
from tinyrhythm.evaluate.metrics import classification_report
from tinyrhythm.evaluate.scoring import eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store

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


def rotation_figures(model: torch.nn.Module, ws, idx: np.ndarray, angles=ANGLES_DEG,
                     stored: np.ndarray | None = None) -> dict:
    """Reports of the two-lead windows of idx as stored and turned by each angle; `stored`: the
    classes of all of idx as stored, when the caller has them already."""
    sub, other = two_lead(ws, idx)
    y = ws.labels[sub].astype(int)
    if stored is None:
        base = predict_proba(model, ws, sub, "cpu").argmax(1)
    else:
        base = stored[ws.lead_partners()[idx] >= 0]
    out = {"windows": len(sub), "stored": classification_report(y, base, ws.classes)}
    for a in angles:
        pred = predict_proba(Rotated(model, other, a), ws, sub, "cpu").argmax(1)
        out[a] = {**classification_report(y, pred, ws.classes), "changed": float(np.mean(pred != base))}
    return out


def turned_records(name: str, split: str, angle_deg: float):
    """(signal with the two leads combined at +-angle, record) of every record of a two-lead
    dataset's split; a record whose second lead cannot be read (AFPDB n17's is flat) is left out."""
    ds = open_dataset(name)
    k = 0
    for patient in ds.patients():
        if assign_split(patient) != split:
            continue
        for path in ds.record_paths(patient):
            try:
                r0, r1 = (ds.read(path, patient, lead=lead) for lead in (0, 1))
            except DataError as exc:
                if not exc.reason.startswith("flat-line"):
                    raise
                continue
            a = np.deg2rad(angle_deg * (1 if k % 2 == 0 else -1))
            k += 1
            yield np.cos(a) * r0.signal + np.sin(a) * r1.signal, r0


def monitor_figures(model: str, split: str, angles, datasets=("mitdb", "aftdb", "afpdb")) -> dict:
    """Pooled monitor figures per dataset and angle (0: the first lead as recorded)."""
    lm = load_model(model)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for a in (0.0, *angles):
            for name in datasets:
                rows = [score_record(lm, sig, r.fs, r.zones, Path(tmp))[0] for sig, r in turned_records(name, split, a)]
                out[a, name] = pooled(rows)
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
    ap.add_argument("--monitor", action="store_true", help="whole recordings through `monitor` instead of windows")
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = ("val", "test") if args.split == "both" else (args.split,)
    if args.monitor:
        print("| model | split | lead | MITDB false AF min/h | AFPDB false AF min/h | AFTDB AF F1 per second | AFTDB AF Se / PPV |\n"
              "|---|---|---|---|---|---|---|")
        for model in args.runs:
            for split in splits:
                f = monitor_figures(model, split, args.angles)
                for a in (0.0, *args.angles):
                    m, p, t = f[a, "mitdb"], f[a, "afpdb"], f[a, "aftdb"]
                    print(f"| {Path(model).name} | {split} | {'as recorded' if a == 0 else f'±{a:g}°'} "
                          f"| {m['false_af_min_per_hour']} | {p['false_af_min_per_hour']} | {t['af_f1_per_second']} "
                          f"| {t['af_sensitivity']} / {t['af_ppv']} |", flush=True)
        return
    print("| run | split | lead | macro F1 | AF F1 | noise F1 | AF precision / recall | windows changing class |\n"
          "|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        lm = load_model(run)
        ws = training_store(lm)
        for split in splits:
            f = rotation_figures(lm.model, ws, eval_indices(ws, split), args.angles)
            print(row(Path(run).name, split, "as recorded", f["stored"]), flush=True)
            for a in args.angles:
                print(row(Path(run).name, split, f"±{a:g}°", f[a]), flush=True)


if __name__ == "__main__":
    main()
