"""Seconds and peak memory of `monitor` on 1 h, 6 h and 24 h of 250 Hz Icentia11k ECG.

The long recordings are real Icentia11k segments of patient 0 joined end to end and
written as one WFDB record (fmt 16). Each length runs in its own process on one thread,
so the peak RSS printed is that run's alone; `analyse s` times `monitor()` itself
(reading, quality checks, resampling, the model, smoothing, episodes), after the
model is loaded: once for the rhythm alone, once with the Holter summary's R-peak
detection (monitor.beats), side by side.

    python benchmarks/monitor_throughput.py [--model cnn3-kd-int8] [--hours 1 6 24]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
from tinyrhythm.inference import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
def hwm_mb():  # this process's peak RSS (VmHWM; ru_maxrss would count the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
lm = load_model(sys.argv[2])
rss0 = hwm_mb()
t = time.perf_counter()
r = monitor(sys.argv[1], lm, cfg=MonitorConfig(hop_s=float(sys.argv[3]), beats=sys.argv[4] == "1"))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "peak_rss_mb": hwm_mb(),
                  "rss_before_mb": rss0, "windows": len(r.labels), "af_burden": r.summary["af_burden"],
                  "episodes": len(r.episodes), "beats": None if r.beats is None else len(r.beats)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cnn3-kd-int8")
    ap.add_argument("--hours", type=float, nargs="+", default=[1, 6, 24])
    ap.add_argument("--hop", type=float, default=2.048, help="seconds between decisions (monitor --hop)")
    ap.add_argument("--data", default=os.environ.get("TINYRHYTHM_DATA", "../shared/data"))
    args = ap.parse_args()
    from tinyrhythm.datasets.concat import join_records

    segs = sorted((Path(args.data) / "icentia11k" / "wfdb" / "p00" / "p00000").glob("*.hea"))
    print(f"model {args.model}, hop {args.hop:g} s, one thread, records joined from {len(segs)} Icentia11k segments at 250 Hz")
    print(f"{'hours':>6} {'beats':>6} {'analyse s':>10} {'x real time':>12} {'peak RSS MB':>12} {'RSS before MB':>14} "
          f"{'windows':>8} {'R peaks':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for h in args.hours:
            rec = join_records(segs, h * 3600, tmp, f"icentia-{h:g}h")
            for beats in ("0", "1"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(rec), args.model, str(args.hop), beats],
                                     capture_output=True, text=True)
                if out.returncode:
                    sys.exit(out.stderr)
                r = json.loads(out.stdout)
                print(f"{h:>6g} {'yes' if beats == '1' else 'no':>6} {r['seconds']:>10.2f} {h * 3600 / r['seconds']:>12,.0f} "
                      f"{r['peak_rss_mb']:>12.0f} {r['rss_before_mb']:>14.0f} {r['windows']:>8,} {r['beats'] or '':>10}",
                      flush=True)
            for f in Path(tmp).iterdir():
                f.unlink()


if __name__ == "__main__":
    main()
