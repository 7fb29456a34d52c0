"""Choose, on validation recordings, how the monitor decides AF: the network alone or with RR context.

    python scripts/rr_context_monitor.py MODEL [--split val] [--shifts 0 0.5 1 1.5 2] [--write]
    python scripts/rr_context_monitor.py MODEL --split test

The fusion's offsets from `scripts/rr_context.py --write` were chosen on window-level macro F1;
the monitor decides after HMM smoothing and 30 s episodes, where the best AF threshold differs.
Each row runs `monitor` (default settings) with the AF decision offset raised by a shift, on the
network's probabilities alone (an identity fusion) and on the card's RR context fusion, over
(1) 3 x 60 min of joined CinC 2017 records of the split (AF, other rhythm and noise episodes;
`datasets.concat`, as the HMM was chosen), mean duration AF F1, episode Se / PPV, |burden
error| and false AF min/h, and (2) every MITDB, AFTDB and AFPDB record of the split (lead 0),
pooled as `scripts/cross_dataset.py` pools them. The rule: the best mean of joined-CinC AF F1
and AFTDB per-second AF F1 among rows with at most 1 false-AF minute per hour on every non-AF
set. --write stores the winning fusion shift in the card (`rr_context.offsets`, with
`window_offsets` kept). --split test prints the card as it is against the network alone,
measured after the choice. Prints a markdown table (the README's "RR context in the monitor").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from cross_dataset import long_records  # scripts/ is on the path of a script run from it

from tinyrhythm.datasets.concat import cinc_episode_recording
from tinyrhythm.monitor import monitor
from tinyrhythm.monitor.evaluate import evaluate_episodes, read_reference
from tinyrhythm.paths import write_atomic
from tinyrhythm.runtime import load_model
from tinyrhythm.runtime.rr_context import FEATURES

MAX_FALSE_AF = 1.0  # min/h on every non-AF validation set


def identity(card: dict, n: int) -> dict:
    """A fusion that returns the network's own probabilities (plus the shift)."""
    k = n + len(FEATURES)
    return {**card, "coef": [[float(i == j) for j in range(k)] for i in range(n)], "intercept": [0.0] * n,
            "window_offsets": [0.0] * n}


def row(lm, rr: dict, shift: float, cinc: list[Path], tmp: Path, split: str) -> dict:
    base = rr.get("window_offsets", rr["offsets"])
    lm.card = dataclasses.replace(lm.card, rr_context={**rr, "offsets": [base[0], base[1] + shift, *base[2:]]})
    ev = [evaluate_episodes(r, read_reference(r, "atr")) for r in (monitor(rec, lm) for rec in cinc)]
    m = lambda k: float(np.mean([e[k] for e in ev if e[k] is not None]))  # noqa: E731
    out = {"cinc_af_f1": m("af_f1_duration"), "cinc_episode_se": m("episode_sensitivity"),
           "cinc_episode_ppv": m("episode_ppv"), "cinc_burden_error": float(np.mean([abs(e["af_burden_error"]) for e in ev])),
           "cinc_false_af": m("false_af_min_per_hour")}
    for name, r in long_records(lm, tmp, split).items():
        out[f"{name}_af_f1"], out[f"{name}_false_af"] = r["af_f1_per_second"], r["false_af_min_per_hour"]
    return out


def score(r: dict) -> float:
    worst = max(v for k, v in r.items() if k.endswith("_false_af") and v is not None)
    return -1.0 if worst > MAX_FALSE_AF else (r["cinc_af_f1"] + (r.get("aftdb_af_f1") or 0.0)) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--split", choices=("val", "test"), default="val")
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0])
    ap.add_argument("--write", action="store_true", help="store the winning fusion shift in the card (val only)")
    ap.add_argument("--data", default=os.environ.get("TINYRHYTHM_DATA", "../shared/data"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    lm = load_model(args.model)
    card = dict(lm.card.rr_context or {})
    if not card:
        raise SystemExit(f"{args.model}: its card has no rr_context (scripts/rr_context.py --write fits one)")
    n = len(lm.classes)
    if args.split == "test":  # the card as it is, against the network alone
        chosen = float(card.get("monitor_af_shift", 0.0))
        grid = [("network alone", identity(card, n), 0.0), ("RR context (card)", card, chosen)]
    else:
        grid = [(label, fusion, s) for label, fusion in (("network alone", identity(card, n)), ("RR context", card))
                for s in args.shifts]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cinc = [cinc_episode_recording(d, args.split, 60, seed=s, root=Path(args.data) / "cinc2017" / "training2017")
                for s in (0, 1, 2)]
        for label, fusion, shift in grid:
            r = row(lm, fusion, shift, cinc, Path(d), args.split)
            rows.append((label, shift, r))
            if len(rows) == 1:
                print(f"{args.model}, {args.split}: joined CinC 2017 (3 x 60 min) and long records\n| decision | AF shift | "
                      + " | ".join(r) + " |\n|---|---|" + "---|" * len(r))
            print(f"| {label} | {shift:+g} | " + " | ".join("" if v is None else f"{v:.3f}" for v in r.values()) + " |",
                  flush=True)
    if args.split == "val":
        label, shift, best = max(rows, key=lambda t: score(t[2]))
        if score(best) < 0:
            print(f"no row keeps false AF <= {MAX_FALSE_AF} min/h on every non-AF set: nothing chosen or written "
                  "(try lower --shifts, e.g. -1.5 -1 -0.5)")
            return
        print(f"chosen: {label}, AF shift {shift:+g} (mean AF F1 {score(best):.3f}, false AF <= {MAX_FALSE_AF} min/h)")
        if args.write and label == "RR context":
            path = Path(lm.card.card_path)
            raw = json.loads(path.read_text())
            base = raw["rr_context"].get("window_offsets", raw["rr_context"]["offsets"])
            raw["rr_context"].update(window_offsets=base, offsets=[base[0], round(base[1] + shift, 4), *base[2:]],
                                     monitor_af_shift=shift, monitor_chosen_by="scripts/rr_context_monitor.py --write")
            write_atomic(path, json.dumps(raw, indent=2) + "\n")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
