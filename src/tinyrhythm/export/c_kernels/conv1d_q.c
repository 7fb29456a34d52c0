/* conv1d, int8 weights [cout][cin][k], int32 bias, zero padding, per-channel requantisation.
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
