static void maxpool_q(const uint8_t *x, int c, int lin, int k, int stride, int pad, int lout, uint8_t *y) {
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
