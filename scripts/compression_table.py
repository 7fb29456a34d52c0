"""The README's compression table from a finished study (runs/study/results.csv).

    python scripts/compression_table.py [STUDY_DIR] [--latency]

With --latency every cell's model is timed again here, one after another on one thread at
batch 1 (float and pruned models in PyTorch, ONNX models in ONNX Runtime, fbgemm models in
PyTorch int8), so all latencies in the table come from one quiet pass, not from the study's
runs, which shared the machine with training jobs.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def latency(cell: Path, name_or_model: str) -> float:
    import torch

    from tinyrhythm.compress.quantize import torch_latency_ms
    from tinyrhythm.export.onnx import OrtModule, latency_ms
    from tinyrhythm.inference import load_model

    torch.set_num_threads(1)
    lm = load_model(cell if (cell / "config.json").is_file() else name_or_model)
    if isinstance(lm.model, OrtModule):
        return latency_ms(lm.model.path, lm.input_length)
    return torch_latency_ms(lm.model, lm.input_length)


def fmt(v: str, kind: str = "") -> str:
    if v in ("", None):
        return ""
    x = float(v)
    if kind == "int":
        return f"{int(x):,}"
    if kind == "delta":
        return f"{x:+.3f}"
    return f"{x:.3f}" if kind != "ratio" else f"{x:.1f}x"


def main(argv: list[str]) -> None:
    study = Path(argv[0]) if argv and not argv[0].startswith("--") else Path("runs/study")
    timed = "--latency" in argv
    rows = list(csv.DictReader(open(study / "results.csv")))
    print("| cell | kind | method | nonzero params | bytes | vs float32 CNN5 | MACs | ms/window | val macro F1 "
          "| test macro F1 | test CinC | test AF F1 | CinC vs parent | SQNR dB | argmax agreement |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = f"{latency(study / r['name'], r['parent']):.3f}" if timed else fmt(r["latency_ms"])
        agree = f"{float(r['argmax_agreement']):.1%}" if r["argmax_agreement"] else ""
        print(f"| {r['name']} | {r['kind']} | {r['method']} | {fmt(r['nonzero_params'], 'int')} | {fmt(r['bytes'], 'int')} "
              f"| {fmt(r['ratio_vs_cnn5_fp32'], 'ratio')} | {fmt(r['macs'], 'int')} | {ms} | {fmt(r['val_macro_f1'])} "
              f"| {fmt(r['test_macro_f1'])} | {fmt(r['test_cinc'])} | {fmt(r['test_af_f1'])} "
              f"| {fmt(r['delta_cinc_vs_parent'], 'delta')} | {r['sqnr_db']} | {agree} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
