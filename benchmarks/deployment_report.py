"""Deployment tables for zoo models: weights, code, RAM, MACs and latency of each deployed form,
and the Cortex-M4 build measured on its own instruction set.

For every model: `tinyrhythm export MODEL --format c` into a temporary folder (float ONNX,
int8 ONNX with 7-bit weights, generated C), then one Markdown row from its report.
Latencies are per window on one core: ONNX Runtime at batch 1, the C build at -O2 over the
check windows in one process. The second table is the -Os Cortex-M4 build (flash, RAM with
the stream's state and the deepest stack, instructions per window, per MAC and per hop of
both streams, counted in the unicorn emulator), beside a wearable toolkit's published
figures for its rhythm model on an Apollo4 Cortex-M4F (TensorFlow Lite Micro).

    TINYRHYTHM_DATA=../shared/data python benchmarks/deployment_report.py cnn1 cnn3 cnn3-kd
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tinyrhythm.export.run import export


def main(names: list[str]) -> None:
    m4_rows = []
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
        m4_rows.append(m4_row(name, r))
    print("\n| model | Cortex-M4 flash -Os | RAM (statics + stream + stack) | MACs/window | instructions/window "
          "| instructions/MAC | instructions/hop, window stream | instructions/hop, one-pass | ms/window at 64 / 190 MHz "
          "| C on Cortex-M4 = x86 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in m4_rows:
        print(row)
    # Published figures, not measured here: the toolkit's rhythm model through TFLite Micro.
    print("| wearable toolkit rhythm model (Apollo4, TFLM; published) | 270 KB | 54 KB | ~1.05 M | ~8 M cycles "
          "| ~7.6 cycles | | | 42 ms at ~190 MHz | |")


def m4_row(name: str, r: dict) -> str:
    c = r["c"]
    m4, e = c["code_bytes"].get("cortex_m4_gcc_Os"), c.get("cortex_m4_emulated", {})
    if not m4 or "unavailable" in e:
        return f"| {name} | n/a ({e.get('unavailable', 'no arm-none-eabi-gcc')}) |||||||||"
    return (f"| {name} | {m4['flash']:,} | {m4['ram_stream_total']:,} | {r['macs']:,} | {e['instructions_per_window']:,} "
            f"| {e['instructions_per_mac']:.2f} | {e['instructions_per_hop_window_stream']:,} "
            f"| {e.get('instructions_per_hop_onepass') or 0:,} | {e['ms_per_window_64MHz']:.0f} / {e['ms_per_window_190MHz']:.0f} "
            f"| {'yes' if e['scores_equal_x86'] and e.get('onepass_scores_equal_x86', True) else 'NO'} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["cnn1", "cnn2", "cnn3", "cnn3-kd", "cnn4", "cnn5", "cnn3-int8", "cnn3-kd-int8", "rhythm-cnn3-int8"])
