"""The study's compact residual 1-D CNN family (see shared/spec/cnn-family.md).

A pre-activation residual network in the style of Hannun et al. 2019: a stem, a first
block with an identity shortcut, B residual blocks whose filters double every s_j
blocks (with stride 2 where they do) and a flatten + linear head. Every convolution
uses kernel 16 with Keras-style 'same' padding, which PyTorch's `padding='same'` does
not offer for stride 2, so padding is explicit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

KERNEL = 16


@dataclass(frozen=True)
class CNNConfig:
    blocks: int
    initial_filters: int
    s_j: int
    num_classes: int = 3
    input_length: int = 513
    kernel_size: int = KERNEL
    dropout: float = 0.2
    # "flatten" (the study's head: its size grows with the input) or "gap" (global
    # average pooling: a few dozen head weights, any input length, e.g. whole records).
    head: str = "flatten"
    # Inner width of the first block and of each residual block (None: the full width);
    # set by structured pruning, which removes inner channels for real.
    mid_channels: tuple[int, ...] | None = None
    # Input conditioning inside the network, so that every exported form carries it:
    # "none" (the study: raw mV in) or "window" (InputConditioning below).
    conditioning: str = "none"
    cond_kernel: int = 25  # moving-average length of the high-pass (samples at the model's rate; 0.4 s at 62.5 Hz)
    cond_floor_mv: float = 0.005  # scale floor: a flat or near-flat window is not amplified into noise
    cond_stages: int = 2  # high-pass stages (x - MA(x), applied this many times)

    def filters(self, j: int) -> int:
        return self.initial_filters * 2 ** (j // self.s_j)

    def stride(self, j: int) -> int:
        return 2 if j > 0 and j % self.s_j == 0 else 1

    def to_dict(self) -> dict:
        return asdict(self)


def same_pad(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras 'same': output ceil(length/stride); the odd extra sample goes on the right."""
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


class SameConv1d(nn.Conv1d):
    """Conv1d with Keras 'same' padding. With `input_length` the padding is fixed at build
    time, which keeps the graph free of shape arithmetic for FX quantization and ONNX."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, input_length: int | None = None):
        super().__init__(cin, cout, kernel, stride=stride, bias=True)
        self.fixed_pad = same_pad(input_length, kernel, stride) if input_length else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.fixed_pad if self.fixed_pad is not None else same_pad(x.shape[-1], self.kernel_size[0], self.stride[0])
        return super().forward(F.pad(x, pad))


class InputConditioning(nn.Module):
    """Recorder-independent input: y = x - moving_average(x), `stages` times over, then
    y / max(mean|y|, floor).

    Subtracting a centred moving average removes any DC offset; two such stages (a
    second-order high-pass, 0.4 s averages at 62.5 Hz) leave under 0.5 % of baseline wander
    at 0.5 Hz where one stage leaves 6.5 %, and pass the QRS and the f-waves. Dividing by
    the window's mean absolute value makes the output the same for any gain. The floor
    keeps a flat line flat and tiny noise tiny instead of blowing them up to ECG size.
    Float ops only (AveragePool, Sub, Abs, ReduceMean, Max, Div): ONNX int8 keeps them in
    float in front of the first QuantizeLinear, and the generated C does them in `tr_quantize`.
    """

    def __init__(self, kernel: int, floor_mv: float, stages: int = 2):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"conditioning kernel must be odd and positive, got {kernel}")
        if stages not in (1, 2):
            raise ValueError(f"conditioning stages must be 1 or 2, got {stages}")
        self.kernel, self.floor, self.stages = kernel, float(floor_mv), stages
        self.pool = nn.AvgPool1d(kernel, stride=1, padding=kernel // 2, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.stages):
            x = x - self.pool(x)
        scale = torch.clamp(x.abs().mean(dim=-1, keepdim=True), min=self.floor)
        return x / scale


class ResidualBlock(nn.Module):
    """BN -> ReLU -> conv(stride) -> BN -> ReLU -> dropout -> conv, plus a max-pooled,
    channel-zero-padded shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, kernel: int, dropout: float, mid: int | None = None,
                 length: int | None = None):
        super().__init__()
        mid = cout if mid is None else mid  # structured pruning narrows only the inner channels
        out_length = math.ceil(length / stride) if length else None
        self.bn1 = nn.BatchNorm1d(cin)
        self.conv1 = SameConv1d(cin, mid, kernel, stride, length)
        self.bn2 = nn.BatchNorm1d(mid)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = SameConv1d(mid, cout, kernel, 1, out_length)
        self.stride, self.extra_channels = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.stride > 1:
            shortcut = F.max_pool1d(shortcut, self.stride, self.stride, ceil_mode=True)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, self.extra_channels))
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(self.dropout(F.relu(self.bn2(y))))
        return y + shortcut


class TinyRhythmCNN(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.config = cfg
        f0, k = cfg.initial_filters, cfg.kernel_size
        mids = cfg.mid_channels or (f0, *(cfg.filters(j) for j in range(cfg.blocks)))
        if len(mids) != cfg.blocks + 1:
            raise ValueError(f"mid_channels needs {cfg.blocks + 1} entries, got {len(mids)}")
        # The global-pooling head accepts any length, so its padding is computed per input.
        fixed = cfg.input_length if cfg.head == "flatten" else None
        if cfg.conditioning not in ("none", "window"):
            raise ValueError(f"unknown conditioning {cfg.conditioning!r} (none, window)")
        self.condition = (InputConditioning(cfg.cond_kernel, cfg.cond_floor_mv, cfg.cond_stages)
                          if cfg.conditioning == "window" else None)
        self.stem = SameConv1d(1, f0, k, 1, fixed)
        self.stem_bn = nn.BatchNorm1d(f0)
        self.first_conv1 = SameConv1d(f0, mids[0], k, 1, fixed)
        self.first_bn = nn.BatchNorm1d(mids[0])
        self.first_dropout = nn.Dropout(cfg.dropout)
        self.first_conv2 = SameConv1d(mids[0], f0, k, 1, fixed)
        blocks, cin, length = [], f0, cfg.input_length
        for j in range(cfg.blocks):
            cout, stride = cfg.filters(j), cfg.stride(j)
            blocks.append(ResidualBlock(cin, cout, stride, k, cfg.dropout, mids[j + 1], length if fixed else None))
            cin, length = cout, math.ceil(length / stride)
        self.blocks = nn.Sequential(*blocks)
        self.head_bn = nn.BatchNorm1d(cin)
        self.final_length, self.final_channels = length, cin
        if cfg.head not in ("flatten", "gap"):
            raise ValueError(f"unknown head {cfg.head!r}")
        self.fc = nn.Linear((length if cfg.head == "flatten" else 1) * cin, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [batch, 1, input_length] in mV -> logits [batch, num_classes]."""
        if self.condition is not None:
            x = self.condition(x)
        return self.classify(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk: conditioned input [batch, 1, T] -> the head's input
        [batch, channels, ceil(T / stride)]; any T (the one-pass monitor runs it over long chunks)."""
        x = F.relu(self.stem_bn(self.stem(x)))
        y = self.first_conv2(self.first_dropout(F.relu(self.first_bn(self.first_conv1(x)))))
        return F.relu(self.head_bn(self.blocks(x + y)))

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        """The head: features [batch, channels, final_length] -> logits."""
        return self.fc(f.mean(dim=-1) if self.config.head == "gap" else torch.flatten(f, 1))


def count_params_table(model: nn.Module) -> int:
    """Parameters as the study's (Keras) table counts them: trainable + BN running stats."""
    n = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            n += m.running_mean.numel() + m.running_var.numel()
    return n


def count_macs(model: TinyRhythmCNN, nonzero_only: bool = False) -> int:
    """Multiply-accumulates per window of the convolutions and the linear head; with
    `nonzero_only`, only those of nonzero weights (each layer scaled by its density)."""
    macs = 0.0
    hooks = []

    def hook(m, inp, out):
        nonlocal macs
        density = float((m.weight != 0).float().mean()) if nonzero_only else 1.0
        if isinstance(m, nn.Conv1d):
            macs += density * out.shape[-1] * m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0]
        else:
            macs += density * m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        # On the model's own device: a CPU probe through a CUDA model was the crash after
        # the last epoch of GPU training.
        model(torch.zeros(1, 1, model.config.input_length, device=next(model.parameters()).device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return int(round(macs))
