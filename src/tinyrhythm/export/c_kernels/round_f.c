/* Round to nearest, ties to even: lrintf in the default rounding mode. With an FPU, one VCVTR
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
