"""Latency per window of the compressed forms of one model, one thread, the same machine.

Batch 1 (a wearable classifies one window at a time) and batch 256 (offline analysis), median
of repeated runs, for: float PyTorch, float ONNX Runtime, fp16 ONNX, int8 ONNX (QDQ and
QOperator), int8 PyTorch (fbgemm). Ratios are against float ONNX Runtime at the same batch.

    python benchmarks/compressed_latency.py [--study runs/study] [--model cnn3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tinyrhythm.runtime.ort import OrtModule, export_onnx
from tinyrhythm.runtime import load_model


def median_ms(fn, x, repeats: int) -> float:
    with torch.no_grad():
        for _ in range(10):
            fn(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="runs/study")
    ap.add_argument("--model", default="cnn3")
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    study = Path(args.study)
    parent = load_model(args.model)
    float_onnx = study / f"_{args.model}-float.onnx"
    export_onnx(parent.model, float_onnx, parent.input_length)
    forms = {"float32 PyTorch": parent.model, "float32 ONNX Runtime": OrtModule(float_onnx)}
    for label, cell in (("fp16 ONNX Runtime", f"{args.model}-fp16"), ("int8 ONNX Runtime QDQ", f"{args.model}-ptq-pc-percentile"),
                        ("int8 ONNX Runtime QOperator", f"{args.model}-ptq-qoperator"), ("int8 PyTorch fbgemm", f"{args.model}-fbgemm")):
        if (study / cell / "metrics.json").is_file():
            forms[label] = load_model(study / cell).model
    rng = np.random.default_rng(0)
    print(f"{args.model}: ms per window, 1 thread, median of {args.repeats}")
    for batch in (1, 256):
        x = torch.from_numpy(rng.normal(0, 0.3, (batch, 1, parent.input_length)).astype(np.float32))
        reps = args.repeats if batch == 1 else max(10, args.repeats // 20)
        ms = {label: median_ms(model, x, reps) / batch for label, model in forms.items()}
        ref = ms["float32 ONNX Runtime"]
        for label, v in ms.items():
            print(f"  batch {batch:>3}  {label:<30} {v:8.4f} ms  {v / ref:5.2f}x")
    float_onnx.unlink()


if __name__ == "__main__":
    main()
