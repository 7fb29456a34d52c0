#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
/* bytes 1 and 3 to two halfwords (UXTB16/SXTB16 with their own rotation: one instruction, gcc emits two) */
static inline uint32_t uxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("uxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
#endif
