"""Three classes or four? Score models of both tasks on the same windows: the rhythm3 store's
validation split (rhythm4's "other" merged into "normal" by summing the probabilities), so the
question is answered on the deployment task and on validation data only.

    python scripts/task_comparison.py runs/v30-rhythm-cnn3 runs/rhythm4-cnn3 [--split val]

A rhythm4 model's head carries its own prior correction (chosen on its own validation
windows over four classes); here a second, three-class correction is also chosen on the
rhythm3 validation windows for each model alike, and both figures are printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tinyrhythm.evaluate.metrics import classification_report
from tinyrhythm.evaluate.scoring import eval_indices, predict_logits, prior_offsets
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import TrainConfig
from tinyrhythm.windows.cache import ensure_store

RHYTHM3 = ["normal", "arrhythmia", "noise"]


def three_class_logits(lm, store, split: str) -> tuple[np.ndarray, np.ndarray]:
    idx = eval_indices(store, split)
    z = predict_logits(lm.model, store, idx, "cpu")
    y = store.labels[idx].astype(np.int64)
    if lm.classes == RHYTHM3:
        return z, y
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    merged = np.stack([p[:, lm.classes.index("normal")] + p[:, lm.classes.index("other")],
                       p[:, lm.classes.index("arrhythmia")], p[:, lm.classes.index("noise")]], 1)
    return np.log(np.maximum(merged, 1e-12)), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", default="val", choices=("val",))  # selection data only
    ap.add_argument("--out", default=None, help="write the figures as JSON")
    a = ap.parse_args()
    store = None
    rows = {}
    for run in a.runs:
        lm = load_model(run)
        if store is None:
            cfg = TrainConfig.from_dict({**lm.card.train, "task": "rhythm3", "store": ""})
            store = ensure_store(cfg.store_config(), quiet=True)
        z, y = three_class_logits(lm, store, a.split)
        as_is = classification_report(y, z.argmax(1), RHYTHM3)
        off, _, _ = prior_offsets(z, y)
        corrected = classification_report(y, (z + off).argmax(1), RHYTHM3)
        rows[Path(run).name] = {"task": lm.task, "windows": int(len(y)), "as_shipped": as_is, "recorrected": corrected,
                                "offsets": [float(v) for v in off]}
        for key, r in (("as shipped", as_is), ("3-class correction", corrected)):
            pc = r["per_class"]
            print(f"{Path(run).name:<20} {lm.task:<8} {key:<18} macro F1 {r['macro_f1']:.4f}  AF F1 "
                  f"{pc['arrhythmia']['f1']:.4f}  normal {pc['normal']['f1']:.4f}  noise {pc['noise']['f1']:.4f}  "
                  f"({len(y):,} {a.split} windows)")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
