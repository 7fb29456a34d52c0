/* dense layer: int8 weights [cout][cin], int32 bias */
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
