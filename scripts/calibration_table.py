"""Compare prior corrections: the README's calibration table from run folders.

    python scripts/calibration_table.py RUN [RUN ...]

Each RUN is a rhythm3 run (e.g. runs/rhythm-cnn3 and its `tinyrhythm calibrate --weighting
datasets` sibling). Per run: its logit offsets, validation macro F1 with windows pooled and with
every dataset weighted the same, validation AF F1 of the CinC 2017 windows and records (records:
mean window probability, as `predict` decides), the share of MITDB and CinC non-AF windows
called noise, then the test figures (CinC records, and the long-record figures of
RUN/cross_dataset.json when scripts/cross_dataset.py wrote it). Selection uses the val columns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from sklearn.metrics import f1_score

from tinyrhythm.evaluate.scoring import eval_indices, predict_proba, record_means, split_weights
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store
from tinyrhythm.windows.labelling import on_record_grid


def figures(run: str) -> dict:
    lm = load_model(run)
    ws = training_store(lm)
    ds, names = ws.dataset_index()
    out = {"offsets": lm.card.logit_offsets}
    for split in ("val", "test"):
        idx = eval_indices(ws, split)
        proba = predict_proba(lm.model, ws, idx, "cpu")
        y, p, d = ws.labels[idx].astype(int), proba.argmax(1), ds[idx]
        for weighting in ("windows", "datasets"):
            out[f"{split}_macro_{weighting}"] = f1_score(y, p, labels=[0, 1, 2], average="macro", zero_division=0,
                                                         sample_weight=split_weights(ws, split, weighting))
        cinc = d == names.index("cinc2017")
        out[f"{split}_cinc_af_windows"] = f1_score(y[cinc], p[cinc], labels=[1], average=None, zero_division=0)[0]
        grid = cinc & on_record_grid(ws.starts()[idx], ws.window_length)
        mean, y_rec = record_means(proba[grid], y[grid], ws.record_keys()[idx][grid])
        out[f"{split}_cinc_af_records"] = f1_score(y_rec, mean.argmax(1), labels=[1], average=None, zero_division=0)[0]
        for name in ("mitdb", "cinc2017"):
            m = (d == names.index(name)) & (y != 2)
            out[f"{split}_{name}_called_noise"] = float((p[m] == 2).mean())
    cross = Path(run) / "cross_dataset.json"
    if cross.is_file():
        long = json.loads(cross.read_text())["long"]
        out["test_aftdb_af_f1_per_second"] = long["aftdb"]["af_f1_per_second"]
        out["test_afpdb_false_af_min_per_hour"] = long["afpdb"]["false_af_min_per_hour"]
    return out


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    print("| run | offsets (AF, noise) | val macro F1 pooled | val macro F1 per dataset | val CinC AF F1 windows / records "
          "| val non-AF called noise MITDB / CinC | test CinC AF F1 records | test AFTDB per-second AF F1 "
          "| test AFPDB false AF min/h |\n|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        f = figures(run)
        off = f["offsets"] or [0, 0, 0]
        print(f"| {Path(run).name} | {off[1]:+.2f}, {off[2]:+.2f} | {f['val_macro_windows']:.3f} | "
              f"{f['val_macro_datasets']:.3f} | {f['val_cinc_af_windows']:.3f} / {f['val_cinc_af_records']:.3f} | "
              f"{100 * f['val_mitdb_called_noise']:.1f} % / {100 * f['val_cinc2017_called_noise']:.1f} % | "
              f"{f['test_cinc_af_records']:.3f} | {f.get('test_aftdb_af_f1_per_second', '–')} | "
              f"{f.get('test_afpdb_false_af_min_per_hour', '–')} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
