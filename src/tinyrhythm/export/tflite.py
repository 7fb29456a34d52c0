"""TFLite full-integer int8 export through litert-torch, run with ai-edge-litert's interpreter.

PyTorch 2 export quantization (PT2E) with litert-torch's quantizer: int8 per-channel
symmetric weights, int8 activations calibrated on class-balanced training windows, int8
input and output tensors, so the file runs on TFLite Micro as it is. The tools live in
the optional extra `pip install -e '.[tflite]'` (they bring JAX, not TensorFlow).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import TinyRhythmError
from ..runtime.tflite import TfliteModule, int8_scores, interpreter, weight_bytes  # noqa: F401


def _require():
    try:
        import ai_edge_litert  # noqa: F401
        import litert_torch  # noqa: F401
    except ImportError:
        raise TinyRhythmError("TFLite export needs litert-torch and ai-edge-litert: pip install -e '.[tflite]'") from None


def bn_as_conv(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with every BatchNorm1d as the equal depthwise 1x1 convolution.

    The family's blocks are pre-activation (BN -> ReLU -> conv): most BatchNorms follow an
    add, not a convolution, so nothing folds them, and PT2E leaves a lone BatchNorm in
    float between DEQUANTIZE/QUANTIZE ops. As a convolution it is quantized like the rest."""
    import copy

    m = copy.deepcopy(model).eval()
    for mod in list(m.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, torch.nn.BatchNorm1d):
                scale = child.weight.detach() / torch.sqrt(child.running_var + child.eps)
                conv = torch.nn.Conv1d(child.num_features, child.num_features, 1, groups=child.num_features)
                conv.weight.data = scale.reshape(-1, 1, 1).clone()
                conv.bias.data = (child.bias.detach() - child.running_mean * scale).clone()
                setattr(mod, name, conv)
    return m


def export_tflite(model: torch.nn.Module, path: str | os.PathLike, calib: np.ndarray, per_channel: bool = True) -> Path:
    """Write a full-integer int8 .tflite of `model` (input [1, 1, length] int8, output [1, classes] int8)."""
    _require()
    path = Path(path)
    example = (torch.from_numpy(np.ascontiguousarray(calib[:1], np.float32)),)
    quiet = contextlib.ExitStack()
    quiet.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    for name in ("absl", "torch.utils._pytree", "torchao"):  # import-time notices about optional GPU kernels
        logging.getLogger(name).setLevel(logging.ERROR)
    with quiet, torch.no_grad():
        import litert_torch
        from litert_torch.quantize import pt2e_quantizer
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e import quantize_pt2e

        m = torch.export.export(bn_as_conv(model), example).module()
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel))
        m = quantize_pt2e.prepare_pt2e(m, quantizer)
        for i in range(len(calib)):  # the exported graph has batch 1, as a device runs it
            m(torch.from_numpy(np.ascontiguousarray(calib[i:i + 1], np.float32)))
        m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
        edge = litert_torch.convert(m, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
        tmp = path.with_name(path.name + ".tmp")
        edge.export(str(tmp))
    os.replace(tmp, path)
    return path


def latency_ms(path: str | os.PathLike, input_length: int, repeats: int = 300) -> float:
    """Median milliseconds per window, batch 1, one thread (XNNPACK delegate, as the interpreter defaults)."""
    mod = TfliteModule(path)
    x = mod.quantize_input(np.random.default_rng(0).normal(0, 0.3, (1, 1, input_length)).astype(np.float32))
    for _ in range(20):
        mod.it.set_tensor(mod.inp["index"], x)
        mod.it.invoke()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mod.it.set_tensor(mod.inp["index"], x)
        mod.it.invoke()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def op_types(mod: TfliteModule) -> dict[str, int]:
    """Operator counts keyed 'OP:dtype' by the dtype of each op's first input: which ops run in int8."""
    dtypes = {t["index"]: t["dtype"].__name__ for t in mod.it.get_tensor_details()}
    counts: dict[str, int] = {}
    for op in mod.it._get_ops_details():
        first = next((i for i in op["inputs"] if i >= 0), None)
        key = f"{op['op_name']}:{dtypes.get(first, '?')}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def tflm_check(path: str | os.PathLike, xq: np.ndarray, reference: np.ndarray) -> dict | None:
    """Run the int8 windows `xq` [n, 1, length] through the TFLite Micro Python interpreter (the
    microcontroller kernels) and compare its int8 scores with `reference`; None where
    the `tflite-micro` package is not installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    it = runtime.Interpreter.from_file(str(path))
    out = []
    for i in range(len(xq)):
        it.set_input(xq[i:i + 1], 0)
        it.invoke()
        out.append(it.get_output(0).copy())
    out = np.concatenate(out).astype(np.int32)
    ref = reference.astype(np.int32)
    return {"windows": int(len(xq)), "class_agreement": round(float((out.argmax(1) == ref.argmax(1)).mean()), 4),
            "max_score_diff_steps": int(np.abs(out - ref).max())}
