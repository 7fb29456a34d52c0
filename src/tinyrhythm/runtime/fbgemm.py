"""The PyTorch int8 backend (FX graph mode on the `fbgemm` engine): preparing a float model
for int8, converting it, and its weight bytes.

`fbgemm`, not `x86`/`onednn`: the latter engine of torch 2.13 gives wrong Conv1d results for
some shapes here.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import torch

from ..errors import TinyRhythmError
from ..models.cnn import SameConv1d

ENGINE = "fbgemm"


def _qconfig_mapping(qat: bool):
    """8-bit activations with 7-bit weights (per channel, symmetric).

    fbgemm's u8 x s8 kernels on x86 CPUs without VNNI add pairs of products in int16; with
    8-bit weights and activations those sums saturate (measured on CNN3, 2,048 validation
    windows: SQNR 0.6 dB, 75 % argmax agreement). fbgemm's default keeps 8-bit weights and
    gives up a bit of activation range instead (10.6 dB, 89 %); 7-bit weights cannot
    saturate and lose less (20.2 dB, 96 %). The int8-vs-float test guards this choice."""
    from torch.ao.quantization import (FakeQuantize, FusedMovingAvgObsFakeQuantize, HistogramObserver,
                                       MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                                       PerChannelMinMaxObserver, QConfig, QConfigMapping)

    w7 = dict(dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-64, quant_max=63)
    if qat:
        act = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                     reduce_range=False)
        wt = FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, ch_axis=0, **w7)
        return QConfigMapping().set_global(QConfig(activation=act, weight=wt))
    act = HistogramObserver.with_args(reduce_range=False)
    return QConfigMapping().set_global(QConfig(activation=act, weight=PerChannelMinMaxObserver.with_args(**w7)))


def fx_friendly(model: torch.nn.Module) -> torch.nn.Module:
    """A copy in which every 'same'-padded convolution is ConstantPad1d + plain nn.Conv1d.

    FX traces through custom subclasses, so a SameConv1d would be quantized as a functional
    conv1d: no Conv+BN+ReLU fusion, float BatchNorm between int8 layers. Plain leaf modules
    get the fused int8 kernels."""
    m = copy.deepcopy(model)
    for name, mod in list(m.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, SameConv1d):
                if child.fixed_pad is None:
                    raise TinyRhythmError("int8 in PyTorch needs a fixed input length (flatten head)")
                conv = torch.nn.Conv1d(child.in_channels, child.out_channels, child.kernel_size[0],
                                       stride=child.stride[0])
                conv.load_state_dict(child.state_dict())
                setattr(mod, child_name, torch.nn.Sequential(torch.nn.ConstantPad1d(child.fixed_pad, 0.0), conv))
    return m


def prepare_torch(model: torch.nn.Module, input_length: int, qat: bool) -> torch.nn.Module:
    from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx

    torch.backends.quantized.engine = ENGINE
    example = (torch.zeros(2, 1, input_length),)
    m = fx_friendly(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if qat:
            prepared = prepare_qat_fx(m.train(), _qconfig_mapping(True), example)
        else:
            prepared = prepare_fx(m.eval(), _qconfig_mapping(False), example)
    prepared.config = model.config  # the training loop and the metrics read it
    return prepared


def convert_torch(prepared: torch.nn.Module) -> torch.nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx

    torch.backends.quantized.engine = ENGINE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(copy.deepcopy(prepared).eval())


def torch_int8_bytes(qmodel: torch.nn.Module) -> int:
    """int8 weights (1 byte each) + int32 biases (4) + float scales (4) of a converted model."""
    total = 0
    for m in qmodel.modules():
        if hasattr(m, "_weight_bias"):
            w, b = m._weight_bias()
            per_channel = w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            total += w.numel() + (4 * b.numel() if b is not None else 0)
            total += 4 * (w.q_per_channel_scales().numel() if per_channel else 1)
    return total


def torch_latency_ms(model: torch.nn.Module, input_length: int, repeats: int = 200) -> float:
    """Median milliseconds for one window (batch 1) of a PyTorch module, float or int8, on the
    current thread setting (the int8 kernels need their engine set)."""
    torch.backends.quantized.engine = ENGINE
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.3, (1, 1, input_length)).astype(np.float32))
    times = []
    with torch.no_grad():
        for i in range(repeats + 20):
            t0 = time.perf_counter()
            model(x)
            if i >= 20:
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)
