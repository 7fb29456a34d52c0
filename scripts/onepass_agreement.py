"""How closely the one-pass monitor engine follows the window-by-window engine on real recordings.

For every shared MITDB record and every Icentia11k segment (patients 0 and 1001), `monitor`
runs twice with the same model, once per engine, and this prints: the share of raw window
decisions (argmax before smoothing) and of final, smoothed labels that agree, the AF-burden
difference, and, where the record has reference rhythm annotations, each engine's
duration-weighted AF F1 against them (the question being whether the approximation costs
accuracy, not which engine is right).

    python scripts/onepass_agreement.py [--model rhythm-cnn3-int8] [--limit N]
    python scripts/onepass_agreement.py --validation --model rhythm-cnn1 ...

--validation instead scores both engines against the reference rhythm of the long records'
validation patients (scripts/cross_dataset.py's long-record figures, split 'val'): the data a
model card's `monitor_engine` is chosen on.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from tinyrhythm.runtime import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
from tinyrhythm.monitor.evaluate import evaluate_episodes, read_reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["rhythm-cnn3-int8", "rhythm-cnn3"])
    ap.add_argument("--data", default=os.environ.get("TINYRHYTHM_DATA", "../shared/data"))
    ap.add_argument("--limit", type=int, default=0, help="first N records of each source (0: all)")
    ap.add_argument("--validation", action="store_true", help="both engines' long-record figures on validation patients")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.validation:
        return validation(args.model)
    root = Path(args.data)
    sources = {"mitdb": sorted((root / "mitdb").glob("*.hea")),
               "icentia11k": sorted((root / "icentia11k" / "wfdb").glob("p*/p*/*.hea"))}
    for name in args.model:
        lm = load_model(name)
        print(f"\nmodel {name}")
        print(f"{'source':<11} {'records':>7} {'hours':>6} {'raw agree':>10} {'label agree':>12} {'min rec':>8} "
              f"{'max |dburden|':>14} {'AF F1 windows':>14} {'AF F1 onepass':>14} {'s windows':>10} {'s onepass':>10}")
        for src, recs in sources.items():
            recs = recs[: args.limit] if args.limit else recs
            raw = lab = n = 0
            worst, dburden, secs = 1.0, 0.0, {"windows": 0.0, "onepass": 0.0}
            tp = {"windows": [0.0, 0.0, 0.0], "onepass": [0.0, 0.0, 0.0]}  # duration-weighted TP, FP, FN seconds
            hours = 0.0
            for rec in recs:
                res = {}
                for engine in ("windows", "onepass"):
                    t = time.perf_counter()
                    res[engine] = monitor(rec, lm, cfg=MonitorConfig(engine=engine, beats=False))
                    secs[engine] += time.perf_counter() - t
                w, o = res["windows"], res["onepass"]
                assert len(w.labels) == len(o.labels)
                raw += int((w.probs.argmax(1) == o.probs.argmax(1)).sum())
                agree = np.mean(np.array(w.labels) == np.array(o.labels))
                lab += agree * len(w.labels)
                n += len(w.labels)
                worst = min(worst, agree)
                dburden = max(dburden, abs(w.summary["af_burden"] - o.summary["af_burden"]))
                hours += w.duration_s / 3600
                try:
                    ref = read_reference(w, "atr")
                except Exception:  # a segment without rhythm annotations: agreement only
                    continue
                for engine, r in res.items():
                    ev = evaluate_episodes(r, ref)
                    t3 = tp[engine]
                    t3[0] += ev["af_tp_s"]
                    t3[1] += ev["af_fp_s"]
                    t3[2] += ev["af_fn_s"]

            def f1(t3):
                return f"{2 * t3[0] / (2 * t3[0] + t3[1] + t3[2]):.3f}" if t3[0] + t3[1] + t3[2] else "-"

            print(f"{src:<11} {len(recs):>7} {hours:>6.1f} {raw / n:>10.4f} {lab / n:>12.4f} {worst:>8.4f} "
                  f"{dburden:>14.4f} {f1(tp['windows']):>14} {f1(tp['onepass']):>14} {secs['windows']:>10.1f} "
                  f"{secs['onepass']:>10.1f}", flush=True)


def validation(names: list[str]) -> None:
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from cross_dataset import long_records

    keys = ("records", "af_f1_per_second", "episode_sensitivity", "episode_ppv", "mean_abs_burden_error",
            "false_af_min_per_hour")
    print(f"{'model':<18} {'engine':<8} {'dataset':<9} " + " ".join(f"{k:>22}" for k in keys))
    for name in names:
        lm = load_model(name)
        for engine in ("windows", "onepass"):
            with tempfile.TemporaryDirectory() as d:
                res = long_records(lm, Path(d), split="val", cfg=MonitorConfig(engine=engine))
            for ds, r in res.items():
                print(f"{name:<18} {engine:<8} {ds:<9} " + " ".join(f"{'' if r[k] is None else r[k]:>22}" for k in keys),
                      flush=True)


if __name__ == "__main__":
    main()
