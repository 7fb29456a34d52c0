"""Leave-one-dataset-out runs scored on the recorders they never saw, several runs side by side.

    python scripts/unseen_recorder.py cinc2017|holter RUN [RUN ...] [--split val|test]

A run trained without CinC 2017 (`configs/rhythm-lodo-cinc2017*.json`) or without the Holter
sets AFTDB, AFPDB and CPSC 2021 (`configs/rhythm-lodo-holter*.json`) is scored, network alone,
on the held-out datasets' windows of the full rhythm store (the store `configs/rhythm.json`
builds): macro and per-class F1 (AF first), per dataset AF recall and the share of normal
windows called AF, and for CinC 2017 its records decided as `predict` decides them (the mean
window probability). The validation split chooses a recipe for a recorder no training set
holds; the test split is measured after the choice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from tinyrhythm.evaluate.scoring import eval_indices, predict_proba
from tinyrhythm.runtime import load_model

from cross_dataset import rhythm_store
from rr_context import cinc_record_means, on_record_grid

HELD = {"cinc2017": ("cinc2017",), "holter": ("aftdb", "afpdb", "cpsc2021")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("held", choices=sorted(HELD))
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ws = rhythm_store()
    ds, names = ws.dataset_index()
    idx = eval_indices(ws, a.split)
    idx = idx[np.isin(np.array(names)[ds[idx]], HELD[a.held])]
    y, dname = ws.labels[idx].astype(int), np.array(names)[ds[idx]]
    af, normal = ws.classes.index("arrhythmia"), ws.classes.index("normal")
    order = [normal, af, ws.classes.index("noise")]
    print(f"| run | {a.split} windows of | macro F1 | AF F1 | normal F1 | noise F1 | per dataset: AF recall, normal called AF "
          f"| CinC records: macro / AF F1 |\n|---|---|---|---|---|---|---|---|")
    for run in a.runs:
        lm = load_model(run)
        trained_on = set(lm.card.train.get("datasets") or []) if lm.card.train else set()
        if trained_on & set(HELD[a.held]):
            raise SystemExit(f"{run}: trained on {', '.join(sorted(trained_on & set(HELD[a.held])))}: not a held-out run")
        prob = predict_proba(lm.model, ws, idx, "cpu")
        p = prob.argmax(1)
        f = f1_score(y, p, labels=order, average=None, zero_division=0)
        present = np.isin(order, y)  # a class with no window here (Holter noise) is no column of zeros
        cells = [f"{v:.3f}" if ok else "–" for v, ok in zip(f, present)]
        per = []
        for d in HELD[a.held]:
            m = dname == d
            if m.any():
                rec = f"{np.mean(p[m & (y == af)] == af):.3f}" if (m & (y == af)).any() else "–"
                fp = f"{np.mean(p[m & (y == normal)] == af):.4f}" if (m & (y == normal)).any() else "–"
                per.append(f"{d} {rec}, {fp}")
        records = ""
        if a.held == "cinc2017":
            rec_names, keys = ws.record_names(), ws.record_keys()
            groups = np.array([f"cinc2017/{rec_names[keys[i]].split(':')[0]}" for i in idx])
            logp, y_rec = cinc_record_means(y, prob, groups, on_record_grid(ws.starts()[idx], ws.window_length))
            fr = f1_score(y_rec, logp.argmax(1), labels=order, average=None, zero_division=0)
            records = f"{fr.mean():.3f} / {fr[1]:.3f} ({len(y_rec):,})"
        print(f"| {Path(run).name} | {', '.join(HELD[a.held])} | {f[present].mean():.3f} | {cells[1]} | {cells[0]} | {cells[2]} | "
              f"{'; '.join(per)} | {records} |", flush=True)


if __name__ == "__main__":
    main()
