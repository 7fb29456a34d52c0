"""Weight-space interpolation of a model and its fine-tune (WiSE-FT), scored on validation.

    python scripts/weight_interpolation.py BASE FINETUNED [--alphas 0 0.25 0.5 0.75 1] [--write ALPHA --out RUN]

BASE is a zoo name or run folder, FINETUNED a run fine-tuned from it (`init`), so both lie in
one basin of the loss and their weights can be mixed: (1 - alpha) BASE + alpha FINETUNED, every
tensor, BatchNorm statistics included, in the balanced frame (each one's prior correction taken
out of its head first). Wortsman et al. (2022, "Robust fine-tuning of zero-shot models") found
such a mix keeps what the base knew and what the fine-tune added, robustness to inputs neither
saw among it. Per alpha: a prior correction chosen on validation (as training chooses it), then
validation macro / AF / noise F1 as stored, and on the validation windows of two-lead records
turned 45 degrees towards their other lead, a lead no training recorder recorded and beyond the
+-30 degrees of lead mixing (`augment.lead_mix_deg`): the README's "Lead placement and lead
mixing for the zoo".
--write ALPHA writes that mix as a run folder (calibrated as `tinyrhythm calibrate` does), which
`quantize`, `scripts/rr_context.py` and `scripts/package_zoo.py` then take like a trained run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from lead_rotation import rotation_figures  # scripts/ is on the path of a script run from it

from tinyrhythm.checkpoint import save_atomic
from tinyrhythm.evaluate.metrics import classification_report
from tinyrhythm.evaluate.scoring import correct_priors, eval_indices, predict_proba
from tinyrhythm.runtime import load_model
from tinyrhythm.runtime.card import read_json
from tinyrhythm.train.calibrate import calibrate
from tinyrhythm.train.config import training_store

ANGLE_DEG = 45.0


def balanced_state(name: str) -> tuple[dict, object]:
    """A model's weights with its prior correction taken out of the head, and the loaded model."""
    lm = load_model(name)
    state = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    if lm.card.logit_offsets:
        state["fc.bias"] -= torch.as_tensor(lm.card.logit_offsets, dtype=state["fc.bias"].dtype)
    return state, lm


def mix(a: dict, b: dict, alpha: float) -> dict:
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise SystemExit("the two models differ in shape: FINETUNED must be a fine-tune of BASE")
    # Integer buffers (BatchNorm's batch counter) are bookkeeping, not weights: keep the base's.
    return {k: (1 - alpha) * a[k] + alpha * b[k] if a[k].is_floating_point() else a[k] for k in a}


def figures(model, ws, idx: np.ndarray) -> dict:
    pred = predict_proba(model, ws, idx, "cpu").argmax(1)
    return {"stored": classification_report(ws.labels[idx].astype(int), pred, ws.classes),
            "rotated": rotation_figures(model, ws, idx, (ANGLE_DEG,), stored=pred)[ANGLE_DEG]}


def mixed_model(base_lm, state: dict, ws):
    model = base_lm.model
    model.load_state_dict(state)
    prior = correct_priors(model, ws, "cpu")
    return model.eval(), prior


def write_run(base: str, finetuned: str, alpha: float, state: dict, out: Path) -> dict:
    """The mix as a run folder (the fine-tune's card, its weights replaced), calibrated afresh."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        cfg = read_json(Path(finetuned) / "config.json", "run card")
        cfg.pop("weights_sha256", None)
        cfg["interpolation"] = {"base": base, "finetuned": str(finetuned), "alpha": alpha}
        (raw / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        save_atomic(state, raw / "model.pt")
        (raw / "metrics.json").write_text("{}\n")  # no recorded correction: calibrate chooses the first
        metrics = calibrate(raw, out)
        shutil.rmtree(raw)
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("finetuned")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--write", type=float, default=None, help="write the mix at this alpha as a run folder")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    a, base_lm = balanced_state(args.base)
    b, ft_lm = balanced_state(args.finetuned)
    if args.write is not None:
        if not args.out:
            raise SystemExit("--write needs --out")
        m = write_run(args.base, args.finetuned, args.write, mix(a, b, args.write), Path(args.out))
        print(f"{args.out}: val macro F1 {m['val']['macro_f1']:.4f}, AF F1 {m['val']['af_f1']:.4f}")
        return
    ws = training_store(ft_lm)
    idx = eval_indices(ws, "val")
    print(f"validation: {len(idx):,} windows, those of two-lead records also turned {ANGLE_DEG:g} degrees\n")
    print("| alpha | prior correction (AF, noise) | val macro F1 | AF F1 | noise F1 | turned: macro F1 | AF F1 | AF precision / recall |")
    print("|---|---|---|---|---|---|---|---|")
    for alpha in args.alphas:
        model, prior = mixed_model(base_lm, mix(a, b, alpha), ws)
        f = figures(model, ws, idx)
        s, r = f["stored"], f["rotated"]
        off = prior["logit_offsets"]
        print(f"| {alpha:g} | {off[1]:+g}, {off[2]:+g} | {s['macro_f1']:.3f} | {s['af_f1']:.3f} | "
              f"{s['per_class']['noise']['f1']:.3f} | {r['macro_f1']:.3f} | {r['af_f1']:.3f} | "
              "{precision:.3f} / {recall:.3f} |".format(**r["per_class"]["arrhythmia"]), flush=True)


if __name__ == "__main__":
    main()
