/* per-channel affine (BatchNorm, unfoldable in a pre-activation network), ReLU by the uint8 range */
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
