"""Choose the monitor's hop, smoothing and minimum episode length by measurement.

Builds recordings of real CinC 2017 records of one split joined in labelled blocks
(tinyrhythm.datasets.concat), runs `monitor` with each setting, and prints episode and
duration-weighted AF figures averaged over the recordings. Choose on `--split val`;
report the chosen setting on `--split test` only.

    python scripts/monitor_smoothing.py --split val --seeds 0 1 2
    python scripts/monitor_smoothing.py --split test --seeds 0 1 2 --only default
    python scripts/monitor_smoothing.py --model rhythm-cnn3-int8 --only default --rr-context off
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from tinyrhythm.datasets.concat import cinc_episode_recording
from tinyrhythm.runtime import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
from tinyrhythm.monitor.evaluate import evaluate_episodes, read_reference

GRID = [(hop, sm, w, stay, md) for hop in (2.048, 4.096)
        for sm, w, stay in (("none", 1, 0.9), ("mean", 5, 0.9), ("mean", 9, 0.9), ("hmm", 5, 0.9), ("hmm", 5, 0.99))
        for md in (0.0, 30.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cnn3-kd-int8")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--only", choices=("default",), default=None, help="just the default MonitorConfig")
    ap.add_argument("--rr-context", choices=("on", "off"), default="on",
                    help="the model card's RR context fusion (MonitorConfig.rr_context)")
    ap.add_argument("--data", default=os.environ.get("TINYRHYTHM_DATA", "../shared/data"))
    args = ap.parse_args()
    lm = load_model(args.model)
    d = MonitorConfig()
    grid = [(d.hop_s, d.smoothing, d.smooth_width, d.hmm_stay, d.min_duration_s)] if args.only else GRID
    root = Path(args.data) / "cinc2017" / "training2017"
    with tempfile.TemporaryDirectory() as tmp:
        recs = [cinc_episode_recording(tmp, args.split, args.minutes, seed=s, root=root) for s in args.seeds]
        print(f"{args.model} on {len(recs)} x {args.minutes:g} min of joined CinC {args.split} records")
        print("| hop s | smoothing | min episode s | AF F1 (duration) | episode Se | episode PPV | abs burden error "
              "| false AF min/h |\n|---|---|---|---|---|---|---|---|")
        for hop, sm, w, stay, md in grid:
            cfg = MonitorConfig(hop_s=hop, smoothing=sm, smooth_width=w, hmm_stay=stay, min_duration_s=md,
                                rr_context=args.rr_context == "on")
            ev = []
            for rec in recs:
                r = monitor(rec, lm, cfg=cfg)
                ev.append(evaluate_episodes(r, read_reference(r, "atr")))
            m = lambda k: np.mean([e[k] for e in ev if e[k] is not None])  # noqa: E731
            name = {"none": "none", "mean": f"mean of {w}", "hmm": f"HMM stay {stay}"}[sm]
            print(f"| {hop:g} | {name} | {md:g} | {m('af_f1_duration'):.3f} | {m('episode_sensitivity'):.3f} | "
                  f"{m('episode_ppv'):.3f} | {np.mean([abs(e['af_burden_error']) for e in ev]):.3f} | "
                  f"{m('false_af_min_per_hour'):.2f} |", flush=True)


if __name__ == "__main__":
    main()
