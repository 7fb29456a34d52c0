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
import re
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError
from .c_lower import Lowering
from .c_toolchain import build_and_run, code_bytes, compile_and_run, stack_depth  # noqa: F401

def _f(v) -> str:
    """A float32 constant spelled exactly (9 significant digits round-trip)."""
    return f"{float(np.float32(v)):.9g}f"


def _arr(name: str, ctype: str, values, per_line: int = 16) -> str:
    vals = [str(int(v)) if ctype != "float" else f"{float(v):.9g}f" for v in np.asarray(values).ravel()]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  " + ",\n  ".join(lines) + "\n};\n"


# The C kernels are template files beside this module (c_kernels/*.c): placeholders such as
# WEIGHT_T and FILTER_LOAD(...) are filled per weight storage (STORAGE) when a model is emitted.
KERNEL_DIR = Path(__file__).parent / "c_kernels"


def _kernel_text(name: str) -> str:
    return (KERNEL_DIR / f"{name}.c").read_text()


# C shared by tr_model.c and tr_onepass.c (export.c_onepass).
ROUND_F = _kernel_text("round_f")
DSP_HELPERS = _kernel_text("dsp_helpers")
UNPACK7 = _kernel_text("unpack7")
KERNELS = {name: _kernel_text(name) + (ROUND_F if name == "sat_u8" else "")
           for name in ("sat_u8", "conv1d_q", "dense_q", "affine_q", "add_q", "requant", "maxpool_q")}

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
