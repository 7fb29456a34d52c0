"""Dependency-free C99 from an ONNX Runtime int8 (QDQ) model.

The QDQ graph ONNX Runtime's static quantizer writes for this family is regular: every
Conv, BatchNormalization, Add, MaxPool, Pad, Reshape and Gemm reads dequantized uint8
activations and its output is quantized again. Each such node becomes one C kernel with
integer arithmetic where ONNX Runtime's fused int8 kernels use it (convolution and dense:
int32 accumulation of int8 weights, per-channel requantisation) and the same float
requantisation elsewhere, so the C build gives ONNX Runtime's answers to within one
quantisation step. Memory is one static arena whose size is fixed at generation time by
a first-fit allocation over tensor lifetimes; there is no malloc.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError

SUPPORTED = ("Conv", "BatchNormalization", "Add", "MaxPool", "Pad", "Reshape", "Flatten", "Gemm")


@dataclass
class QTensor:
    name: str
    shape: tuple[int, int]  # (channels, length); dense vectors are (n, 1)
    scale: float
    zero: int
    offset: int = -1
    first: int = 0
    last: int = 0

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass
class Op:
    kind: str
    inputs: list[str]
    output: str
    params: dict = field(default_factory=dict)


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


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Lowering:
    def __init__(self, path: Path):
        import onnx
        from onnx import numpy_helper

        self.model = onnx.load(str(path))
        g = self.model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.tensors: dict[str, QTensor] = {}
        self.ops: list[Op] = []
        self.consts: list[str] = []

    # -- constants ------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray:
        """A constant input as float (dequantized when it is an int8 initializer behind a DQ)."""
        if name in self.inits:
            return self.inits[name].astype(np.float32)
        node = self.producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.inits:
            q, s = self.inits[node.input[0]].astype(np.float32), self.inits[node.input[1]].astype(np.float32)
            z = self.inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else 0.0
            if np.ndim(s) and q.ndim > 1:
                shape = [-1] + [1] * (q.ndim - 1)
                s, z = s.reshape(shape), np.reshape(z, shape)
            return ((q - z) * s).astype(np.float32)
        raise TinyRhythmError(f"{name}: expected a constant")

    def quantized_const(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.inits:
            raise TinyRhythmError(f"{name}: expected an int8 weight (QDQ model)")
        return self.inits[node.input[0]], np.atleast_1d(self.inits[node.input[1]]).astype(np.float32)

    def activation(self, name: str) -> QTensor:
        """The quantized tensor behind a DequantizeLinear output."""
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] in self.inits:
            raise TinyRhythmError(f"{name}: expected a dequantized activation (QDQ model)")
        return self.tensors[node.input[0]]

    # -- graph walk -----------------------------------------------------------------
    def run(self, input_length: int) -> None:
        g = self.model.graph
        shapes: dict[str, tuple[int, int]] = {}
        pending: dict[str, Op] = {}  # float outputs waiting for their QuantizeLinear
        inp = g.input[0].name
        cond = conditioning_prefix(self.model)
        self.conditioning = cond
        if cond is not None:
            inp = cond["output"]  # the float conditioning runs in tr_quantize; the int8 graph starts after it
        for n in g.node:
            if cond is not None and n.name in cond["nodes"]:
                continue
            if n.op_type == "QuantizeLinear":
                scale = float(self.inits[n.input[1]])
                zero = int(self.inits[n.input[2]]) if len(n.input) > 2 else 0
                if self.inits[n.input[2]].dtype != np.uint8:
                    raise TinyRhythmError(f"{n.name}: activations must be uint8")
                src = n.input[0]
                shape = (1, input_length) if src == inp else shapes[src]
                self.tensors[n.output[0]] = QTensor(n.output[0], shape, scale, zero)
                if src == inp:
                    self.input = self.tensors[n.output[0]]
                elif src in pending:
                    pending.pop(src).output = n.output[0]
                else:
                    raise TinyRhythmError(f"{src}: quantized tensor without a supported producer")
                continue
            if n.op_type == "DequantizeLinear":
                continue
            if n.op_type not in SUPPORTED:
                raise TinyRhythmError(f"layer {n.name or n.output[0]} ({n.op_type}) is not supported by the C generator "
                                      f"(supported: {', '.join(SUPPORTED)})")
            shapes[n.output[0]] = self._lower(n, shapes)
            pending[n.output[0]] = self.ops[-1]
        if pending:
            raise TinyRhythmError(f"unquantized outputs: {', '.join(pending)} (not a QDQ model)")
        if g.output[0].name not in {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}:
            raise TinyRhythmError("the model output must be quantized (QDQ model)")
        self.output = self.tensors[self.producer[g.output[0].name].input[0]]

    def _lower(self, n, shapes) -> tuple[int, int]:
        a = _attrs(n)
        if n.op_type == "Conv":
            x = self.activation(n.input[0])
            w, ws = self.quantized_const(n.input[1])
            cout, cin, k = w.shape
            stride, pads = a.get("strides", [1])[0], a.get("pads", [0, 0])
            if a.get("group", 1) != 1 or a.get("dilations", [1])[0] != 1 or cin != x.shape[0]:
                raise TinyRhythmError(f"layer {n.name}: only plain 1-D convolutions are supported")
            bq, _ = self.quantized_const(n.input[2])
            lout = (x.shape[1] + pads[0] + pads[1] - k) // stride + 1
            self.ops.append(Op("conv", [x.name], "", {"w": w, "ws": np.broadcast_to(ws, (cout,)).copy(), "b": bq,
                                                      "k": k, "stride": stride, "pad": pads[0], "cout": cout}))
            return (cout, lout)
        if n.op_type == "BatchNormalization":
            x = self.activation(n.input[0])
            gamma, beta, mean, var = (self.const(i) for i in n.input[1:5])
            # ONNX Runtime's order of operations: inv_std = 1/sqrt(var + eps), scale = inv_std * gamma.
            inv_std = np.float32(1.0) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
            scale = inv_std * gamma
            self.ops.append(Op("affine", [x.name], "", {"a": scale.astype(np.float32),
                                                        "b": (beta - mean * scale).astype(np.float32)}))
            return x.shape
        if n.op_type == "Add":
            x, y = self.activation(n.input[0]), self.activation(n.input[1])
            if x.shape != y.shape:
                raise TinyRhythmError(f"layer {n.name}: Add of different shapes")
            self.ops.append(Op("add", [x.name, y.name], ""))
            return x.shape
        if n.op_type == "MaxPool":
            x = self.activation(n.input[0])
            k, s = a["kernel_shape"][0], a.get("strides", [1])[0]
            pads = a.get("pads", [0, 0])
            ceil = a.get("ceil_mode", 0)
            span = x.shape[1] + pads[0] + pads[1] - k
            lout = (-(-span // s) if ceil else span // s) + 1
            self.ops.append(Op("maxpool", [x.name], "", {"k": k, "stride": s, "pad": pads[0]}))
            return (x.shape[0], lout)
        if n.op_type == "Pad":
            x = self.activation(n.input[0])
            pads = [int(p) for p in self.inits[n.input[1]]]
            if a.get("mode", b"constant") not in (b"constant", "constant") or any(pads[i] for i in (0, 2, 3, 5)):
                raise TinyRhythmError(f"layer {n.name}: only zero channel padding at the end is supported")
            self.ops.append(Op("padc", [x.name], "", {"extra": pads[4]}))
            return (x.shape[0] + pads[4], x.shape[1])
        if n.op_type in ("Reshape", "Flatten"):
            x = self.activation(n.input[0])
            self.ops.append(Op("copy", [x.name], ""))
            return (x.size, 1)
        if n.op_type == "Gemm":
            x = self.activation(n.input[0])
            w, ws = self.quantized_const(n.input[1])
            if not a.get("transB", 0):
                w = w.T
            bq, _ = self.quantized_const(n.input[2])
            self.ops.append(Op("dense", [x.name], "", {"w": np.ascontiguousarray(w), "ws": np.broadcast_to(ws, (w.shape[0],)).copy(),
                                                       "b": bq, "cout": w.shape[0]}))
            return (w.shape[0], 1)
        raise AssertionError(n.op_type)

    # -- memory -----------------------------------------------------------------------
    def plan(self) -> int:
        """First-fit offsets in one arena over tensor lifetimes (op indices)."""
        order = [self.input.name] + [op.output for op in self.ops]
        for t in self.tensors.values():
            t.first, t.last = -1, -1
        self.input.first = 0
        for i, op in enumerate(self.ops, start=1):
            self.tensors[op.output].first = i
            for name in op.inputs:
                self.tensors[name].last = i
        self.output.last = len(self.ops) + 1
        placed: list[QTensor] = []
        peak = 0
        for name in order:
            t = self.tensors[name]
            live = sorted((p for p in placed if p.last >= t.first and p.first <= t.last), key=lambda p: p.offset)
            off = 0
            for p in live:
                if off + t.size <= p.offset:
                    break
                off = max(off, p.offset + p.size)
            off = (off + 3) & ~3
            t.offset = off
            placed.append(t)
            peak = max(peak, off + t.size)
        return (peak + 3) & ~3


def _f(v) -> str:
    """A float32 constant spelled exactly (9 significant digits round-trip)."""
    return f"{float(np.float32(v)):.9g}f"


def _arr(name: str, ctype: str, values, per_line: int = 16) -> str:
    vals = [str(int(v)) if ctype != "float" else f"{float(v):.9g}f" for v in np.asarray(values).ravel()]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  " + ",\n  ".join(lines) + "\n};\n"


# C shared by tr_model.c and tr_onepass.c (export.c_onepass).
ROUND_F = r"""/* Round to nearest, ties to even: lrintf in the default rounding mode. With an FPU, one VCVTR
   instead of a libm call (newlib's lrintf is ~35 instructions in software). */
#if defined(__ARM_FP) && (__ARM_FP & 4)
static inline long round_f(float v) {
  float r;
  int32_t i;
  __asm__("vcvtr.s32.f32 %0, %1" : "=t"(r) : "t"(v));
  memcpy(&i, &r, 4);
  return i;
}
#else
#define round_f(v) lrintf(v)
#endif
"""
DSP_HELPERS = r"""#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
/* bytes 1 and 3 to two halfwords (UXTB16/SXTB16 with their own rotation: one instruction, gcc emits two) */
static inline uint32_t uxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
#endif
"""

KERNELS = {
    'sat_u8': r"""static uint8_t sat_u8(long v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
""" + ROUND_F,
    'conv1d_q': r"""/* conv1d, int8 weights [cout][cin][k], int32 bias, zero padding, per-channel requantisation.
   A layer is a const descriptor: one pointer per call site instead of 14 arguments (flash). */
typedef struct {
  const WEIGHT_T *w; const int32_t *b; const float *mult; EXC_FIELD
  uint16_t x, y, lin, lout; uint8_t cin, cout, k, stride, pad, zx, zy;
} conv_t;
static void conv1d_q(const conv_t *p) {
  const uint8_t *x = A + p->x;
  uint8_t *y = A + p->y;
  int co, t, ci, j, cin = p->cin, lin = p->lin, k = p->k, zx = p->zx;
  FILTER_DECL
#if defined(__ARM_FEATURE_DSP)
  /* Cortex-M4/M7/M33 DSP extension: the filter as int16 pairs in the order __uxtb16 spreads
     four input bytes, two multiply-accumulates per __smlad; integer sums, so bit-exact. */
  uint32_t wp[TR_MAX_FILTER / 2];
  int32_t wsum[TR_MAX_CIN], wtot = 0;
  int dsp = k % 4 == 0;
#endif
  for (co = 0; co < p->cout; ++co) {
    FILTER_LOAD(p->w, co * cin * k, cin * k, p->exc)
#if defined(__ARM_FEATURE_DSP)
    if (dsp)
      for (wtot = 0, ci = 0; ci < cin; wtot += wsum[ci], ++ci) {
        wsum[ci] = 0;
        for (j = 0; j < k; j += 4) {
          const int8_t *f = filter + ci * k + j;
          wp[(ci * k + j) / 2] = (uint16_t)f[0] | ((uint32_t)(uint16_t)f[2] << 16);
          wp[(ci * k + j) / 2 + 1] = (uint16_t)f[1] | ((uint32_t)(uint16_t)f[3] << 16);
          wsum[ci] += f[0] + f[1] + f[2] + f[3];
        }
      }
#endif
    for (t = 0; t < p->lout; ++t) {
      int32_t acc = p->b[co];
      int start = t * p->stride - p->pad;
#if defined(__ARM_FEATURE_DSP)
      if (dsp && k == 16 && p->stride == 1 && t + 1 < p->lout && start >= 0 && start + 17 <= lin) {
        /* two neighbouring outputs at once: each pair of weights loaded once for both */
        int32_t s0 = 0, s1 = 0, acc1;
        for (ci = 0; ci < cin; ++ci) {
          const uint8_t *xr = x + ci * lin + start;
          const uint32_t *wq = wp + ci * 8;
          uint32_t xa, xb;
#define TR_PAIR(g) \
          memcpy(&xa, xr + 4 * (g), 4); memcpy(&xb, xr + 4 * (g) + 1, 4); \
          s0 = __smlad(__uxtb16(xa), wq[2 * (g)], s0); s0 = __smlad(uxtb16_ror8(xa), wq[2 * (g) + 1], s0); \
          s1 = __smlad(__uxtb16(xb), wq[2 * (g)], s1); s1 = __smlad(uxtb16_ror8(xb), wq[2 * (g) + 1], s1);
          TR_PAIR(0) TR_PAIR(1) TR_PAIR(2) TR_PAIR(3)
#undef TR_PAIR
        }
        acc1 = acc + s1 - zx * wtot;
        acc += s0 - zx * wtot;
        y[co * p->lout + t] = sat_u8(p->zy + round_f((float)acc * p->mult[co]));
        y[co * p->lout + t + 1] = sat_u8(p->zy + round_f((float)acc1 * p->mult[co]));
        ++t;
        continue;
      }
#endif
      /* taps that fall in the zero padding contribute nothing: loop over the others only */
      int j0 = start < 0 ? -start : 0, j1 = start + k > lin ? lin - start : k;
      for (ci = 0; ci < cin; ++ci) {
        const uint8_t *xr = x + ci * lin + start;
        const int8_t *wr = filter + ci * k;
        int32_t sx = 0, sw = 0;
#if defined(__ARM_FEATURE_DSP)
        if (dsp && j0 == 0 && j1 == k) {
          const uint32_t *wq = wp + ci * k / 2;
          for (j = 0; j < k; j += 4, wq += 2) {
            uint32_t xw;
            memcpy(&xw, xr + j, 4);  /* one unaligned load */
            sx = __smlad(__uxtb16(xw), wq[0], sx);
            sx = __smlad(uxtb16_ror8(xw), wq[1], sx);
          }
          acc += sx - zx * wsum[ci];
          continue;
        }
#endif
        for (j = j0; j < j1; ++j) {
          sx += (int32_t)xr[j] * (int32_t)wr[j];
          sw += wr[j];
        }
        acc += sx - zx * sw;
      }
      y[co * p->lout + t] = sat_u8(p->zy + round_f((float)acc * p->mult[co]));
    }
  }
}
""",
    'dense_q': r"""/* dense layer: int8 weights [cout][cin], int32 bias */
static void dense_q(const uint8_t *x, int cin, int zx, const WEIGHT_T *w, EXC_PARAM const int32_t *b,
                    const float *mult, int cout, uint8_t *y, int zy) {
  int co, ci, j;
  int8_t wb[64];
  for (co = 0; co < cout; ++co) {
    int32_t acc = b[co];
    for (ci = 0; ci < cin; ci += 64) {
      int n = cin - ci < 64 ? cin - ci : 64;
      ROW_LOAD(wb, w, (long)co * cin + ci, n, exc)
      for (j = 0; j < n; ++j) acc += ((int32_t)x[ci + j] - zx) * (int32_t)wb[j];
    }
    y[co] = sat_u8(zy + round_f((float)acc * mult[co]));
  }
}
""",
    'affine_q': r"""/* per-channel affine (BatchNorm, unfoldable in a pre-activation network), ReLU by the uint8 range */
typedef struct { const float *a, *bb; float sx, sy; uint16_t x, y, l; uint8_t c, zx, zy; } affine_t;
static void affine_q(const affine_t *p) {
  const uint8_t *x = A + p->x;
  uint8_t *y = A + p->y;
  int ch, t, l = p->l;
  for (ch = 0; ch < p->c; ++ch)
    for (t = 0; t < l; ++t) {
      float v = (float)((int)x[ch * l + t] - p->zx) * p->sx;
      v = v * p->a[ch] + p->bb[ch];
      y[ch * l + t] = sat_u8(p->zy + round_f(v / p->sy));
    }
}
""",
    'add_q': r"""/* ratios are sx/sy and sz/sy in float32, as ONNX Runtime's QLinearAdd */
typedef struct { float rx, rz; uint16_t x, z, y, n; uint8_t zx, zz, zy; } add_t;
static void add_q(const add_t *p) {
  const uint8_t *x = A + p->x, *z = A + p->z;
  uint8_t *y = A + p->y;
  int i;
  for (i = 0; i < p->n; ++i)
    y[i] = sat_u8(round_f((float)((int)x[i] - p->zx) * p->rx + (float)((int)z[i] - p->zz) * p->rz + (float)p->zy));
}
""",
    'requant': r"""static void requant(const uint8_t *x, float sx, int zx, int n, float sy, int zy, uint8_t *y) {
  int i;
  for (i = 0; i < n; ++i) y[i] = sat_u8(zy + round_f((float)((int)x[i] - zx) * sx / sy));
}
""",
    'maxpool_q': r"""static void maxpool_q(const uint8_t *x, int c, int lin, int k, int stride, int pad, int lout, uint8_t *y) {
  int ch, t, j;
  for (ch = 0; ch < c; ++ch)
    for (t = 0; t < lout; ++t) {
      int best = -1;
      for (j = 0; j < k; ++j) {
        int p = t * stride - pad + j;
        if (p >= 0 && p < lin && x[ch * lin + p] > best) best = x[ch * lin + p];
      }
      y[ch * lout + t] = (uint8_t)best;
    }
}
""",
}



# Weight storage. The quantizer's 7-bit weights (reduce_range: -64..63) pack 8 to 7 bytes,
# unpacked one filter at a time onto the stack; flash is what a microcontroller has least of.
UNPACK7 = r"""/* 7-bit two's-complement weights, packed little-endian, 8 in 7 bytes; the few weights
   of +64 (the quantizer's symmetric 7-bit range is -64..64) are stored as -64 and listed in
   `exc` (ascending indices, ended by 0xFFFF). */
static void unpack7(const uint8_t *src, long first, int n, const uint16_t *exc, int8_t *dst) {
  int i;
  long bit = first * 7;
  for (i = 0; i < n; ++i, bit += 7) {
    int v = ((src[bit >> 3] | (src[(bit >> 3) + 1] << 8)) >> (bit & 7)) & 0x7f;
    dst[i] = (int8_t)(v >= 64 ? v - 128 : v);
  }
  for (; *exc != 0xFFFF; ++exc)
    if (*exc >= first && *exc < first + n) dst[*exc - first] = 64;
}
"""
STORAGE = {
    True: {"WEIGHT_T": "uint8_t", "FILTER_DECL": "int8_t filter[TR_MAX_FILTER];", "EXC_FIELD": "const uint16_t *exc;",
           "EXC_PARAM": "const uint16_t *exc,",
           "FILTER_LOAD": lambda w, first, n, exc: f"unpack7({w}, {first}, {n}, {exc}, filter);",
           "ROW_LOAD": lambda dst, w, first, n, exc: f"unpack7({w}, {first}, {n}, {exc}, {dst});"},
    False: {"WEIGHT_T": "int8_t", "FILTER_DECL": "const int8_t *filter;", "EXC_FIELD": "", "EXC_PARAM": "",
            "FILTER_LOAD": lambda w, first, n, exc: f"filter = {w} + {first};",
            "ROW_LOAD": lambda dst, w, first, n, exc: f"memcpy({dst}, {w} + {first}, {n});"},
}


def fits7(w: np.ndarray) -> bool:
    """Weights the 7-bit packing holds: -64..63, plus +64 through the exception list (index < 0xFFFF)."""
    return int(w.min()) >= -64 and int(w.max()) <= 64 and w.size < 0xFFFF


def pack7(w: np.ndarray) -> np.ndarray:
    """int8 weights in -64..64 as a little-endian 7-bit stream (+64 written as -64, see `exceptions7`),
    plus one byte for the reader's 16-bit loads."""
    v = (np.where(np.asarray(w, np.int16).ravel() == 64, -64, np.asarray(w, np.int16).ravel()) & 0x7F).astype(np.uint8)
    bits = np.unpackbits(v[:, None], axis=1, bitorder="little")[:, :7].ravel()
    return np.concatenate([np.packbits(bits, bitorder="little"), np.zeros(1, np.uint8)])


def exceptions7(w: np.ndarray) -> np.ndarray:
    """Flat indices of the +64 weights, ended by 0xFFFF."""
    return np.concatenate([np.flatnonzero(np.asarray(w).ravel() == 64), [0xFFFF]]).astype(np.uint16)


def _kernels(body: list[str], packed: bool = False) -> str:
    """Only the kernels the model calls: unused static functions would break -Werror builds."""
    import re

    used = [k for k in KERNELS if k == "sat_u8" or any(f"  {k}(" in line for line in body)]
    st = STORAGE[packed]
    text = "\n".join(KERNELS[k] for k in used)
    for key in ("WEIGHT_T", "FILTER_DECL", "EXC_FIELD", "EXC_PARAM"):
        text = text.replace(key, st[key])
    text = re.sub(r"FILTER_LOAD\(([^,]+), ([^,]+), ([^,]+), ([^)]+)\)", lambda m: st["FILTER_LOAD"](*m.groups()), text)
    text = re.sub(r"ROW_LOAD\(([^,]+), ([^,]+), ([^,]+), ([^,]+), ([^)]+)\)", lambda m: st["ROW_LOAD"](*m.groups()), text)
    return (UNPACK7 + "\n" if packed else "") + text


def generate(onnx_path: str | os.PathLike, out: str | os.PathLike, input_length: int, classes: list[str],
             prefix: str = "tr", hop: int | None = None) -> dict:
    """Write `{prefix}_model.h`, `{prefix}_model.c` and a stdin/stdout `main.c` for testing."""
    hop = hop or input_length // 2
    lw = Lowering(Path(onnx_path))
    lw.run(input_length)
    arena = lw.plan()
    out = Path(out)
    P = prefix.upper()
    body, consts = [], []
    weight_bytes = 0
    weighted = [op for op in lw.ops if op.kind in ("conv", "dense")]
    packed = all(fits7(op.params["w"]) for op in weighted)
    max_filter = max([op.params["w"][0].size for op in lw.ops if op.kind == "conv"] or [1])
    max_cin = max([op.params["w"].shape[1] for op in lw.ops if op.kind == "conv"] or [1])

    def weights(name: str, w: np.ndarray) -> str:
        if not packed:
            return _arr(name, "int8_t", w)
        return _arr(name, "uint8_t", pack7(w)) + _arr(name.replace("w", "e", 1), "uint16_t", exceptions7(w))
    described = [lw.tensors[n] for op in lw.ops if op.kind in ("conv", "affine", "add") for n in (*op.inputs, op.output)]
    if arena >= 1 << 16 or any(t.shape[0] > 255 or t.shape[1] >= 1 << 16 for t in described):
        raise TinyRhythmError("the C generator's layer descriptors hold arena offsets below 64 KB and at most 255 channels")
    for i, op in enumerate(lw.ops):
        y = lw.tensors[op.output]
        xs = [lw.tensors[n] for n in op.inputs]
        x = xs[0]
        X = f"A + {x.offset}"
        Y = f"A + {y.offset}"
        if op.kind in ("conv", "dense"):
            p = op.params
            mult = (np.float32(x.scale) * p["ws"].astype(np.float32)) / np.float32(y.scale)  # float32, as ORT
            consts += [weights(f"w{i}", p["w"]), _arr(f"b{i}", "int32_t", p["b"]), _arr(f"m{i}", "float", mult)]
            weight_bytes += (len(pack7(p["w"])) + 2 * len(exceptions7(p["w"])) if packed else p["w"].size) \
                + 4 * p["b"].size + 4 * mult.size
            if op.kind == "conv":
                consts.append(f"static const conv_t L{i} = {{w{i}, b{i}, m{i}, {f'e{i}, ' if packed else ''}{x.offset}, {y.offset}, {x.shape[1]}, "
                              f"{y.shape[1]}, {x.shape[0]}, {p['cout']}, {p['k']}, {p['stride']}, {p['pad']}, {x.zero}, "
                              f"{y.zero}}};\n")
                body.append(f"  conv1d_q(&L{i});")
            else:
                body.append(f"  dense_q({X}, {x.size}, {x.zero}, w{i}, {f'e{i}, ' if packed else ''}b{i}, m{i}, {p['cout']}, {Y}, {y.zero});")
        elif op.kind == "affine":
            consts += [_arr(f"a{i}", "float", op.params["a"]), _arr(f"c{i}", "float", op.params["b"])]
            weight_bytes += 8 * op.params["a"].size
            consts.append(f"static const affine_t L{i} = {{a{i}, c{i}, {_f(x.scale)}, {_f(y.scale)}, {x.offset}, "
                          f"{y.offset}, {x.shape[1]}, {x.shape[0]}, {x.zero}, {y.zero}}};\n")
            body.append(f"  affine_q(&L{i});")
        elif op.kind == "add":
            z = xs[1]
            rx, rz = np.float32(x.scale) / np.float32(y.scale), np.float32(z.scale) / np.float32(y.scale)
            consts.append(f"static const add_t L{i} = {{{_f(rx)}, {_f(rz)}, {x.offset}, {z.offset}, {y.offset}, {y.size}, "
                          f"{x.zero}, {z.zero}, {y.zero}}};\n")
            body.append(f"  add_q(&L{i});")
        elif op.kind == "maxpool":
            p = op.params
            if x.scale != y.scale or x.zero != y.zero:
                raise TinyRhythmError("MaxPool must keep its input's quantisation")
            body.append(f"  maxpool_q({X}, {x.shape[0]}, {x.shape[1]}, {p['k']}, {p['stride']}, {p['pad']}, "
                        f"{y.shape[1]}, {Y});")
        elif op.kind == "padc":
            n_in = x.size
            body.append(f"  requant({X}, {_f(x.scale)}, {x.zero}, {n_in}, {_f(y.scale)}, {y.zero}, {Y});")
            body.append(f"  memset({Y} + {n_in}, {y.zero}, {y.size - n_in});")
        elif op.kind == "copy":
            body.append(f"  requant({X}, {_f(x.scale)}, {x.zero}, {x.size}, {_f(y.scale)}, {y.zero}, {Y});")
        body.append(f"  TR_TRACE({i}, {Y}, {y.size});")
    inp, outp = lw.input, lw.output
    n_classes = outp.size
    quantize_fn, sample_t, stream_classify, cond_doc, input_expr = _quantize_source(prefix, lw.conditioning)
    if lw.conditioning is not None:
        # tr_quantize's float stage-1 buffer and the stream's float window copy live in the
        # arena before tr_classify needs it: RAM is the larger of the two uses, not their sum.
        arena = max(arena, 2 * 4 * input_length)
        window_decl = f"float *window = ARENA_F + {P}_INPUT_LENGTH;"
    else:
        window_decl = f"static {sample_t} window[{P}_INPUT_LENGTH];"
    header = f"""/* Generated by tinyrhythm: int8 rhythm classifier, dependency-free C99. */
#ifndef {P}_MODEL_H
#define {P}_MODEL_H
#include <stdint.h>

#define {P}_INPUT_LENGTH {input_length}   /* samples per window */
#define {P}_NUM_CLASSES {n_classes}
#define {P}_ARENA_BYTES {arena}          /* all working memory: one static arena */
/* window[i] = clamp(round({input_expr} / INPUT_SCALE) + INPUT_ZERO_POINT, -128, 127) */
#define {P}_INPUT_SCALE {_f(inp.scale)}
#define {P}_INPUT_ZERO_POINT ({inp.zero - 128})
/* logit[c] = (scores[c] - OUTPUT_ZERO_POINT) * OUTPUT_SCALE */
#define {P}_OUTPUT_SCALE {_f(outp.scale)}
#define {P}_OUTPUT_ZERO_POINT ({outp.zero - 128})
#define {P}_ERR_NULL (-1)
#define {P}_ERR_LENGTH (-2)

/* Class labels, in score order: {", ".join(classes)} */
extern const char *const {prefix}_labels[{P}_NUM_CLASSES];

/* Classify one quantized window of `length` samples; writes NUM_CLASSES int8 scores.
   Returns the winning class index, or ERR_NULL / ERR_LENGTH. Not reentrant (static arena). */
int {prefix}_classify(const int8_t *window, int length, int8_t *scores);

/* Quantize `length` samples in mV into `window`; returns 0, or ERR_NULL / ERR_LENGTH.{cond_doc} */
int {prefix}_quantize(const float *mv, int length, int8_t *window);

/* Streaming: windows start every HOP samples of the stream (the windows of a batch pass). */
#define {P}_HOP {hop}
#define {P}_NO_DECISION (-3)
typedef struct {{ {sample_t} ring[{P}_INPUT_LENGTH]; long count; }} {prefix}_stream_t;
void {prefix}_stream_init({prefix}_stream_t *s);
/* Consume samples up to the one that completes a window (*consumed says how many); returns
   the class and fills scores when a window completed, NO_DECISION when all n were consumed
   without one, or ERR_NULL. Call again with the rest of the chunk. */
int {prefix}_stream_push({prefix}_stream_t *s, const {sample_t} *samples, int n, int *consumed, int8_t *scores);

#endif
"""
    labels = ", ".join('"' + c.replace('"', '\\"') + '"' for c in classes)
    source = f"""/* Generated by tinyrhythm from an ONNX Runtime int8 (QDQ) model. Do not edit. */
#include "{prefix}_model.h"
#include <math.h>
#include <string.h>

const char *const {prefix}_labels[{P}_NUM_CLASSES] = {{{labels}}};

/* One static arena: the layers' tensors, and before them the float conditioning scratch. */
static union {{ uint8_t b[{P}_ARENA_BYTES]; float f[{P}_ARENA_BYTES / 4]; }} arena;
#define A (arena.b)
#define ARENA_F (arena.f)
#ifndef TR_TRACE /* define TR_TRACE(op, ptr, n) to inspect every layer's output */
#define TR_TRACE(op, ptr, n)
#endif
#define TR_MAX_FILTER {max_filter}
#define TR_MAX_CIN {max_cin}
{DSP_HELPERS}
{_kernels(body, packed)}
{"".join(consts)}
{quantize_fn}
void {prefix}_stream_init({prefix}_stream_t *s) {{
  if (s) s->count = 0;
}}

int {prefix}_stream_push({prefix}_stream_t *s, const {sample_t} *samples, int n, int *consumed, int8_t *scores) {{
  {window_decl}
  int i, j;
  if (!s || !samples || !consumed || !scores) return {P}_ERR_NULL;
  for (i = 0; i < n; ++i) {{
    s->ring[s->count % {P}_INPUT_LENGTH] = samples[i];
    s->count++;
    if (s->count >= {P}_INPUT_LENGTH && (s->count - {P}_INPUT_LENGTH) % {P}_HOP == 0) {{
      for (j = 0; j < {P}_INPUT_LENGTH; ++j) window[j] = s->ring[(s->count + j) % {P}_INPUT_LENGTH];
      *consumed = i + 1;
{stream_classify}
    }}
  }}
  *consumed = n;
  return {P}_NO_DECISION;
}}

int {prefix}_classify(const int8_t *window, int length, int8_t *scores) {{
  int i, best = 0;
  if (!window || !scores) return {P}_ERR_NULL;
  if (length != {P}_INPUT_LENGTH) return {P}_ERR_LENGTH;
  for (i = 0; i < length; ++i) A[{inp.offset} + i] = (uint8_t)((int)window[i] + 128);
{chr(10).join(body)}
  for (i = 0; i < {P}_NUM_CLASSES; ++i) {{
    scores[i] = (int8_t)((int)A[{outp.offset} + i] - 128);
    if (scores[i] > scores[best]) best = i;
  }}
  return best;
}}
"""
    main = f"""/* Test driver: int8 windows on stdin ({P}_INPUT_LENGTH bytes each), int8 scores on stdout. */
#include <stdio.h>
#include "{prefix}_model.h"

int main(void) {{
  int8_t window[{P}_INPUT_LENGTH], scores[{P}_NUM_CLASSES];
  while (fread(window, 1, sizeof window, stdin) == sizeof window) {{
    if ({prefix}_classify(window, {P}_INPUT_LENGTH, scores) < 0) return 1;
    fwrite(scores, 1, sizeof scores, stdout);
  }}
  return 0;
}}
"""
    (out / f"{prefix}_model.h").write_text(header)
    (out / f"{prefix}_model.c").write_text(source)
    (out / "main.c").write_text(main)
    return {"arena_bytes": arena, "weight_bytes": int(weight_bytes), "weights_7bit_packed": packed,
            "ops": len(lw.ops), "input_tensor": inp.name,
            "conditioning": None if lw.conditioning is None else
            {"kernel": lw.conditioning["kernel"], "stages": lw.conditioning["stages"], "floor_mv": lw.conditioning["floor"]},
            "input_scale": inp.scale, "input_zero_point": inp.zero - 128,
            "output_scale": outp.scale, "output_zero_point": outp.zero - 128}


def build_and_run(out: Path, sources: list[str], stdin: bytes, *args: str) -> tuple[bytes, float]:
    """Compile generated sources with a test driver (host gcc -O2, strict warnings), run the
    program once on `stdin`: (its stdout, seconds of the run, one process). A build failure is one line."""
    import subprocess
    import time

    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise TinyRhythmError("no C compiler (gcc) found")
    exe = out / "tr_test"
    build = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                            *(str(out / s) for s in sources), "-lm"], capture_output=True, text=True)
    if build.returncode:
        raise TinyRhythmError(f"{out / sources[0]}: does not compile ({(build.stderr.strip().splitlines() or ['?'])[0][:200]})")
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True, check=True)
        return proc.stdout, time.perf_counter() - t0
    finally:
        exe.unlink()


def compile_and_run(out: Path, windows_q: np.ndarray, prefix: str = "tr") -> tuple[np.ndarray, float]:
    """Build the driver (gcc -O2) and run it on int8 windows: (scores, seconds of the run, one process)."""
    stdout, seconds = build_and_run(out, [f"{prefix}_model.c", "main.c"], np.ascontiguousarray(windows_q, np.int8).tobytes())
    return np.frombuffer(stdout, np.int8).reshape(len(windows_q), -1), seconds


def code_bytes(out: Path, prefix: str = "tr", source: str | None = None) -> dict:
    """`size` of the model object (or another generated `source` file) at -Os: host gcc, and
    Cortex-M4 where arm-none-eabi-gcc is installed."""
    import subprocess
    import tempfile

    result = {}
    for key, cc, flags in (("x86_64_gcc_Os", "gcc", []),
                           ("cortex_m4_gcc_Os", "arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                                                      "-mfpu=fpv4-sp-d16"])):
        exe, size = shutil.which(cc), shutil.which(cc.replace("gcc", "size")) if cc != "gcc" else shutil.which("size")
        if not exe or not size:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            obj = Path(tmp) / "m.o"
            subprocess.run([exe, "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-fstack-usage", *flags, "-c",
                            str(out / (source or f"{prefix}_model.c")), "-o", str(obj)], check=True, capture_output=True)
            text, data, bss = (int(v) for v in subprocess.run([size, str(obj)], capture_output=True, text=True,
                                                              check=True).stdout.splitlines()[1].split()[:3])
            stack = stack_depth((Path(tmp) / "m.su").read_text(), prefix)
        result[key] = {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss, **stack}
    return result


def stack_depth(su: str, prefix: str = "tr") -> dict:
    """Worst stack depth in bytes from gcc's -fstack-usage report, the call chains being fixed
    by the generator: an API function, then at most one more API function, then one kernel
    (libm's lrintf, a leaf of a few bytes, not counted)."""
    frames: dict[str, int] = {}
    for line in su.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip().isdigit():
            name = parts[0].rsplit(":", 1)[-1].split(".")[0]
            frames[name] = max(frames.get(name, 0), int(parts[1]))
    kernel = max([v for k, v in frames.items() if not k.startswith(prefix + "_")] or [0])
    api = {k: v for k, v in frames.items() if k.startswith(prefix + "_")}
    classify = api.get(f"{prefix}_classify", 0) + kernel
    deepest = max([classify, api.get(f"{prefix}_quantize", 0)] + [v + kernel for v in api.values()])
    out = {"stack_classify": classify, "stack_max": deepest}
    if f"{prefix}_stream_push" in api:  # the stream calls tr_quantize or tr_classify
        out["stack_stream"] = api[f"{prefix}_stream_push"] + max(classify, api.get(f"{prefix}_quantize", 0) + kernel)
    return out


def _quantize_source(prefix: str, cond: dict | None) -> tuple[str, str, str, str, str]:
    """tr_quantize (with the model's float input conditioning, if any) and the stream's sample type.

    A conditioned model's stream keeps samples in mV (float): the conditioning of each
    window needs the window's own mean and scale, which int8 samples quantized on arrival
    with a fixed scale could not give."""
    P = prefix.upper()
    clamp = """    window[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);"""
    if cond is None:
        fn = f"""int {prefix}_quantize(const float *mv, int length, int8_t *window) {{
  int i;
  if (!mv || !window) return {P}_ERR_NULL;
  if (length != {P}_INPUT_LENGTH) return {P}_ERR_LENGTH;
  for (i = 0; i < length; ++i) {{
    long q = lrintf(mv[i] / {P}_INPUT_SCALE) + {P}_INPUT_ZERO_POINT;
{clamp}
  }}
  return 0;
}}
"""
        stream = f"      return {prefix}_classify(window, {P}_INPUT_LENGTH, scores);"
        return fn, "int8_t", stream, "", "mV"
    h = cond["kernel"] // 2
    # Stage 1 writes y = x - MA(x) into a buffer; a second stage is computed on the fly from
    # y twice (for the scale, then for the output), so no second window-sized buffer is needed.
    if cond["stages"] == 1:
        stage2 = f"""  for (i = 0; i < length; ++i) mad += fabsf(y[i]);
  mad /= (float)length;
  inv = 1.0f / ((mad > {P}_COND_FLOOR_MV ? mad : {P}_COND_FLOOR_MV) * {P}_INPUT_SCALE);
  for (i = 0; i < length; ++i) {{
    long q = lrintf(y[i] * inv) + {P}_INPUT_ZERO_POINT;
{clamp}
  }}"""
    else:
        stage2 = f"""  for (pass = 0; pass < 2; ++pass) {{
    lo = 0; hi = 0; sum = 0.0f;
    for (i = 0; i < length; ++i) {{
      float z;
      while (hi < length && hi <= i + {h}) sum += y[hi++];
      while (lo < i - {h}) sum -= y[lo++];
      z = y[i] - sum / (float)(hi - lo);
      if (pass == 0) {{
        mad += fabsf(z);
      }} else {{
        long q = lrintf(z * inv) + {P}_INPUT_ZERO_POINT;
{clamp}
      }}
    }}
    if (pass == 0) {{
      mad /= (float)length;
      inv = 1.0f / ((mad > {P}_COND_FLOOR_MV ? mad : {P}_COND_FLOOR_MV) * {P}_INPUT_SCALE);
    }}
  }}"""
    fn = f"""/* Input conditioning, as the model's first layers: {cond["stages"]} x (x - centred moving average of
   {P}_COND_KERNEL samples, fewer at the edges), then / max(mean |x|, {P}_COND_FLOOR_MV). */
#define {P}_COND_KERNEL {cond["kernel"]}
#define {P}_COND_FLOOR_MV {_f(cond["floor"])}
int {prefix}_quantize(const float *mv, int length, int8_t *window) {{
  float *y = ARENA_F;  /* the arena is free until tr_classify copies the window in */
  int i, lo, hi, pass;
  float sum = 0.0f, mad = 0.0f, inv = 0.0f;
  if (!mv || !window) return {P}_ERR_NULL;
  if (length != {P}_INPUT_LENGTH) return {P}_ERR_LENGTH;
  lo = 0; hi = 0;
  for (i = 0; i < length; ++i) {{
    /* running sum over [i - h, i + h], clipped to the window */
    while (hi < length && hi <= i + {h}) sum += mv[hi++];
    while (lo < i - {h}) sum -= mv[lo++];
    y[i] = mv[i] - sum / (float)(hi - lo);
  }}
  (void)pass;
{stage2}
  return 0;
}}
"""
    stream = f"""      {{
        static int8_t q[{P}_INPUT_LENGTH];
        {prefix}_quantize(window, {P}_INPUT_LENGTH, q);
        return {prefix}_classify(q, {P}_INPUT_LENGTH, scores);
      }}"""
    doc = ("\n   The model conditions its input first (DC, baseline wander and gain removed per window);"
           "\n   the stream takes samples in mV (float) for that reason.")
    return fn, "float", stream, doc, "conditioned(mV)"
