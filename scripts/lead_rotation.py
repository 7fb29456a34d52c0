"""Lead placement: the same moments seen from leads between a record's two, several runs side by side.

    python scripts/lead_rotation.py RUN [RUN ...] [--split val|test|both] [--angles 15 30 45 60]
    python scripts/lead_rotation.py MODEL [MODEL ...] --monitor [--split val|test|both] [--angles 30 45]
    python scripts/lead_rotation.py MODEL [MODEL ...] --fusion [--angles 30 45] [--weights 0 0.5 1]

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
AF F1 and false-AF minutes per hour. --fusion asks what the RR-context fusion does for a turned
lead: validation windows through the network alone and through out-of-fold fits of the card's kind
of fusion (`scripts/rr_context.py`'s), fitted on windows as recorded only or also on turned two-lead
windows (weight w). Validation rows choose; used for the README's "Lead placement and lead mixing
for the zoo".
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from cross_dataset import pooled, score_record  # scripts/ is on the path of a script run from it
from rr_context import best_offsets, split_features
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score
from sklearn.model_selection import GroupKFold
from sklearn.utils.class_weight import compute_sample_weight

from tinyrhythm.datasets import open_dataset
from tinyrhythm.datasets.split import assign_split
from tinyrhythm.errors import DataError
from tinyrhythm.evaluate.metrics import classification_report
from tinyrhythm.evaluate.scoring import eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.runtime.rr_context import model_inputs
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


def _af(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(AF F1, AF precision)."""
    return (f1_score(y, pred, labels=[1], average=None, zero_division=0)[0],
            precision_score(y, pred, labels=[1], average=None, zero_division=0)[0])


def fusion_figures(lm, ws, angles=(30.0, 45.0), weights=(0.0, 0.5, 1.0)) -> list[dict]:
    """Validation windows of `scripts/rr_context.py` (MITDB, AFTDB, AFPDB, CinC 2017) as recorded, and
    their two-lead windows turned by each angle, through the network alone and through out-of-fold
    fusions (5 folds grouped by record, decision offsets chosen on the windows as recorded) whose
    training folds also hold the turned windows, together weighted w against those as recorded.
    The RR features stay the recorded beats': a lead's angle moves no beat."""
    idx, feats, groups, _ = split_features(ws, "val")
    y = ws.labels[idx].astype(int)
    p0 = predict_proba(lm.model, ws, idx, "cpu")
    two = np.flatnonzero(ws.lead_partners()[idx] >= 0)
    other = two_lead(ws, idx)[1]
    turned = {a: predict_proba(Rotated(lm.model, other, a), ws, idx[two], "cpu") for a in angles}

    def scores(label, weight, logp0, logpt) -> dict:
        pred = logp0.argmax(1)
        out = {"inputs": label, "weight": weight, "macro_f1": f1_score(y, pred, labels=[0, 1, 2], average="macro"),
               "af": _af(y, pred), "two_lead": _af(y[two], pred[two])}
        return {**out, **{a: _af(y[two], t.argmax(1)) for a, t in logpt.items()}}

    rows = [scores("network alone", None, p0, turned)]
    x0, xt = model_inputs(p0, feats), {a: model_inputs(t, feats[two]) for a, t in turned.items()}
    for w in weights:
        oof0, ooft = np.zeros((len(y), 3)), {a: np.zeros((len(two), 3)) for a in angles}
        for tr, te in GroupKFold(5).split(x0, y, groups):
            fit_t, score_t = np.isin(two, tr), np.isin(two, te)
            parts = [(x0[tr], y[tr], np.ones(len(tr)))]
            parts += [(xt[a][fit_t], y[two][fit_t], np.full(fit_t.sum(), w / len(angles))) for a in angles if w]
            xs, ys, share = (np.concatenate(p) for p in zip(*parts))
            # Classes balanced on the samples' counts, turned ones included, then each sample's share.
            reg = LogisticRegression(max_iter=3000).fit(xs, ys, sample_weight=share * compute_sample_weight("balanced", ys))
            oof0[te] = reg.predict_log_proba(x0[te])
            for a in angles:
                ooft[a][score_t] = reg.predict_log_proba(xt[a][score_t])
        off = best_offsets(oof0, y)
        rows.append(scores("+ 30 s of RR (out of fold)", w, oof0 + off, {a: t + off for a, t in ooft.items()}))
    return rows


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
    ap.add_argument("--fusion", action="store_true", help="validation windows through the RR-context fusion, "
                                                          "refitted with turned windows weighted --weights")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = ("val", "test") if args.split == "both" else (args.split,)
    if args.fusion:
        print("| model | inputs | turned windows' weight in the fit | val macro F1 | AF F1 (precision) | two-lead windows: "
              f"AF F1 (precision) as recorded | {' | '.join(f'±{a:g}°' for a in args.angles)} |\n"
              f"|---|---|---|---|---|---|{'---|' * len(args.angles)}")
        af = lambda v: f"{v[0]:.3f} ({v[1]:.3f})"  # noqa: E731
        for model in args.runs:
            lm = load_model(model)
            for r in fusion_figures(lm, training_store(lm), args.angles, args.weights):
                w = "–" if r["weight"] is None else f"{r['weight']:g}"
                print(f"| {Path(model).name} | {r['inputs']} | {w} | {r['macro_f1']:.3f} | {af(r['af'])} | "
                      f"{af(r['two_lead'])} | {' | '.join(af(r[a]) for a in args.angles)} |", flush=True)
        return
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
