/* ratios are sx/sy and sz/sy in float32, as ONNX Runtime's QLinearAdd */
typedef struct { float rx, rz; uint16_t x, z, y, n; uint8_t zx, zz, zy; } add_t;
static void add_q(const add_t *p) {
  const uint8_t *x = A + p->x, *z = A + p->z;
  uint8_t *y = A + p->y;
  int i;
  for (i = 0; i < p->n; ++i)
    y[i] = sat_u8(round_f((float)((int)x[i] - p->zx) * p->rx + (float)((int)z[i] - p->zz) * p->rz + (float)p->zy));
}
