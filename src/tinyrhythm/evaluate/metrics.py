"""Classification metrics on labels and predictions (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def cinc2017_score(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> float:
    """The challenge's official score: mean of F1(N), F1(A), F1(O), F1_c = 2 TP_c / (true_c + pred_c)."""
    scores = []
    for name in ("N", "A", "O"):
        c = classes.index(name)
        tp = np.sum((y_true == c) & (y_pred == c))
        denom = np.sum(y_true == c) + np.sum(y_pred == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def classification_report(y_true, y_pred, classes: list[str], abstained: np.ndarray | None = None) -> dict:
    """Per-class precision/recall/F1, macro F1, accuracy, confusion matrix (rows = truth).

    Abstained items (confidence under a threshold) are excluded from the scores and
    reported as a rate.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n_total = len(y_true)
    abst_rate = 0.0
    if abstained is not None:
        abst_rate = float(np.mean(abstained)) if n_total else 0.0
        y_true, y_pred = y_true[~abstained], y_pred[~abstained]
    labels = list(range(len(classes)))
    if not len(y_true):  # everything abstained (or nothing to score): all scores are 0
        y_true = y_pred = np.zeros(0, dtype=np.int64)
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        out = {"n": 0, "accuracy": 0.0, "macro_f1": 0.0, "per_class": {c: dict(zero) for c in classes},
               "confusion_matrix": [[0] * len(classes) for _ in classes], "classes": list(classes),
               "abstention_rate": abst_rate}
        if {"N", "A", "O"} <= set(classes):
            out["cinc_score"], out["af_f1"] = 0.0, 0.0
        elif "arrhythmia" in classes:
            out["af_f1"] = 0.0
        return out
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
                      for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
        "abstention_rate": abst_rate,
    }
    if {"N", "A", "O"} <= set(classes):
        out["cinc_score"] = cinc2017_score(y_true, y_pred, classes)
        out["af_f1"] = out["per_class"]["A"]["f1"]
    elif "arrhythmia" in classes:  # study3 / rhythm3: the AF-or-flutter class
        out["af_f1"] = out["per_class"]["arrhythmia"]["f1"]
    return out
