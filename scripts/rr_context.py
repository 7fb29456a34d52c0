"""RR context weighed with a model's window probabilities: measured, then fitted into its card.

    python scripts/rr_context.py MODEL [MODEL ...] [--test [--detector NAME]] [--write] [--context-s S ...]

For the validation windows of MITDB, AFTDB, AFPDB and CinC 2017 (every validation AF window):
the model's log-probabilities, and the RR features of `runtime.rr_context` from the 30 s around
each window's centre (as much of it as a short CinC record has), R peaks from `windows.beats` on
the record at its own rate, as the monitor and `predict` find them. Two class-balanced logistic regressions, on
the log-probabilities alone and with the RR features, scored out of fold (5 folds grouped by
record), each with its best decision offsets (the same search for both). Prints macro / per-class
F1 (and the model's own), AF recall by context rate band, and CinC 2017 records as `predict`
decides them (mean window probability, then record offsets chosen on the validation records):
the README's "Slow AF" and "RR context". --write fits the fusion on all validation windows, keeps the offsets
chosen out of fold (and the record offsets `predict` uses), and writes it into the model's card
as `rr_context` (a zoo card, or a run's config.json), which `monitor` and `predict` then apply (run `scripts/rr_context_monitor.py --write` after it to
choose the monitor's AF shift again). --test scores that fit, and the card's fusion as it is, on
the test split's windows afterwards (measured after the choice, not used to make it), also
pooled over MITDB and AFTDB, the issue's AF target pool; --detector NAME scores the card's fusion there again
on the beats of `scripts/beat_detection.py`'s detector NAME: one NeuroKit2 detector after NeuroKit2's
cleaning (a device's simpler detector), or c, the C export's streaming tr_beats.c. --context-s S ...
fits and scores the fusion with the beats within S seconds each side of a window's centre (default
15, the cards'), each length side by side on the same windows; --write takes one.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold
from beat_detection import detector as beat_detector  # scripts/ is on the path of a script run from it
from cross_dataset import test_records

from tinyrhythm.evaluate.scoring import eval_indices, predict_proba, record_means
from tinyrhythm.paths import write_atomic
from tinyrhythm.runtime import load_model
from tinyrhythm.runtime.rr_context import RRContext, context_features, model_inputs
from tinyrhythm.train.config import training_store
from tinyrhythm.windows.labelling import on_record_grid

DATASETS = ("mitdb", "aftdb", "afpdb", "cinc2017")
CONTEXT_S = 15.0  # each side of a window's centre
GRID = np.arange(-6, 1.01, 0.5)


@functools.cache
def record_beats(dataset: str, split: str, detector: str = "used") -> dict[str, np.ndarray]:
    """R-peak times (s) of every record of a dataset's split (lead 0), by record name, by one of
    `scripts/beat_detection.py`'s detectors (default: the monitor's)."""
    find = beat_detector(detector)
    return {r.record_id.split(":")[0]: find(r.signal, r.fs) / r.fs for r in test_records(dataset, split)}


@functools.cache
def split_features(ws, split: str, detector: str = "used", half_s: float = CONTEXT_S):
    """(window indices, RR features of the beats within half_s of each centre, record groups, on
    `predict`'s grid) of a split's windows of DATASETS."""
    ds, names = ws.dataset_index()
    idx = eval_indices(ws, split)
    idx = idx[np.isin(np.array(names)[ds[idx]], DATASETS)]
    rec_names, keys, starts = ws.record_names(), ws.record_keys(), ws.starts()
    feats, groups = np.zeros((len(idx), 4), np.float32), []
    for k, i in enumerate(idx):
        name, base = names[ds[i]], rec_names[keys[i]].split(":")[0]
        centre = (starts[i] + ws.window_length / 2) / ws.fs
        feats[k] = context_features(record_beats(name, split, detector)[base], np.array([centre]), half_s)[0]
        groups.append(f"{name}/{base}")
    # `predict` classifies a record's windows at half-window hops from its start; the store has more.
    groups = np.array(groups)
    on_grid = ~np.char.startswith(groups, "cinc2017/") | on_record_grid(starts[idx], ws.window_length)
    return idx, feats, groups, on_grid


def cinc_record_means(y: np.ndarray, probs: np.ndarray, groups: np.ndarray, on_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log of the mean window probability, label) of every CinC 2017 record: how `predict` decides one."""
    cinc = np.char.startswith(groups.astype(str), "cinc2017/") & on_grid
    mean, y_rec = record_means(probs[cinc], y[cinc], groups[cinc])
    return np.log(np.clip(mean, 1e-12, 1)), y_rec


def best_offsets(logp: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The AF and noise offsets (normal fixed at 0) of the best macro F1 over GRID."""
    _, a, b = max((f1_score(y, (logp + [0, a, b]).argmax(1), average="macro"), a, b) for a in GRID for b in GRID)
    return np.array([0.0, a, b])


def records(label: str, y: np.ndarray, probs: np.ndarray, groups: np.ndarray, on_grid: np.ndarray,
            offsets=(0.0, 0.0, 0.0)) -> str:
    """CinC 2017 records decided by their mean window probability (and record offsets), as `predict` decides them."""
    logp, y_rec = cinc_record_means(y, probs, groups, on_grid)
    f = f1_score(y_rec, (logp + offsets).argmax(1), labels=[0, 1, 2], average=None, zero_division=0)
    return (f"{label}: {len(y_rec):,} CinC records, macro F1 {f.mean():.3f}, AF {f[1]:.3f}, normal {f[0]:.3f}, "
            f"noise {f[2]:.3f} (record offsets {offsets[1]:+g}, {offsets[2]:+g})")


def holter_pool(label: str, y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> str:
    """AF F1 over the MITDB and AFTDB windows: the issue's target pool (CPSC 2021 has no validation or test patient)."""
    g = groups.astype(str)
    m = np.char.startswith(g, "mitdb/") | np.char.startswith(g, "aftdb/")
    f = f1_score(y[m], p[m], labels=[1], average=None, zero_division=0)[0]
    return f"{label}: MITDB + AFTDB windows ({int(m.sum()):,}), AF F1 {f:.3f}"


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


def fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(max_iter=3000, class_weight="balanced").fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-probabilities of the fusion fitted out of fold, 5 folds grouped by record, and the best
    decision offsets on them)."""
    oof = np.zeros((len(y), 3))
    for tr, te in GroupKFold(5).split(x, y, groups):
        oof[te] = fit(x[tr], y[tr]).predict_log_proba(x[te])
    return oof, best_offsets(oof, y)


def write_card(lm, fusion: RRContext, n: int) -> Path:
    path = Path(lm.card.card_path)
    card = json.loads(path.read_text())
    card["rr_context"] = fusion.to_card(fitted_on=f"{n:,} validation windows of {', '.join(DATASETS)}",
                                        fitted_by="scripts/rr_context.py --write")
    write_atomic(path, json.dumps(card, indent=2) + "\n")
    return path


def measure(model: str, test: bool, write: bool, detector: str | None = None,
            contexts: tuple[float, ...] = (CONTEXT_S,)) -> None:
    lm = load_model(model)
    ws = training_store(lm)
    idx, feats, groups, grid = split_features(ws, "val")
    probs, y = predict_proba(lm.model, ws, idx, "cpu"), ws.labels[idx].astype(int)
    print(f"{model}: {len(y):,} validation windows ({', '.join(DATASETS)}), AF {int((y == 1).sum()):,}")
    print(line("  as shipped", y, probs.argmax(1)))
    print(records("  as shipped", y, probs, groups, grid))
    own_off = best_offsets(*cinc_record_means(y, probs, groups, grid))
    print(records("  as shipped, record offsets chosen here", y, probs, groups, grid, own_off))
    if test:
        t_idx, t_feats, t_groups, t_grid = split_features(ws, "test")
        t_probs, t_y = predict_proba(lm.model, ws, t_idx, "cpu"), ws.labels[t_idx].astype(int)
        print(line("  test, as shipped", t_y, t_probs.argmax(1)))
        print(holter_pool("  test, as shipped", t_y, t_probs.argmax(1), t_groups))
        if lm.card.rr_fusion is not None:  # the card's fusion with the monitor's AF shift: its windows before smoothing
            card_p = lm.card.rr_fusion.probabilities(t_probs, t_feats).argmax(1)
            print(line("  test, the card's rr_context", t_y, card_p, t_feats))
            print(holter_pool("  test, the card's rr_context", t_y, card_p, t_groups))
            if detector:  # the same fusion on another detector's beats: what a device's detector costs
                d_feats = split_features(ws, "test", detector)[1]
                d_p = lm.card.rr_fusion.probabilities(t_probs, d_feats).argmax(1)
                print(line(f"  test, the card's rr_context on {detector} beats", t_y, d_p, d_feats))
                print(holter_pool(f"  test, the card's rr_context on {detector} beats", t_y, d_p, t_groups))
                print(f"  test, {detector} beats: the same class as with the monitor's beats on "
                      f"{np.mean(d_p == card_p):.3f} of windows")
        print(records("  test, as shipped", t_y, t_probs, t_groups, t_grid))
        print(records("  test, as shipped, validation's record offsets", t_y, t_probs, t_groups, t_grid, own_off))
    runs = [("log-probabilities", None)] + [
        ("log-probabilities + RR context" + ("" if c == CONTEXT_S else f" of {2 * c:g} s"), c) for c in contexts]
    for label, half_s in runs:
        f = split_features(ws, "val", half_s=half_s)[1] if half_s else np.zeros_like(feats)  # zeros: no RR inputs
        x = model_inputs(probs, f)
        oof, off = out_of_fold(x, y, groups)
        print(line(f"  {label} (out of fold)", y, (oof + off).argmax(1), f if half_s else feats))
        print(holter_pool(f"  {label} (out of fold)", y, (oof + off).argmax(1), groups))
        # A whole short record is decided by its windows' mean: its own offsets, chosen on the validation records.
        rec_off = best_offsets(*cinc_record_means(y, np.exp(oof), groups, grid))
        print(records(f"  {label} (out of fold)", y, np.exp(oof), groups, grid, rec_off))
        if not half_s or not (test or write):
            continue
        reg = fit(x, y)
        fusion = RRContext(reg.coef_, reg.intercept_, off, half_s, rec_off)
        if test:
            t_f = split_features(ws, "test", half_s=half_s)[1]
            t_fused = fusion.probabilities(t_probs, t_f)
            print(line("  test, fitted on validation", t_y, t_fused.argmax(1), t_f))
            print(holter_pool("  test, fitted on validation", t_y, t_fused.argmax(1), t_groups))
            t_raw = fusion.probabilities(t_probs, t_f, np.zeros(3))
            print(records("  test, fitted on validation", t_y, t_raw, t_groups, t_grid, rec_off))
        if write:
            print(f"  wrote rr_context into {write_card(lm, fusion, len(y))}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--test", action="store_true", help="score the fit on the test split afterwards")
    ap.add_argument("--write", action="store_true", help="write the fusion fitted on validation into the card")
    ap.add_argument("--detector", help="with --test: also score the card's fusion on this NeuroKit2 detector's beats "
                                       "(e.g. pantompkins1985), or on the C export's detector (c), as a device's "
                                       "own detector would give them")
    ap.add_argument("--context-s", type=float, nargs="+", default=[CONTEXT_S], metavar="S",
                    help="seconds of beats each side of a window's centre (default %(default)s); several are "
                         "scored side by side")
    args = ap.parse_args()
    if args.write and len(args.context_s) != 1:
        ap.error("--write takes one --context-s")
    if min(args.context_s) < 1 or max(args.context_s) > 300:
        ap.error("--context-s takes seconds in 1..300")
    torch.set_num_threads(1)
    for model in args.models:
        measure(model, args.test, args.write, args.detector, tuple(args.context_s))


if __name__ == "__main__":
    main()
