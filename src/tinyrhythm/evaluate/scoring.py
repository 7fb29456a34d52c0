"""Scoring a model on a window store's split: probabilities, the classification report at
window or record level, and the prior correction chosen on validation.

Below training (the loop selects epochs with it) and used by evaluation, compression and
the scripts that build the result tables.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import TinyRhythmError
from ..windows.labelling import on_record_grid
from ..windows.store import WindowStore
from .metrics import classification_report

RECORD_LEVEL_DATASETS = {"cinc2017"}  # one label per record: score records, not windows


def eval_indices(store: WindowStore, split: str) -> np.ndarray:
    """Windows scored for a split: for record-level datasets the `record_starts` windows of each
    record, the ones `predict` classifies."""
    idx = store.indices(split)
    if record_level(store):
        idx = idx[on_record_grid(store.starts()[idx], store.window_length)]
    return idx


def record_level(store: WindowStore) -> bool:
    return all(s["dataset"] in RECORD_LEVEL_DATASETS for s in store.manifest["sources"])


@torch.no_grad()
def predict_logits(model: torch.nn.Module, store: WindowStore, idx: np.ndarray, device, batch: int = 1024) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(idx), batch):
        x, _ = store.batch(idx[i : i + batch])
        out.append(model(torch.from_numpy(x).unsqueeze(1).to(device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(store.classes)), np.float32)


def predict_proba(model: torch.nn.Module, store: WindowStore, idx: np.ndarray, device, batch: int = 1024) -> np.ndarray:
    return torch.softmax(torch.from_numpy(predict_logits(model, store, idx, device, batch)), dim=1).numpy()


def split_probabilities(model, store: WindowStore, split: str, device) -> tuple[np.ndarray, np.ndarray, str]:
    """(class probabilities, true labels, "window" or "record") for one split; for
    record-level datasets the mean window probability per record."""
    idx = eval_indices(store, split)
    proba = predict_proba(model, store, idx, device)
    y = store.labels[idx].astype(np.int64)
    if not record_level(store):
        return proba, y, "window"
    return (*record_means(proba, y, store.record_keys()[idx]), "record")


def record_means(proba: np.ndarray, y: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean window probability, label) per record, the windows grouped by record key: how
    `predict` decides a record."""
    uniq, inv = np.unique(keys, return_inverse=True)
    summed = np.zeros((len(uniq), proba.shape[1]))
    np.add.at(summed, inv, proba)
    y_rec = np.zeros(len(uniq), np.int64)
    y_rec[inv] = y
    return summed / np.bincount(inv)[:, None], y_rec


def score_split(model, store: WindowStore, split: str, device, threshold: float | None = None) -> dict:
    proba, y, level = split_probabilities(model, store, split, device)
    abstained = proba.max(1) < threshold if threshold else None
    report = classification_report(y, proba.argmax(1), store.classes, abstained)
    report["level"] = level
    return report


def dataset_reports(store: WindowStore, idx: np.ndarray, pred: np.ndarray,
                    pools: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict]:
    """classification_report of predictions `pred` for the store's windows `idx`: per dataset
    present, then "all", then each named pool of datasets that has windows there."""
    y = store.labels[idx].astype(int)
    ds, names = store.dataset_index()
    ds = ds[idx]
    groups = {name: ds == i for i, name in enumerate(names)}
    groups["all"] = np.ones(len(idx), bool)
    for pool, members in (pools or {}).items():
        groups[pool] = np.isin(ds, [names.index(n) for n in members if n in names])
    return {name: classification_report(y[m], pred[m], store.classes) for name, m in groups.items() if m.any()}


PRIOR_GRID = np.round(np.arange(-6.0, 4.01, 0.25), 2)
# How validation windows count when the prior correction is chosen: "datasets" gives every
# dataset (recorder) of the split the same total weight, "windows" counts each window once.
PRIOR_WEIGHTING = ("datasets", "windows")


def split_logits(model, store: WindowStore, split: str, device) -> tuple[np.ndarray, np.ndarray]:
    idx = eval_indices(store, split)
    return predict_logits(model, store, idx, device), store.labels[idx].astype(np.int64)


def split_weights(store: WindowStore, split: str, weighting: str) -> np.ndarray | None:
    """Per-window weights of a split's scored windows under `weighting` (None: all equal).

    Pooled windows let the source with the most windows set the deployment prior: in the
    rhythm store over half the validation windows are one Holter database's sinus rhythm.
    Weighted by dataset, each recorder counts as much as any other (README, "Calibration",
    measures both)."""
    if weighting not in PRIOR_WEIGHTING:
        raise TinyRhythmError(f"prior weighting {weighting!r} is not one of {', '.join(PRIOR_WEIGHTING)}")
    ds = store.dataset_index()[0][eval_indices(store, split)]
    counts = np.bincount(ds)
    if weighting == "windows" or np.count_nonzero(counts) < 2:
        return None
    return 1.0 / counts[ds]


def prior_offsets(z: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Per-class logit offsets (first class fixed at 0) that maximise macro F1 on (z, y), each
    window counted with its weight: a coordinate search over PRIOR_GRID (41 values), two sweeps.
    Returns (offsets, F1 before, after)."""
    from sklearn.metrics import f1_score

    k = z.shape[1]

    def macro(off):
        return f1_score(y, (z + off).argmax(1), labels=list(range(k)), average="macro", zero_division=0,
                        sample_weight=weights)

    best_off = np.zeros(k)
    before = best = macro(best_off)
    for _ in range(2):
        for c in range(1, k):
            for v in PRIOR_GRID:
                off = best_off.copy()
                off[c] = v
                f = macro(off)
                if f > best + 1e-9:
                    best, best_off = f, off
    return best_off, float(before), float(best)


def correct_priors(model: torch.nn.Module, store: WindowStore, device, weighting: str = "windows") -> dict:
    """Fold a per-class logit offset into the head's bias, chosen on validation macro F1.

    Balanced sampling trains the model as if every class were equally common; in a
    recording almost every window is non-AF rhythm, so without a correction the rare
    classes are over-called (false AF minutes, false noise). The offsets are the prior
    correction a Bayes decision would make, chosen on the validation split only (its windows
    weighted by `weighting`, see split_weights); they live in the bias, so every exported form
    (ONNX, int8, C, TFLite) carries them. The model's head must be in the balanced frame (no
    earlier correction folded in)."""
    weights = split_weights(store, "val", weighting)
    off, before, after = prior_offsets(*split_logits(model, store, "val", device), weights)
    with torch.no_grad():
        model.fc.bias += torch.as_tensor(off, dtype=model.fc.bias.dtype, device=model.fc.bias.device)
    return {"logit_offsets": [float(v) for v in off], "weighting": weighting if weights is not None else "windows",
            "val_macro_f1_before": round(before, 4), "val_macro_f1_after": round(after, 4)}
