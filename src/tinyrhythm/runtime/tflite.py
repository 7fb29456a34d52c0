"""The TFLite backend: LiteRT's interpreter behind the torch module interface.

Running a .tflite needs only `ai-edge-litert` (the optional extra `pip install -e '.[tflite]'`);
converting a model to TFLite (export.tflite) needs litert-torch as well.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, TinyRhythmError


def _require_litert():
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        raise TinyRhythmError("running a TFLite model needs ai-edge-litert: pip install -e '.[tflite]'") from None


def interpreter(path: str | os.PathLike, threads: int = 1, reference_kernels: bool = False):
    """LiteRT's interpreter: optimized kernels with the XNNPACK delegate (the default), or its
    reference kernels, which TFLite Micro's match bit for bit (tested)."""
    _require_litert()
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        extra = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference_kernels else {}
        it = Interpreter(model_path=str(path), num_threads=threads, **extra)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise DataError(path, f"not a loadable TFLite model ({str(exc).splitlines()[0][:200]})") from None
    return it


class TfliteModule(torch.nn.Module):
    """A TFLite int8 model behind the torch module interface: float windows in, float logits out
    (quantized with the model's own input scale, dequantized with its output scale)."""

    def __init__(self, path: str | os.PathLike, threads: int = 1, reference_kernels: bool = False):
        super().__init__()
        self.path = Path(path)
        self.it = interpreter(path, threads, reference_kernels)
        self.inp, self.out = self.it.get_input_details()[0], self.it.get_output_details()[0]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        scale, zp = self.inp["quantization"]
        if self.inp["dtype"] != np.int8:
            return x.astype(self.inp["dtype"])
        return np.clip(np.rint(x / scale) + zp, -128, 127).astype(np.int8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.detach().cpu().numpy().astype(np.float32)
        y = int8_scores(self, np.stack([self.quantize_input(w[None])[0] for w in xs]))
        if self.out["dtype"] != np.int8:
            return torch.from_numpy(y.astype(np.float32))
        scale, zp = self.out["quantization"]
        return torch.from_numpy((y.astype(np.float32) - zp) * scale)


def int8_scores(mod: TfliteModule, xq: np.ndarray) -> np.ndarray:
    out = []
    for w in xq:
        mod.it.set_tensor(mod.inp["index"], w[None])
        mod.it.invoke()
        out.append(mod.it.get_tensor(mod.out["index"]).copy())
    return np.concatenate(out)


def weight_bytes(path: str | os.PathLike) -> int:
    """Bytes of the constant tensors (weights, biases, shape constants) in the flatbuffer;
    the rest of the file is graph structure, quantization parameters and signatures."""
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(buf, 0)
    total = 0
    for s in range(model.SubgraphsLength()):
        g = model.Subgraphs(s)
        for i in range(g.TensorsLength()):
            total += model.Buffers(g.Tensors(i).Buffer()).DataLength()
    return total
