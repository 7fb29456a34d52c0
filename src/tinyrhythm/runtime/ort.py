"""The ONNX form of a model and the ONNX Runtime backend: torch -> ONNX conversion, sessions,
and a runner that behaves like a torch module.

The exporter is torch's dynamo exporter: it constant-folds the fixed 'same' padding into
the Conv nodes and folds each BatchNorm that follows a convolution, which leaves a graph of
Conv/Relu/Add/BatchNormalization/MaxPool/Pad/Gemm nodes that ONNX Runtime quantizes well.
Compression (int8 in ONNX Runtime), export (C lowering) and the one-pass monitor all read
graphs made here.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, TinyRhythmError

INPUT_NAME, OUTPUT_NAME = "ecg", "logits"


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise TinyRhythmError("ONNX support needs the 'onnx' and 'onnxruntime' packages: pip install -e '.[export]'") from None


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, input_length: int) -> Path:
    """Write a float ONNX model with a dynamic batch axis (input 'ecg' [batch, 1, length], output 'logits')."""
    _require_onnx()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.onnx")
    model = model.eval()
    import logging

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    example = (torch.zeros(2, 1, input_length),)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, example, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                 dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
        prog.save(str(tmp))
    os.replace(tmp, path)
    return path


def session(path: str | os.PathLike, threads: int = 1):
    return session_from_bytes(str(path), path, threads)


def session_from_bytes(model: bytes | str, path: str | os.PathLike, threads: int = 1):
    """An ONNX Runtime session on one thread by default; `path` names the model in errors."""
    _require_onnx()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise DataError(path, f"not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None


class OrtModule(torch.nn.Module):
    """An ONNX Runtime session behind the torch module interface (logits out), so that the
    evaluation and prediction code runs float, fp16 and int8 ONNX models unchanged."""

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        super().__init__()
        self.path = Path(path)
        try:
            # Kept: the one-pass monitor cuts its trunk and head out of these same bytes.
            self.model_bytes = self.path.read_bytes()
        except OSError as exc:
            raise DataError(path, f"cannot read ONNX model ({exc.strerror})") from None
        self.sess = session_from_bytes(self.model_bytes, path, threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})[0]
        return torch.from_numpy(np.asarray(out, np.float32))


def weight_bytes(path: str | os.PathLike) -> dict:
    """Bytes of the constants (initializers) of an ONNX model: all of them, and by type."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    by_type: dict[str, int] = {}
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        key = str(arr.dtype)
        by_type[key] = by_type.get(key, 0) + arr.nbytes
    return {"total": sum(by_type.values()), "by_dtype": by_type}


def latency_ms(path: str | os.PathLike, input_length: int, repeats: int = 300) -> float:
    """Median milliseconds per window at batch 1 on one thread (a device classifies one window at a time)."""
    sess = session(path, threads=1)
    x = np.random.default_rng(0).normal(0, 0.3, (1, 1, input_length)).astype(np.float32)
    for _ in range(20):
        sess.run(None, {INPUT_NAME: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {INPUT_NAME: x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def conditioning_prefix(model) -> dict | None:
    """The model's float input conditioning (models.cnn.InputConditioning), if it has one:
    the nodes from the input to the first quantized tensor, checked to be exactly
    AveragePool -> Sub -> Abs -> ReduceMean -> Clip/Max -> Div, with their parameters."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    inp = g.input[0].name
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"}
    # The float nodes reachable from the input without passing a QuantizeLinear.
    fixed = set(inits) | set(consts)
    reach, chain, names = {inp}, [], set()
    grew = True
    while grew:
        grew = False
        for n in g.node:
            if n.name in names or n.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant"):
                continue
            ins = [i for i in n.input if i]
            if any(i in reach for i in ins) and all(i in reach or i in fixed for i in ins):
                chain.append(n)
                names.add(n.name)
                reach.update(n.output)
                grew = True
    if not chain:
        return None
    ops = [n.op_type for n in chain]
    stages = ops.count("AveragePool")
    expected = ["AveragePool", "Sub"] * stages + ["Abs", "ReduceMean", ops[-2] if len(ops) > 1 else "", "Div"]
    if stages not in (1, 2) or ops != expected or ops[-2] not in ("Clip", "Max"):
        raise TinyRhythmError(f"unsupported input conditioning {ops} (expected 1 or 2 x (AveragePool, Sub), then "
                              "Abs, ReduceMean, Clip, Div)")
    kernels = set()
    for pool in (n for n in chain if n.op_type == "AveragePool"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pool.attribute}
        kernel = int(attrs["kernel_shape"][0])
        if (attrs.get("count_include_pad", 0) or list(attrs.get("strides", [1])) != [1]
                or list(attrs.get("pads", [])) != [kernel // 2] * 2):
            raise TinyRhythmError("input conditioning: the moving average must be centred, stride 1, without padded zeros")
        kernels.add(kernel)
    if len(kernels) != 1:
        raise TinyRhythmError(f"input conditioning: moving averages of different lengths {sorted(kernels)}")
    floor_name = chain[-2].input[1]
    floor = inits.get(floor_name, consts.get(floor_name))
    if floor is None:
        raise TinyRhythmError("input conditioning: the scale floor is not a constant")
    return {"nodes": names, "output": chain[-1].output[0], "kernel": kernels.pop(), "stages": stages,
            "floor": float(np.asarray(floor).reshape(-1)[0])}
