"""The README's compression table from a finished study (runs/study/results.csv):
`tinyrhythm runs table STUDY`, here with optional re-timing.

    python scripts/compression_table.py [STUDY_DIR] [--latency]

With --latency every cell's model is timed again here, one after another on one thread at
batch 1 (float and pruned models in PyTorch, ONNX models in ONNX Runtime, fbgemm models in
PyTorch int8), so all latencies in the table come from one quiet pass, not from the study's
runs, which shared the machine with training jobs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tinyrhythm.evaluate.tables import compression_table


def latency(cell: Path, name_or_model: str) -> float:
    import torch

    from tinyrhythm.compress.quantize import torch_latency_ms
    from tinyrhythm.runtime import load_model
    from tinyrhythm.runtime.ort import OrtModule, latency_ms

    torch.set_num_threads(1)
    lm = load_model(cell if (cell / "config.json").is_file() else name_or_model)
    if isinstance(lm.model, OrtModule):
        return latency_ms(lm.model.path, lm.input_length)
    return torch_latency_ms(lm.model, lm.input_length)


def main(argv: list[str]) -> None:
    study = Path(argv[0]) if argv and not argv[0].startswith("--") else Path("runs/study")
    print(compression_table(study, latency if "--latency" in argv else None))


if __name__ == "__main__":
    main(sys.argv[1:])
