"""Seconds, peak memory and MAC rate of `monitor` on 1 h, 6 h and 24 h of 250 Hz Icentia11k
ECG, both engines side by side, against the core's own GEMM rate; then many recordings at once.

The long recordings are real Icentia11k segments of patient 0 joined end to end and
written as one WFDB record (fmt 16). Each run is its own process on one thread, so the peak
RSS printed is that run's alone; `analyse s` times `monitor()` itself (reading, quality
checks, resampling, the model, smoothing, episodes) after the model is loaded, for the
window-by-window engine and the one-pass engine, with and without the Holter summary's
R-peak detection.

The physical limit: the same run measures this core's float32 multiply-accumulate rate on
a 512 x 512 GEMM (PyTorch, one thread), and prints the MACs each engine asks of the model
per second of analysis as a share of it (the network's MACs; the phase-folded int8 trunk
executes more, its zeros included, printed beside).

Many recordings: `tinyrhythm monitor FOLDER --jobs N --out DIR` over the shared Icentia11k
segments (both patients), whole CLI wall time, in recording-hours per minute.

    python benchmarks/monitor_throughput.py [--model rhythm-cnn3-int8] [--hours 1 6 24]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from tinyrhythm.runtime import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
def hwm_mb():  # this process's peak RSS (VmHWM; ru_maxrss would count the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
lm = load_model(sys.argv[2])
rss0 = hwm_mb()
t = time.perf_counter()
r = monitor(sys.argv[1], lm, cfg=MonitorConfig(hop_s=float(sys.argv[3]), beats=sys.argv[4] == "1", engine=sys.argv[5]))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mb": hwm_mb(), "rss_before_mb": rss0, "windows": len(r.labels),
                  "model_samples": int(round(r.duration_s * lm.fs)), "af_burden": r.summary["af_burden"],
                  "episodes": len(r.episodes), "beats": None if r.beats is None else len(r.beats)}))
"""

GEMM = r"""
import json, time, torch
torch.set_num_threads(1)
a, b = torch.randn(512, 512), torch.randn(512, 512)
for _ in range(5):
    a @ b
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    for _ in range(20):
        a @ b
    best = min(best, (time.perf_counter() - t) / 20)
print(json.dumps({"gmac_s": 512 ** 3 / best / 1e9}))
"""

MACS = r"""
import json, sys
import numpy as np
from tinyrhythm.runtime import load_model
from tinyrhythm.onepass import OnePassClassifier
lm = load_model(sys.argv[1])
op = OnePassClassifier(lm, int(sys.argv[2]))
feats = op.b.trunk(np.zeros(lm.input_length, np.float32))
head = int(feats.shape[0] * op.b.columns * len(lm.classes))
print(json.dumps({"macs": int(lm.card.macs), "head": head, "length": lm.input_length,
                  "fold": op.b.fold, "folded": op.b.folded_macs_per_sample}))
"""


def child(code: str, *args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="rhythm-cnn3-int8")
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 6, 24])
    ap.add_argument("--hop", type=float, default=2.048, help="seconds between decisions (monitor --hop)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values of the many-recordings run")
    ap.add_argument("--data", default=os.environ.get("TINYRHYTHM_DATA", "../shared/data"))
    args = ap.parse_args()
    from tinyrhythm.datasets.concat import join_records

    gemm = child(GEMM)["gmac_s"]
    segs = sorted((Path(args.data) / "icentia11k" / "wfdb" / "p00" / "p00000").glob("*.hea"))
    print(f"model {args.model}, hop {args.hop:g} s, one thread, records joined from {len(segs)} Icentia11k segments at 250 Hz")
    print(f"this core's float32 GEMM (512^3, PyTorch, one thread): {gemm:.1f} GMAC/s")
    print(f"{'hours':>6} {'engine':>8} {'beats':>6} {'analyse s':>10} {'x real time':>12} {'model GMAC':>11} "
          f"{'GMAC/s':>7} {'of GEMM':>8} {'peak RSS MB':>12} {'windows':>8} {'AF burden':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for h in args.hours:
            rec = join_records(segs, h * 3600, tmp, f"icentia-{h:g}h")
            times = {}
            for engine in ("windows", "onepass"):
                for beats in ("0", "1"):
                    r = child(CHILD, rec, args.model, args.hop, beats, engine)
                    if engine == "windows" and beats == "0":
                        m = child(MACS, args.model, int(round(args.hop * 62.5)))
                    trunk = (m["macs"] - m["head"]) / m["length"]  # MACs per input sample of the convolutional trunk
                    macs = (r["windows"] * m["macs"] if engine == "windows"
                            else r["model_samples"] * trunk + r["windows"] * m["head"])
                    times[engine, beats] = r["seconds"]
                    print(f"{h:>6g} {engine:>8} {'yes' if beats == '1' else 'no':>6} {r['seconds']:>10.2f} "
                          f"{h * 3600 / r['seconds']:>12,.0f} {macs / 1e9:>11.2f} {macs / 1e9 / r['seconds']:>7.2f} "
                          f"{macs / 1e9 / r['seconds'] / gemm:>8.1%} {r['peak_rss_mb']:>12.0f} {r['windows']:>8,} "
                          f"{r['af_burden']:>10.4f}", flush=True)
            print(f"{'':>6} one-pass speed-up: {times['windows', '0'] / times['onepass', '0']:.2f}x without beats, "
                  f"{times['windows', '1'] / times['onepass', '1']:.2f}x with", flush=True)
            if m.get("folded"):  # the folded trunk also multiplies the zeros folding puts in its kernels
                print(f"{'':>6} one-pass trunk phase-folded by {m['fold']}: {m['folded']:,.0f} MACs executed per sample "
                      f"for {trunk:,.0f} of the network's ({m['folded'] / trunk:.2f}x)", flush=True)
            for f in Path(tmp).iterdir():
                f.unlink()

        recs = sorted((Path(args.data) / "icentia11k" / "wfdb").glob("p*/p*/*.hea"))
        folder = Path(tmp) / "many"
        folder.mkdir()
        for p in recs:  # one folder of records, as a study hands them over (links, no copies)
            for f in p.parent.glob(p.stem + ".*"):
                os.symlink(f.resolve(), folder / f.name)
        print(f"\nmany recordings: {len(recs)} Icentia11k segments in one folder, `tinyrhythm monitor FOLDER --jobs N --out DIR`")
        print(f"{'jobs':>5} {'wall s':>8} {'recording h':>12} {'rec h / min':>12}")
        for jobs in args.jobs:
            out = Path(tmp) / f"out-{jobs}"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "tinyrhythm.cli", "monitor", str(folder), "--model", args.model,
                                   "--jobs", str(jobs), "--out", str(out)], capture_output=True, text=True)
            dt = time.perf_counter() - t
            if proc.returncode:
                sys.exit(proc.stderr)
            rows = [json.loads(line) for line in (out / "summary.jsonl").read_text().splitlines()]
            hours = sum(r["duration_s"] for r in rows) / 3600
            print(f"{jobs:>5} {dt:>8.1f} {hours:>12.1f} {hours / dt * 60:>12.1f}", flush=True)
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
