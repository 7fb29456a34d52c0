"""Deployment table for zoo models: weights, code, RAM, MACs and latency of each deployed form.

For every model: `tinyrhythm export MODEL --format c` into a temporary folder (float ONNX,
int8 ONNX with 7-bit weights, generated C), then one Markdown row from its report.
Latencies are per window on one core: ONNX Runtime at batch 1, the C build at -O2 over the
check windows in one process.

    TINYRHYTHM_DATA=../shared/data python benchmarks/deployment_report.py cnn1 cnn3 cnn3-kd
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tinyrhythm.export.run import export


def main(names: list[str]) -> None:
    print("| model | int8 weight bytes (ONNX) | C flash x86-64 -Os | C flash Cortex-M4 -Os | C arena (RAM) | MACs/window "
          "| float ONNX ms | int8 ONNX ms | C -O2 ms | C/int8 ONNX | C = ONNX int8 (class, max step diff) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            r = export(name, "c", Path(tmp) / "out")
        f, q, c = r["forms"]["model.onnx"], r["forms"]["model-int8.onnx"], r["c"]
        cb = c["code_bytes"]
        m4 = cb.get("cortex_m4_gcc_Os", {}).get("flash")
        m4 = f"{m4:,}" if m4 is not None else "n/a (no arm-none-eabi-gcc)"
        lat_f, lat_q, lat_c = f["latency_ms_batch1_1thread"], q["latency_ms_batch1_1thread"], c["latency_ms_per_window_O2"]
        print(f"| {name} | {q['weight_bytes']:,} | {cb['x86_64_gcc_Os']['flash']:,} | {m4} | {c['arena_bytes']:,} "
              f"| {r['macs']:,} | {lat_f:.3f} | {lat_q:.3f} | {lat_c:.3f} | {lat_c / lat_q:.1f}x "
              f"| {c['class_agreement_with_onnx_int8']:.2%}, {c['max_score_diff_steps']:g} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["cnn1", "cnn2", "cnn3", "cnn3-kd", "cnn4", "cnn5"])
