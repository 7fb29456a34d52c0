/* 7-bit two's-complement weights, packed little-endian, 8 in 7 bytes; the few weights
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
