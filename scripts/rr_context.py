"""Would 30 s of RR context help the network? A grouped cross-validation on validation windows.

    python scripts/rr_context.py RUN [--test]

For the validation windows of MITDB, AFTDB, AFPDB and CinC 2017 (every validation AF window):
the run's logits, and RR features of the 30 s around each window's centre (a CinC record: the
whole record), R peaks from `windows.beats` on the record at its own rate: median relative
successive RR difference, share of differences over 10 %, log mean rate. Two class-balanced
logistic regressions, on the logits alone and on logits + RR features, scored out of fold
(5 folds grouped by record), each with its best logit offsets (the same search for both).
Prints macro / per-class F1 (and the run's own) and AF recall by context rate band: the README's
"Slow AF". --test then fits both on all validation windows, keeps the offsets chosen above, and
scores the test split's windows (measured after the validation figures, not used to choose).
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from cross_dataset import test_records  # scripts/ is on the path of a script run from it
from rr_irregularity import relative_changes

from tinyrhythm.evaluate.scoring import eval_indices, predict_logits
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store
from tinyrhythm.windows.beats import detect_beats

DATASETS = ("mitdb", "aftdb", "afpdb", "cinc2017")
CONTEXT_S = 15.0  # each side of a window's centre


@functools.cache
def record_beats(dataset: str, split: str) -> dict[str, np.ndarray]:
    """R-peak times (s) of every record of a dataset's split (lead 0), by record name."""
    return {r.record_id.split(":")[0]: detect_beats(r.signal, r.fs) / r.fs for r in test_records(dataset, split)}


def rr_features(t: np.ndarray) -> np.ndarray:
    if len(t) < 5:
        return np.zeros(4, np.float32)
    rr = np.diff(t)
    d = relative_changes(rr)
    return np.array([np.median(d), np.mean(d > 0.1), np.log(60 / rr.mean()), 1.0], np.float32)


def split_inputs(lm, ws, split: str):
    """(logits, labels, RR features, record groups) of a split's windows of DATASETS."""
    ds, names = ws.dataset_index()
    idx = eval_indices(ws, split)
    idx = idx[np.isin(np.array(names)[ds[idx]], DATASETS)]
    rec_names, keys, starts = ws.record_names(), ws.record_keys(), ws.starts()
    feats, groups = [], []
    for i in idx:
        name, base = names[ds[i]], rec_names[keys[i]].split(":")[0]
        t = record_beats(name, split)[base]
        c = (starts[i] + ws.window_length // 2) / ws.fs
        feats.append(rr_features(t if name == "cinc2017" else t[(t >= c - CONTEXT_S) & (t <= c + CONTEXT_S)]))
        groups.append(f"{name}/{base}")
    return predict_logits(lm.model, ws, idx, "cpu"), ws.labels[idx].astype(int), np.stack(feats), groups


def line(label: str, y: np.ndarray, p: np.ndarray, feats: np.ndarray | None = None) -> str:
    f = f1_score(y, p, labels=[0, 1, 2], average=None, zero_division=0)
    out = f"{label}: macro F1 {f.mean():.3f}, AF {f[1]:.3f}, normal {f[0]:.3f}, noise {f[2]:.3f}"
    if feats is not None:
        rate, bands = np.exp(feats[:, 2]), []
        for lo, hi in ((0, 80), (80, 100), (100, 400)):
            af = (y == 1) & (feats[:, 3] > 0) & (rate >= lo) & (rate < hi)
            bands.append(f"{lo}-{hi} bpm {np.mean(p[af] == 1):.3f} ({int(af.sum())})")
        out += f"; AF recall {', '.join(bands)}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--test", action="store_true", help="then fit on all validation windows and score the test split")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lm = load_model(args.run)
    ws = training_store(lm)
    logits, y, feats, groups = split_inputs(lm, ws, "val")
    print(f"{len(y):,} validation windows ({', '.join(DATASETS)}), AF {int((y == 1).sum()):,}")
    print(line("the run as shipped", y, logits.argmax(1)))
    test = split_inputs(lm, ws, "test") if args.test else None
    if test is not None:
        print(line("test, the run as shipped", test[1], test[0].argmax(1)))
    for label, with_rr in (("logits", False), ("logits + RR context", True)):
        x = np.hstack([logits, feats]) if with_rr else logits
        oof = np.zeros((len(y), 3))
        for tr, te in GroupKFold(5).split(x, y, groups):
            model = LogisticRegression(max_iter=3000, class_weight="balanced").fit(x[tr], y[tr])
            oof[te] = model.predict_log_proba(x[te])
        grid = np.arange(-6, 1.01, 0.5)
        _, a, b = max((f1_score(y, (oof + [0, a, b]).argmax(1), average="macro"), a, b) for a in grid for b in grid)
        print(line(label, y, (oof + [0, a, b]).argmax(1), feats))
        if test is not None:  # fitted on validation alone, its offsets the ones chosen above
            model = LogisticRegression(max_iter=3000, class_weight="balanced").fit(x, y)
            xt = np.hstack([test[0], test[2]]) if with_rr else test[0]
            print(line(f"test, {label}", test[1], (model.predict_log_proba(xt) + [0, a, b]).argmax(1), test[2]))


if __name__ == "__main__":
    main()
