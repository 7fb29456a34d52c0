/* tinyrhythm: streaming R-peak detector (see tr_beats.h). Measured against the MITDB reference
   beats by scripts/beat_detection.py --methods c. */
#include "tr_beats.h"
#include <math.h>
#include <string.h>

int tr_beats_init(tr_beats_t *s, float fs) {
  /* RBJ band-pass centred at 8.7 Hz with Q 0.87 (5-15 Hz, where the QRS has its energy), applied
     twice for a steeper skirt; coefficients from fs here, so one build serves any rate. */
  float w0, alpha, a0;
  if (!s) return TR_BEATS_ERR_NULL;
  if (!(fs >= 50.0f && fs <= TR_BEATS_MAX_FS)) return TR_BEATS_ERR_FS;
  memset(s, 0, sizeof *s);
  s->fs = fs;
  w0 = 2.0f * 3.14159265f * 8.66f / fs;
  alpha = sinf(w0) / (2.0f * 0.866f);
  a0 = 1.0f + alpha;
  s->b0 = alpha / a0;
  s->b2 = -alpha / a0;
  s->a1 = -2.0f * cosf(w0) / a0;
  s->a2 = (1.0f - alpha) / a0;
  s->win = (int)(0.15f * fs + 0.5f);
  s->rr_avg = fs;  /* 60 bpm until beats say otherwise */
  return 0;
}

static float biquad(const tr_beats_t *s, float *st, float x) {
  float y = s->b0 * x + s->b2 * st[1] - s->a1 * st[2] - s->a2 * st[3];
  st[1] = st[0];
  st[0] = x;
  st[3] = st[2];
  st[2] = y;
  return y;
}

/* The R peak of an integral peak at `at`: the largest |band-passed| sample in the 0.2 s before
   it; *slope: the steepest squared slope there, for the T-wave test. */
static uint32_t r_peak(const tr_beats_t *s, uint32_t at, float *slope) {
  uint32_t best = at, k, reach = (uint32_t)s->win + (uint32_t)(0.05f * s->fs);
  float m = -1.0f, sl = 0.0f;
  for (k = 0; k < reach && k <= at; ++k) {
    float v = fabsf(s->bp[(at - k) % TR_BEATS_RING]), q = s->sq[(at - k) % TR_BEATS_RING];
    if (v > m) {
      m = v;
      best = at - k;
    }
    if (q > sl) sl = q;
  }
  *slope = sl;
  return best;
}

static void accept(tr_beats_t *s, uint32_t r, float slope) {
  if (s->have_beat) s->rr_avg = 0.875f * s->rr_avg + 0.125f * (float)(r - s->last_beat);
  s->last_beat = r;
  s->last_slope = slope;
  s->have_beat = 1;
  s->cand_peak = 0.0f;
}

int tr_beats_push(tr_beats_t *s, const float *mv, int n, uint32_t *beats, int max_beats) {
  int i, found = 0;
  uint32_t refractory, learn;
  if (!s || !mv || !beats || !(s->fs > 0.0f)) return TR_BEATS_ERR_NULL;
  refractory = (uint32_t)(0.2f * s->fs);
  learn = (uint32_t)(2.0f * s->fs);
  for (i = 0; i < n; ++i) {
    float x = fabsf(mv[i]) < 1e4f ? mv[i] : 0.0f;  /* NaN, infinities and beyond 10 V: 0 */
    float y = biquad(s, s->st[1], biquad(s, s->st[0], x));
    float d = y - s->bp[(s->n + TR_BEATS_RING - 2) % TR_BEATS_RING];
    float integral;
    s->bp[s->n % TR_BEATS_RING] = y;
    s->sum += d * d - (s->n >= (uint32_t)s->win ? s->sq[(s->n - (uint32_t)s->win) % TR_BEATS_RING] : 0.0f);
    s->sq[s->n % TR_BEATS_RING] = d * d;
    integral = s->sum > 0.0f ? s->sum : 0.0f;  /* the running sum's rounding may dip below 0 */
    if (s->n < learn) {  /* two seconds to learn the levels: a third of the largest peak, half the mean */
      if (integral > s->learn_max) s->learn_max = integral;
      s->learn_sum += integral;
      if (s->n + 1 == learn) {
        s->spk = s->learn_max / 3.0f;
        s->npk = 0.5f * s->learn_sum / (float)learn;
      }
    } else if (s->prev > s->prev2 && s->prev >= integral) {  /* the integral peaked one sample ago */
      float slope, peak = s->prev, thr = s->npk + 0.25f * (s->spk - s->npk);
      uint32_t r = r_peak(s, s->n - 1, &slope);
      int after = !s->have_beat || (int32_t)(r - s->last_beat) > (int32_t)refractory;
      /* within 360 ms of a beat, under half its slope (a quarter, squared) is its T wave */
      int t_wave = s->have_beat && (int32_t)(r - s->last_beat) < (int32_t)(0.36f * s->fs) && slope < 0.25f * s->last_slope;
      if (peak > thr && after && !t_wave) {
        s->spk = 0.125f * peak + 0.875f * s->spk;
        if (found < max_beats) beats[found++] = r;
        accept(s, r, slope);
      } else {
        s->npk = 0.125f * peak + 0.875f * s->npk;
        if (after && !t_wave && peak > s->cand_peak) {
          s->cand_peak = peak;
          s->cand_r = r;
          s->cand_slope = slope;
        }
      }
    }
    /* no beat for 1.66 mean RR: the best peak over half the threshold since the last beat was one */
    if (s->have_beat && s->cand_peak > 0.0f && (float)(s->n - s->last_beat) > 1.66f * s->rr_avg) {
      if (s->cand_peak > 0.5f * (s->npk + 0.25f * (s->spk - s->npk))) {
        s->spk = 0.25f * s->cand_peak + 0.75f * s->spk;
        if (found < max_beats) beats[found++] = s->cand_r;
        accept(s, s->cand_r, s->cand_slope);
      }
      s->cand_peak = 0.0f;
    }
    s->prev2 = s->prev;
    s->prev = integral;
    s->n++;
  }
  return found;
}
