"""One convolution pass over a long signal: every hop-aligned window's decision from it.

At a 2.048 s hop a 8.2 s window overlaps the next three, so classifying each window on
its own passes every sample through the network four times. Here the convolutional
trunk (everything before the head's flatten) runs once over the continuous signal, in
chunks with enough context for its receptive field, and the head takes each window's
slice of the trunk's output: a window starting at sample s (a multiple of the trunk's
total stride) owns feature columns s/stride .. s/stride + T_final - 1.

This is an approximation of the window-by-window path, measured, not an identity (README,
"Monitoring"): a window classified alone sees zero padding at its edges and is
normalised by its own scale, where the continuous pass sees the real neighbouring
samples and a moving scale (the mean absolute conditioned signal over one window length
centred on each sample). Measured on MITDB and Icentia11k recordings, `scripts/onepass_agreement.py`.

The result does not depend on how the signal is pushed: each decision is made only once
the samples its receptive field reaches are in (or the stream has ended), and the recording's
ends are treated as the ends of one continuous pass (tests/test_onepass.py).
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch

from .errors import TinyRhythmError
from .runtime.fold import Unfoldable, fold, fold_factor
from .runtime.ort import OrtModule, conditioning_prefix, session_from_bytes
from .models.cnn import SameConv1d, TinyRhythmCNN, same_pad
from .streaming import classify_windows


def _centred_sums(v: np.ndarray, half: int) -> np.ndarray:
    """Exact sums over [i - half, i + half] of an int64 signal whose end values repeat beyond its ends."""
    c = np.concatenate([[0], np.cumsum(np.pad(v, half, mode="edge"), dtype=np.int64)])
    return c[2 * half + 1:] - c[: len(v)]


class _Conditioning:
    """The model's input conditioning over a continuous signal, in integers so that the
    generated C stream (export.c) reproduces it bit for bit: samples rounded to whole uV
    (clamped to +-131 mV), each high-pass stage W*y - (sum of the W samples centred on it),
    the scale the sum of |y| over one window length centred on each sample, one float64
    division; values beyond the signal's ends repeat its end values. Equal to
    models.cnn.InputConditioning inside a window up to the uV rounding, except that the scale
    moves with each sample instead of being the window's own."""

    CLAMP_UV = (1 << 17) - 1

    def __init__(self, kernel: int, stages: int, floor: float, scale_length: int):
        self.w, self.half, self.stages = kernel, kernel // 2, stages
        self.length, self.scale_half = scale_length, scale_length // 2
        # A flat signal's scale floor, in the integer units of the last stage (uV * W**stages).
        self.floor_units = int(round(floor * 1000)) * kernel ** stages * scale_length

    @property
    def margin(self) -> int:
        return self.stages * self.half + self.scale_half

    def __call__(self, x: np.ndarray) -> np.ndarray:
        v = np.clip(np.rint(x.astype(np.float64) * 1000.0), -self.CLAMP_UV, self.CLAMP_UV).astype(np.int64)
        for _ in range(self.stages):
            v = self.w * v - _centred_sums(v, self.half)
        den = np.maximum(_centred_sums(np.abs(v), self.scale_half), self.floor_units)
        return ((v * self.length).astype(np.float64) / den.astype(np.float64)).astype(np.float32)


class _Identity:
    margin = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32, copy=False)


class _TorchTrunk:
    """The float CNN family: the model's own trunk (`features`) over any length and its head."""

    fold, folded_macs_per_sample = 1, None  # any length: nothing to trim chunks to

    def __init__(self, model: TinyRhythmCNN, length: int):
        self.m = model
        scale, reach, n = 1, 0, length
        for mod in model.modules():  # definition order is execution order in this family
            if isinstance(mod, SameConv1d):
                st = mod.stride[0]
                # The left pad does not depend on the length (Keras 'same', kernel 16): chunks align as windows do.
                reach += (max(mod.fixed_pad or same_pad(n, mod.kernel_size[0], st)) + st) * scale
                if st > 1:
                    scale, n = scale * st, math.ceil(n / st)
        self.stride, self.reach, self.columns = scale, reach, model.final_length
        c = model.condition
        self.conditioning = _Conditioning(c.kernel, c.stages, c.floor, length) if c is not None else _Identity()

    @torch.no_grad()
    def trunk(self, x: np.ndarray) -> np.ndarray:
        return self.m.features(torch.from_numpy(x)[None, None])[0].numpy()

    @torch.no_grad()
    def head(self, feats: np.ndarray) -> np.ndarray:
        return self.m.classify(torch.from_numpy(feats)).numpy()


class _OrtTrunk:
    """An exported ONNX model (float or int8 QDQ) cut in two at the head's flatten: the
    trunk with a free time axis, and the head. The conditioning ops in front of the first
    QuantizeLinear (or the first Conv) are replaced by the moving-scale version."""

    fold, folded_sess, out_fold, folded_macs_per_sample = 1, None, 1, None  # until _fold finds one

    def __init__(self, model: OrtModule, length: int):
        import onnx
        import onnx.utils

        g = onnx.shape_inference.infer_shapes(onnx.load_from_string(model.model_bytes))
        nodes = list(g.graph.node)
        flat = [n for n in nodes if n.op_type in ("Reshape", "Flatten")]
        if len(flat) != 1:
            raise TinyRhythmError(f"{model.path.name}: one-pass needs a flatten head (found {len(flat)} Reshape/Flatten nodes)")
        feat = flat[0].input[0]
        inits = {i.name for i in g.graph.initializer}
        # The trunk starts at the first activation an int8 graph quantizes (or a float graph convolves),
        # after the float conditioning ops, which the moving-scale version replaces.
        start = next(n.input[0] for n in nodes if n.op_type in ("QuantizeLinear", "Conv") and n.input[0] not in inits)
        cond = conditioning_prefix(g)
        if cond is not None and cond["output"] == start:
            self.conditioning = _Conditioning(cond["kernel"], cond["stages"], cond["floor"], length)
        elif cond is None and start == g.graph.input[0].name:
            self.conditioning = _Identity()
        else:
            raise TinyRhythmError(f"{model.path.name}: unrecognised input conditioning for one-pass")
        ex = onnx.utils.Extractor(g)
        trunk = ex.extract_model([start], [feat])
        del trunk.graph.value_info[:]
        for v in (*trunk.graph.input, *trunk.graph.output):
            dims = v.type.tensor_type.shape.dim
            dims[0].dim_param, dims[-1].dim_param = "batch", "time"
        head = ex.extract_model([feat], [g.graph.output[0].name])
        self.trunk_sess = session_from_bytes(trunk.SerializeToString(), model.path)
        self.head_sess = session_from_bytes(head.SerializeToString(), model.path)
        self.start, self.feat = start, feat
        scale, reach = 1, 0
        for n in nodes:  # an upper bound on the receptive field: every Conv and pool on one path
            if n.op_type not in ("Conv", "MaxPool"):
                continue
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            st = int(attrs.get("strides", [1])[0])
            reach += (max(list(attrs.get("pads", [0, 0])) + [attrs["kernel_shape"][0]]) + st) * scale
            if n.op_type == "Conv" and st > 1:
                scale *= st
        probe = self.trunk_sess.run(None, {start: np.zeros((1, 1, length), np.float32)})[0]
        self.stride, self.reach, self.columns = scale, reach, probe.shape[-1]
        self._fold(trunk, model.path)

    def _fold(self, trunk, path) -> None:
        """Phase folding (runtime.fold) for inputs whose length is a multiple of the fold, used
        only where it gives the plain graph's numbers exactly on a probe."""
        try:
            p0 = fold_factor(trunk, self.stride)
            folded = fold(trunk, p0)
            sess = session_from_bytes(folded.model.SerializeToString(), path)
        except (Unfoldable, TinyRhythmError):
            return
        self.fold, self.folded_sess, self.out_fold = p0, sess, folded.out_fold
        x = np.random.default_rng(0).normal(0, 1.0, 64 * p0).astype(np.float32)
        if np.array_equal(self.trunk(x), self.trunk_sess.run(None, {self.start: x[None, None]})[0][0]):
            self.folded_macs_per_sample = folded.macs_per_sample
        else:
            self.fold, self.folded_sess = 1, None

    def trunk(self, x: np.ndarray) -> np.ndarray:
        if self.folded_sess is None or len(x) % self.fold:
            return self.trunk_sess.run(None, {self.start: x[None, None]})[0][0]
        y = self.folded_sess.run(None, {self.start: np.ascontiguousarray(x.reshape(-1, self.fold).T[None])})[0][0]
        c = y.shape[0] // self.out_fold
        return np.ascontiguousarray(y.reshape(c, self.out_fold, -1).transpose(0, 2, 1).reshape(c, -1))

    def head(self, feats: np.ndarray) -> np.ndarray:
        return np.asarray(self.head_sess.run(None, {self.feat: np.ascontiguousarray(feats)})[0], np.float32)


# One backend per loaded model and window length: cutting an ONNX graph, folding its trunk and
# opening its sessions costs ~60 ms, once, not once per recording of a many-recordings run.
_BACKENDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _backend(lm):
    key = lm.model
    cached = _BACKENDS.get(key)
    if cached is not None and cached[0] == lm.input_length:
        return cached[1]
    if isinstance(lm.model, TinyRhythmCNN):
        b = _TorchTrunk(lm.model, lm.input_length)
    elif isinstance(lm.model, OrtModule):
        b = _OrtTrunk(lm.model, lm.input_length)
    else:
        raise TinyRhythmError(f"one-pass engine not available for {lm.name} ({type(lm.model).__name__}): "
                              "it runs the CNN family in PyTorch float or ONNX")
    _BACKENDS[key] = (lm.input_length, b)
    return b


def logits(lm, signal: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(window starts, head outputs before the softmax) of a whole signal at the model's rate
    in one pass: what OnePassClassifier decides, for checks that compare raw scores (export.c_onepass)."""
    b = _backend(lm)
    starts = np.arange(0, len(signal) - lm.input_length + 1, hop)
    feats = b.trunk(np.ascontiguousarray(b.conditioning(np.asarray(signal, np.float32))))
    return starts, b.head(_windows(feats, starts // b.stride, b.columns))


def _windows(feats: np.ndarray, first: np.ndarray, cols: int) -> np.ndarray:
    """[n, channels, cols]: each window's slice of the trunk's output [channels, positions]."""
    view = np.lib.stride_tricks.sliding_window_view(feats, cols, axis=1)  # [channels, positions, cols], no copy
    return np.ascontiguousarray(view[:, first].transpose(1, 0, 2))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class OnePassClassifier:
    """Push samples (at the model's rate) in any chunks; get (start, probabilities) for every
    window at 0, hop, 2*hop, ... once its receptive field is in; `finish()` at the end."""

    def __init__(self, lm, hop: int | None = None):
        self.lm, self.length = lm, lm.input_length
        self.hop = hop or self.length // 2
        self.b = _backend(lm)
        st = self.b.stride
        if self.hop % st:
            raise TinyRhythmError(f"one-pass needs a hop that is a multiple of {st} samples, got {self.hop}")
        # Context each side, on the stride grid: the trunk's reach plus the conditioning's, plus
        # what trimming a chunk to a multiple of the trunk's phase fold may take off its end.
        self.trunk_margin = math.ceil((self.b.reach + self.b.fold - 1) / st) * st
        self.margin = self.trunk_margin + self.b.conditioning.margin
        self.buf = np.zeros(0, np.float32)
        self.base = 0  # stream index of buf[0]
        self.total = 0
        self.next_start = 0
        self.emitted = 0

    def push(self, samples) -> list[tuple[int, np.ndarray]]:
        """Add samples; returns (start sample, class probabilities) for every window whose
        receptive field is now complete."""
        x = np.asarray(samples, np.float32).ravel()
        if not np.isfinite(x).all():
            raise TinyRhythmError("stream contains NaN or infinite samples")
        self.buf = np.concatenate([self.buf, x])
        self.total += len(x)
        return self._emit(self.total - self.margin, final=False)

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows whose right context the stream's end cut off (and nothing for a stream
        shorter than one window: `padded()`)."""
        return self._emit(self.total, final=True)

    def padded(self) -> list[tuple[int, np.ndarray]]:
        """A stream shorter than one window: that stream zero-padded to one window, as the window path does."""
        if self.emitted or not self.total:
            return []
        return [(0, classify_windows(self.lm, np.pad(self.buf, (0, self.length - len(self.buf)))[None])[0])]

    def _emit(self, limit: int, final: bool) -> list[tuple[int, np.ndarray]]:
        """Every window ending at or before `limit` (the samples after it are context)."""
        starts = []
        s = self.next_start
        while s + self.length <= min(limit, self.total):
            starts.append(s)
            s += self.hop
        if not starts:
            return []
        a = max(self.base, starts[0] - self.margin)
        b = self.total if final else starts[-1] + self.length + self.margin
        cond = self.b.conditioning(self.buf[a - self.base: b - self.base])
        # The trunk's input begins trunk_margin before the first window (or at the recording's start).
        c0 = max(a, starts[0] - self.trunk_margin) if a > 0 else 0
        c1 = b if final else b - self.b.conditioning.margin
        if not final:  # a length the folded trunk takes (the recording's end is never moved)
            c1 = c0 + (c1 - c0) // self.b.fold * self.b.fold
        feats = self.b.trunk(np.ascontiguousarray(cond[c0 - a: c1 - a]))
        cols = self.b.columns
        idx = (np.asarray(starts) - c0) // self.b.stride
        probs = _softmax(self.b.head(_windows(feats, idx, cols)))
        self.next_start = s
        self.emitted += len(starts)
        keep = max(0, self.next_start - self.margin - self.base)
        if keep:
            self.buf, self.base = self.buf[keep:], self.base + keep
        return list(zip(starts, probs))
