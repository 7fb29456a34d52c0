"""The one-pass stream in C: per hop, only the new columns of every layer.

`tr_stream_push` (export.c) classifies each window alone, so at a hop of a quarter window
every sample passes through the network four times. `tr_onepass.c` keeps, for every
tensor of the int8 trunk, a ring of its most recent columns and computes a layer's next
column as soon as the columns it reads exist: per hop the work is the trunk's cost for
one hop of signal plus one head. Its decisions are those of `tinyrhythm.onepass`
(OnePassClassifier) on the same ONNX int8 model, bit for bit: the same integer input
conditioning (uV, exact moving sums, one double division), the same int8 kernels as
`tr_classify`, zero padding only before the stream's first sample.

The ring sizes, the decision delay and the work per hop are found by running the layers'
readiness rules over a simulated stream at generation time.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError
from .c import DSP_HELPERS, _arr, _f, _kernels
from .c_lower import Lowering
from .c_toolchain import build_and_run

CLAMP_UV = (1 << 17) - 1  # as onepass._Conditioning

COLUMN_KERNELS = r"""/* One output column t of a conv1d. The column's input taps are gathered once, zero point
   subtracted (so taps before the stream's start are plain zeros and no weight sums are
   needed), as int16 pairs in the order __smlad takes them; every output channel then reads
   the same pairs. A conv's input ring repeats its first k-1 columns after its end, so the
   k taps are always contiguous. Integer sums throughout: bit-exact either way. */
static void conv_col(const ring_t *x, int cin, int zx, const int8_t *w, const int32_t *b, const float *mult,
                     int cout, int k, long start, const ring_t *y, long t, int zy) {
  int32_t xp[TR_MAX_TAPS / 2];
  int co, ci, j, n = cin * k;
  for (ci = 0; ci < cin; ++ci) {
    int32_t *d = xp + ci * k / 2;
    if (start >= 0) {
      const uint8_t *src = x->b + ci * x->s + (int)(start % x->r);
#if defined(__ARM_FEATURE_DSP)
      const uint32_t zz = (uint32_t)zx * 0x10001u;
      for (j = 0; j < k; j += 4, d += 2) {
        uint32_t word;
        memcpy(&word, src + j, 4);
        d[0] = (int32_t)__ssub16(__uxtb16(word), zz);
        d[1] = (int32_t)__ssub16(uxtb16_ror8(word), zz);
      }
#else
      for (j = 0; j < k; j += 4, d += 2) {
        d[0] = (int32_t)((uint16_t)(src[j] - zx) | ((uint32_t)(uint16_t)(src[j + 2] - zx) << 16));
        d[1] = (int32_t)((uint16_t)(src[j + 1] - zx) | ((uint32_t)(uint16_t)(src[j + 3] - zx) << 16));
      }
#endif
    } else {  /* the stream's first columns: taps before its start are zero */
      for (j = 0; j < k; j += 4, d += 2) {
        int16_t v[4];
        int q;
        for (q = 0; q < 4; ++q) v[q] = start + j + q < 0 ? 0 : (int16_t)((int)get(x, ci, start + j + q) - zx);
        d[0] = (int32_t)((uint16_t)v[0] | ((uint32_t)(uint16_t)v[2] << 16));
        d[1] = (int32_t)((uint16_t)v[1] | ((uint32_t)(uint16_t)v[3] << 16));
      }
    }
  }
  for (co = 0; co < cout; ++co) {
    const int8_t *wr = w + co * n;
    int32_t acc = b[co];
#if defined(__ARM_FEATURE_DSP)
    for (j = 0; j < n; j += 4) {
      uint32_t ww;
      memcpy(&ww, wr + j, 4);
      acc = __smlad(xp[j / 2], __sxtb16(ww), acc);
      acc = __smlad(xp[j / 2 + 1], sxtb16_ror8(ww), acc);
    }
#else
    for (j = 0; j < n; j += 4) {
      const int32_t a = xp[j / 2], c = xp[j / 2 + 1];
      acc += (int16_t)(a & 0xFFFF) * wr[j] + (int16_t)((uint32_t)a >> 16) * wr[j + 2]
           + (int16_t)(c & 0xFFFF) * wr[j + 1] + (int16_t)((uint32_t)c >> 16) * wr[j + 3];
    }
#endif
    put(y, co, t, sat_u8(zy + round_f((float)acc * mult[co])));
  }
}

static void affine_col(const ring_t *x, int c, float sx, int zx, const float *a, const float *bb, float sy, int zy,
                       const ring_t *y, long t) {
  int ch;
  for (ch = 0; ch < c; ++ch) {
    float v = (float)((int)get(x, ch, t) - zx) * sx;
    v = v * a[ch] + bb[ch];
    put(y, ch, t, sat_u8(zy + round_f(v / sy)));
  }
}

static void add_col(const ring_t *x, float qx, int zx, const ring_t *z, float qz, int zz, int c, int zy, const ring_t *y,
                    long t) {
  int ch;
  for (ch = 0; ch < c; ++ch)
    put(y, ch, t, sat_u8(round_f((float)((int)get(x, ch, t) - zx) * qx + (float)((int)get(z, ch, t) - zz) * qz
                                 + (float)zy)));
}

/* Requantise one column; channels from cin to c are the zero point (channel zero-padding). */
static void requant_col(const ring_t *x, int cin, float sx, int zx, int c, float sy, int zy, const ring_t *y, long t) {
  int ch;
  for (ch = 0; ch < c; ++ch)
    put(y, ch, t, ch < cin ? sat_u8(zy + round_f((float)((int)get(x, ch, t) - zx) * sx / sy)) : (uint8_t)zy);
}

static void maxpool_col(const ring_t *x, int c, int k, long start, const ring_t *y, long t) {
  int ch, j;
  for (ch = 0; ch < c; ++ch) {
    int best = -1;
    for (j = 0; j < k; ++j)
      if (start + j >= 0 && get(x, ch, start + j) > best) best = get(x, ch, start + j);
    put(y, ch, t, (uint8_t)best);
  }
}
"""


def _used_kernels(body: list[str]) -> str:
    """Only the column kernels the model calls (an unused static function fails -Werror builds);
    COLUMN_KERNELS holds one function per blank-line-separated block."""
    out = []
    for block in COLUMN_KERNELS.strip().split("\n\n"):
        name = re.search(r"static void (\w+)\(", block).group(1)
        if any(f"{name}(" in line for line in body):
            out.append(block + "\n")
    return "\n".join(out)


def _plan(lw: Lowering, input_length: int, hop: int) -> dict:
    """Readiness rules per op, ring sizes, decision delay and columns per hop, by simulation."""
    ops = lw.ops
    head_at = next((i for i, op in enumerate(ops) if op.kind == "copy"), None)
    if head_at is None or head_at + 2 != len(ops) or ops[-1].kind != "dense":
        raise TinyRhythmError("one-pass C stream: the model must end in flatten + dense")
    trunk = ops[:head_at]
    feat = lw.tensors[ops[head_at].inputs[0]]
    scale = {lw.input.name: 1}
    for op in trunk:
        s = op.params.get("stride", 1) if op.kind in ("conv", "maxpool") else 1
        scale[op.output] = scale[op.inputs[0]] * s
    stride = scale[feat.name]
    if hop % stride:
        raise TinyRhythmError(f"one-pass C stream: the hop ({hop}) must be a multiple of the trunk's stride ({stride})")
    cols = feat.shape[1]

    def ready(op, n):
        t = n[op.output]
        x = n[op.inputs[0]]
        p = op.params
        if op.kind in ("conv", "maxpool"):  # output t reads input columns t*stride-pad .. +k-1
            return t * p["stride"] - p["pad"] + p["k"] - 1 < x
        if op.kind == "add":
            return t < x and t < n[op.inputs[1]]
        return t < x

    def oldest(op, n):  # the oldest input column the op reads for its next output
        t, p = n[op.output], op.params
        if op.kind in ("conv", "maxpool"):
            return t * p["stride"] - p["pad"]
        return t

    names = [lw.input.name] + [op.output for op in trunk]
    n = {k: 0 for k in names}
    ring = {k: 1 for k in names}
    consumers = {k: [op for op in trunk if k in op.inputs] for k in names}
    decided, first_delay = 0, None
    steps = input_length + 8 * hop
    def hold(k):  # columns tensor k must keep now: from the oldest any consumer still reads
        need = [oldest(op, n) for op in consumers[k]]
        if k == feat.name:
            need.append(decided * hop // stride)
        if need:
            ring[k] = max(ring[k], n[k] - max(0, min(need)))

    for i in range(steps):
        n[lw.input.name] += 1
        hold(lw.input.name)
        for op in trunk:  # topological: a tensor is written before its consumers read it in this sweep
            while ready(op, n):
                n[op.output] += 1
            hold(op.output)
        while n[feat.name] >= decided * hop // stride + cols:
            if first_delay is None:
                first_delay = (i + 1) - input_length
            decided += 1
    per_hop = {op.output: hop // scale[op.output] for op in trunk}
    macs = sum(op.params["cout"] * lw.tensors[op.inputs[0]].shape[0] * op.params["k"] * per_hop[op.output]
               for op in trunk if op.kind == "conv")
    dense = ops[-1]
    head_macs = lw.tensors[dense.inputs[0]].size * dense.params["cout"]
    window_macs = sum(op.params["cout"] * lw.tensors[op.inputs[0]].shape[0] * op.params["k"] * lw.tensors[op.output].shape[1]
                      for op in trunk if op.kind == "conv") + head_macs
    return {"trunk": trunk, "feat": feat, "stride": stride, "cols": cols, "ring": ring, "delay": first_delay,
            "macs_per_decision": macs + head_macs, "window_macs": window_macs}


def generate_onepass(onnx_path: str | Path, out: str | Path, input_length: int, hop: int, prefix: str = "tr") -> dict:
    """Write `{prefix}_onepass.h` and `{prefix}_onepass.c` (self-contained) beside the model files."""
    lw = Lowering(Path(onnx_path))
    lw.run(input_length)
    plan = _plan(lw, input_length, hop)
    cond = lw.conditioning
    convs = [op for op in plan["trunk"] if op.kind == "conv"]
    if any(op.params["k"] % 4 for op in convs):
        raise TinyRhythmError("one-pass C stream: kernel sizes must be multiples of 4")
    max_taps = max(op.params["w"][0].size for op in convs)
    P, out = prefix.upper(), Path(out)
    rings, consts, body = [], [], []
    ring = plan["ring"]
    mirror = {}
    for op in convs:  # a conv's k taps read contiguously: its input repeats its first k-1 columns
        mirror[op.inputs[0]] = max(mirror.get(op.inputs[0], 0), op.params["k"] - 1)
    for name, r in ring.items():
        t = lw.tensors[name]
        i = len(rings)
        m = mirror.get(name, 0)
        rings.append(f"static uint8_t rb{i}[{t.shape[0] * (r + m)}]; /* {name}: {t.shape[0]} x {r} (+{m}) */\n"
                     f"static const ring_t r{i} = {{rb{i}, {r}, {r + m}, {m}}};")
    rid = {name: i for i, name in enumerate(ring)}

    def R(name):
        return f"&r{rid[name]}"

    for i, op in enumerate(plan["trunk"]):
        y = lw.tensors[op.output]
        x = lw.tensors[op.inputs[0]]
        ny, nx = f"n[{rid[op.output]}]", f"n[{rid[x.name]}]"
        p = op.params
        if op.kind == "conv":
            mult = (np.float32(x.scale) * p["ws"].astype(np.float32)) / np.float32(y.scale)
            consts += [_arr(f"w{i}", "int8_t", p["w"]), _arr(f"b{i}", "int32_t", p["b"]), _arr(f"m{i}", "float", mult)]
            cond_c = f"{ny} * {p['stride']} - {p['pad']} + {p['k'] - 1} < {nx}"
            call = (f"conv_col({R(x.name)}, {x.shape[0]}, {x.zero}, w{i}, b{i}, m{i}, {p['cout']}, "
                    f"{p['k']}, {ny} * {p['stride']} - {p['pad']}, {R(op.output)}, {ny}, {y.zero})")
        elif op.kind == "affine":
            consts += [_arr(f"a{i}", "float", p["a"]), _arr(f"c{i}", "float", p["b"])]
            cond_c = f"{ny} < {nx}"
            call = (f"affine_col({R(x.name)}, {x.shape[0]}, {_f(x.scale)}, {x.zero}, a{i}, c{i}, "
                    f"{_f(y.scale)}, {y.zero}, {R(op.output)}, {ny})")
        elif op.kind == "add":
            z = lw.tensors[op.inputs[1]]
            qx, qz = np.float32(x.scale) / np.float32(y.scale), np.float32(z.scale) / np.float32(y.scale)
            cond_c = f"{ny} < {nx} && {ny} < n[{rid[z.name]}]"
            call = (f"add_col({R(x.name)}, {_f(qx)}, {x.zero}, {R(z.name)}, {_f(qz)}, {z.zero}, {y.shape[0]}, {y.zero}, "
                    f"{R(op.output)}, {ny})")
        elif op.kind == "maxpool":
            cond_c = f"{ny} * {p['stride']} - {p['pad']} + {p['k'] - 1} < {nx}"
            call = (f"maxpool_col({R(x.name)}, {x.shape[0]}, {p['k']}, {ny} * {p['stride']} - {p['pad']}, "
                    f"{R(op.output)}, {ny})")
        elif op.kind in ("padc", "copy"):
            cond_c = f"{ny} < {nx}"
            call = (f"requant_col({R(x.name)}, {x.shape[0]}, {_f(x.scale)}, {x.zero}, {y.shape[0]}, "
                    f"{_f(y.scale)}, {y.zero}, {R(op.output)}, {ny})")
        else:
            raise TinyRhythmError(f"one-pass C stream: unexpected {op.kind} in the trunk")
        body.append(f"  while ({cond_c}) {{ {call}; {ny}++; }}")
    copy, dense = lw.ops[-2], lw.ops[-1]
    feat, flat, logits = plan["feat"], lw.tensors[copy.output], lw.tensors[dense.output]
    d = dense.params
    dmult = (np.float32(flat.scale) * d["ws"].astype(np.float32)) / np.float32(logits.scale)
    consts += [_arr("wd", "int8_t", d["w"]), _arr("bd", "int32_t", d["b"]), _arr("md", "float", dmult)]
    inp = lw.input
    if cond is not None:
        w, h, stages = cond["kernel"], cond["kernel"] // 2, cond["stages"]
        half = input_length // 2
        floor_units = int(round(cond["floor"] * 1000)) * w ** stages * input_length
        cond_state = f"""#define COND_W {w}
#define COND_H {h}
#define SCALE_N {input_length}
static int32_t cx[{stages}][COND_W];   /* the last W values entering each high-pass stage */
static int64_t cs[{stages}];           /* their sum */
static long cn[{stages}];              /* values that entered each stage */
static int32_t cy[SCALE_N];            /* the last SCALE_N high-passed values */
static int64_t ca;                     /* sum of their absolute values */
static long cyn;
"""
        stage_code = f"""  /* stage s turns its input stream into W*v[i] - (sum of the W values centred on i), i = count - H - 1;
     before the first value, the first value repeats (as onepass._Conditioning's edge padding). */
  for (s = 0; s < {stages}; ++s) {{
    if (cn[s] == 0) {{ for (j = 0; j < COND_W; ++j) cx[s][j] = v; cs[s] = (int64_t)v * COND_W; }}
    cs[s] += (int64_t)v - cx[s][cn[s] % COND_W];
    cx[s][cn[s] % COND_W] = v;
    cn[s]++;
    if (cn[s] <= COND_H) return;
    v = (int32_t)((int64_t)COND_W * cx[s][(cn[s] - 1 - COND_H) % COND_W] - cs[s]);
  }}
  if (cyn == 0) {{ for (j = 0; j < SCALE_N; ++j) cy[j] = v; ca = (int64_t)SCALE_N * (v < 0 ? -v : v); }}
  {{
    int32_t old = cy[cyn % SCALE_N];
    ca += (int64_t)(v < 0 ? -v : v) - (old < 0 ? -old : old);
    cy[cyn % SCALE_N] = v;
    cyn++;
  }}
  if (cyn <= {half}) return;
  {{
    int64_t den = ca > {floor_units}LL ? ca : {floor_units}LL;
    double num = (double)((int64_t)cy[(cyn - 1 - {half}) % SCALE_N] * SCALE_N);
    float c = (float)(num / (double)den);
    q = sat_u8(round_f(c / {_f(inp.scale)}) + {inp.zero});
  }}"""
        prep = f"""  long uv = lrint((double)mv * 1000.0);
  int32_t v = (int32_t)(uv < -{CLAMP_UV} ? -{CLAMP_UV} : uv > {CLAMP_UV} ? {CLAMP_UV} : uv);
  int s, j;
{stage_code}"""
        reset = "  memset(cn, 0, sizeof cn); cyn = 0;"
    else:
        cond_state = ""
        prep = f"  q = sat_u8(round_f(mv / {_f(inp.scale)}) + {inp.zero});"
        reset = ""
    zero_n = ", ".join("0" for _ in ring)
    # Samples after a window's end until its decision: the trunk's reach, plus the conditioning's.
    delay = plan["delay"] + (0 if cond is None else cond["stages"] * (cond["kernel"] // 2) + input_length // 2)
    header = f"""/* Generated by tinyrhythm: the one-pass int8 stream, per hop only the new columns of every layer. */
#ifndef {P}_ONEPASS_H
#define {P}_ONEPASS_H
#include <stdint.h>

#define {P}_ONEPASS_HOP {hop}              /* samples between decisions */
#define {P}_ONEPASS_LENGTH {input_length}  /* a decision covers this many samples */
#define {P}_ONEPASS_DELAY {delay}  /* samples after a window's end until its decision */
#define {P}_ONEPASS_CLASSES {logits.size}
#define {P}_ONEPASS_NO_DECISION (-3)
#define {P}_ONEPASS_ERR_NULL (-1)

/* Start a new stream (zero padding before its first sample). Not reentrant: one stream. */
void {prefix}_onepass_init(void);
/* Consume samples (mV) up to the one that completes a decision (*consumed says how many);
   returns the class and fills scores (int8, as tr_classify's) and *start (the window's first
   sample) when one completed, NO_DECISION when all n were consumed without one, or ERR_NULL.
   Decisions equal tinyrhythm.onepass.OnePassClassifier's on the same int8 model. */
int {prefix}_onepass_push(const float *mv, int n, int *consumed, long *start, int8_t *scores);

#endif
"""
    source = f"""/* Generated by tinyrhythm from an ONNX Runtime int8 (QDQ) model. Do not edit. */
#include "{prefix}_onepass.h"
#include <math.h>
#include <string.h>

#define TR_MAX_TAPS {max_taps}
{_kernels(["  dense_q("])}{DSP_HELPERS}
/* A tensor's ring of recent columns: column t of channel ch at b[ch * s + t % r]; a conv's
   input keeps its first m = k-1 columns repeated at r..r+m-1 (s = r + m). */
typedef struct {{ uint8_t *b; uint16_t r, s, m; }} ring_t;
static inline uint8_t get(const ring_t *x, int ch, long t) {{ return x->b[ch * x->s + (int)(t % x->r)]; }}
static inline void put(const ring_t *y, int ch, long t, uint8_t v) {{
  int i = (int)(t % y->r);
  y->b[ch * y->s + i] = v;
  if (i < y->m) y->b[ch * y->s + y->r + i] = v;
}}
{_used_kernels(body)}
{"".join(consts)}
{chr(10).join(rings)}
static long n[{len(ring)}];   /* columns computed so far, per tensor */
static long decided;
static uint8_t flat[{flat.size}], out[{logits.size}];
{cond_state}
void {prefix}_onepass_init(void) {{
  static const long zero[{len(ring)}] = {{{zero_n}}};
  memcpy(n, zero, sizeof n);
  decided = 0;
{reset}
}}

/* The layers' new columns, each as soon as the columns it reads exist. */
static void advance(void) {{
{chr(10).join(body)}
}}

/* One sample in: the conditioned, quantised input column it completes (if any), then the layers. */
static void take(float mv) {{
  uint8_t q;
{prep}
  put(&r{rid[inp.name]}, 0, n[{rid[inp.name]}], q);
  n[{rid[inp.name]}]++;
  advance();
}}

int {prefix}_onepass_push(const float *mv, int n_in, int *consumed, long *start, int8_t *scores) {{
  int i, c, j, best;
  if (!mv || !consumed || !start || !scores) return {P}_ONEPASS_ERR_NULL;
  for (i = 0; i < n_in; ++i) {{
    take(mv[i]);
    if (n[{rid[feat.name]}] >= decided * {hop // plan["stride"]} + {plan["cols"]}) {{
      long c0 = decided * {hop // plan["stride"]};
      for (c = 0; c < {feat.shape[0]}; ++c)
        for (j = 0; j < {plan["cols"]}; ++j) {{
          long t = c0 + j;
          flat[c * {plan["cols"]} + j] = sat_u8({flat.zero} + round_f((float)((int)get(&r{rid[feat.name]}, c, t) - {feat.zero}) * {_f(feat.scale)} / {_f(flat.scale)}));
        }}
      dense_q(flat, {flat.size}, {flat.zero}, wd, bd, md, {d["cout"]}, out, {logits.zero});
      best = 0;
      for (c = 0; c < {logits.size}; ++c) {{
        scores[c] = (int8_t)((int)out[c] - 128);
        if (scores[c] > scores[best]) best = c;
      }}
      *start = decided * {hop};
      decided++;
      *consumed = i + 1;
      return best;
    }}
  }}
  *consumed = n_in;
  return {P}_ONEPASS_NO_DECISION;
}}
"""
    (out / f"{prefix}_onepass.h").write_text(header)
    (out / f"{prefix}_onepass.c").write_text(source)
    state = sum(lw.tensors[k].shape[0] * (r + mirror.get(k, 0)) for k, r in ring.items()) + flat.size + logits.size
    if cond is not None:
        state += 4 * (cond["stages"] * cond["kernel"] + input_length) + 8 * (cond["stages"] + 1)
    return {"hop": hop, "delay_samples": delay, "macs_per_decision": int(plan["macs_per_decision"]),
            "window_macs": int(plan["window_macs"]), "state_bytes": int(state), "rings": len(ring),
            "stride": plan["stride"], "output_scale": logits.scale, "output_zero_point": logits.zero - 128}


DRIVER = r"""/* Test driver: float32 samples (mV) on stdin, pushed in pseudo-random chunks of 1..700
   samples (seed argv[1]); one line per decision on stdout: start class score... */
#include <stdio.h>
#include <stdlib.h>
#include "tr_onepass.h"

int main(int argc, char **argv) {
  static float x[1 << 22];
  int8_t sc[TR_ONEPASS_CLASSES];
  int n = (int)fread(x, sizeof(float), 1 << 22, stdin), i = 0, j, c, used;
  unsigned seed = argc > 1 ? (unsigned)atoi(argv[1]) : 1u;
  long st;
  tr_onepass_init();
  while (i < n) {
    int chunk = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 700;
    if (chunk > n - i) chunk = n - i;
    c = tr_onepass_push(x + i, chunk, &used, &st, sc);
    i += used;
    if (c >= 0) {
      printf("%ld %d", st, c);
      for (j = 0; j < TR_ONEPASS_CLASSES; ++j) printf(" %d", sc[j]);
      printf("\n");
    } else if (c != TR_ONEPASS_NO_DECISION) return 1;
  }
  return 0;
}
"""


def run_onepass(out: Path, signal: np.ndarray, seed: int = 7) -> tuple[np.ndarray, np.ndarray, float]:
    """Build the one-pass driver (gcc -O2) and push a signal through it: (starts, int8 scores,
    seconds of the run)."""
    (out / "onepass_main.c").write_text(DRIVER)
    stdout, seconds = build_and_run(out, ["tr_onepass.c", "onepass_main.c"],
                                    np.ascontiguousarray(signal, np.float32).tobytes(), str(seed))
    rows = np.array([[int(v) for v in line.split()] for line in stdout.decode().splitlines()], np.int64)
    return rows[:, 0], rows[:, 2:], seconds


def scores_from_logits(logits: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """ONNX Runtime's dequantized logits back to the int8 scores the C code writes."""
    return np.rint(np.asarray(logits, np.float64) / scale).astype(np.int64) + zero


