static void requant(const uint8_t *x, float sx, int zx, int n, float sy, int zy, uint8_t *y) {
  int i;
  for (i = 0; i < n; ++i) y[i] = sat_u8(zy + round_f((float)((int)x[i] - zx) * sx / sy));
}
