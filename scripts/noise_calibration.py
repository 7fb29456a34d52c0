"""Does real noise in validation change the noise prior correction? One run, two choices.

    python scripts/noise_calibration.py RUN

Takes RUN's recorded correction out (the balanced frame), chooses the offsets again on its
validation windows with and without the NSTDB noise chunks (evaluate.scoring.prior_offsets,
windows pooled, as training does), and prints per split and dataset the AF and noise F1 and
the share of non-noise windows called noise under each. Meant for a run whose store split puts
NSTDB chunks in validation (configs/rhythm-split1.json: split seed 1, 15/4/5 chunks).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from sklearn.metrics import f1_score

from tinyrhythm.evaluate.scoring import predict_logits, prior_offsets
from tinyrhythm.runtime import load_model
from tinyrhythm.train.config import training_store


def main(run: str) -> None:
    torch.set_num_threads(1)
    lm = load_model(run)
    ws = training_store(lm)
    recorded = np.array(lm.card.logit_offsets or [0.0] * len(lm.classes))
    ds, names = ws.dataset_index()
    if "nstdb" not in names:
        sys.exit(f"{run}: its store has no NSTDB windows")
    scores = {}
    for split in ("val", "test"):
        idx = ws.indices(split)
        scores[split] = (predict_logits(lm.model, ws, idx, "cpu") - recorded, ws.labels[idx].astype(int), ds[idx])
    z, y, d = scores["val"]
    nstdb = d == names.index("nstdb")
    print(f"{run}: {int(nstdb.sum())} NSTDB validation windows of {len(d)}")
    for tag, keep in (("with NSTDB", np.ones_like(nstdb)), ("without NSTDB", ~nstdb)):
        off = prior_offsets(z[keep], y[keep])[0]
        print(f"{tag}: offsets (AF, noise) {off[1]:+.2f}, {off[2]:+.2f}")
        for split, (zs, ys, dsplit) in scores.items():
            p = (zs + off).argmax(1)
            f = f1_score(ys, p, labels=[0, 1, 2], average=None, zero_division=0)
            cells = []
            for i in np.unique(dsplit):
                m = dsplit == i
                af = f"AF {f1_score(ys[m], p[m], labels=[1], average=None, zero_division=0)[0]:.3f} " if (ys[m] == 1).any() else ""
                nz = f"noise {f1_score(ys[m], p[m], labels=[2], average=None, zero_division=0)[0]:.3f} " if (ys[m] == 2).any() else ""
                called = f"non-noise called noise {100 * (p[m][ys[m] != 2] == 2).mean():.1f} %" if (ys[m] != 2).any() else ""
                cells.append(f"{names[i]}: {af}{nz}{called}".strip())
            print(f"  {split}: macro F1 {f.mean():.3f}, AF {f[1]:.3f}, noise {f[2]:.3f} | " + "; ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1])
