/* tinyrhythm: a streaming R-peak detector for the RR context (tr_rr_context.h), C99, no malloc.
   Pan and Tompkins' scheme, causal: band-pass, slope squared, 150 ms moving integral, adaptive
   signal and noise levels, a 200 ms refractory period, the T-wave slope test and a search back
   after 1.66 mean RR. Any sampling rate from 50 to TR_BEATS_MAX_FS Hz, set at run time. */
#ifndef TR_BEATS_H
#define TR_BEATS_H
#include <stdint.h>

#define TR_BEATS_MAX_FS 1000
#define TR_BEATS_RING 256  /* samples of history: the 0.2 s an R peak is looked for in, at MAX_FS */
#define TR_BEATS_ERR_NULL (-1)
#define TR_BEATS_ERR_FS (-2)

typedef struct {
  float fs, b0, b2, a1, a2;           /* band-pass biquad (applied twice) */
  float st[2][4];                     /* its states: x[n-1], x[n-2], y[n-1], y[n-2] */
  float bp[TR_BEATS_RING];            /* band-passed signal: where the R peak is */
  float sq[TR_BEATS_RING];            /* squared slope: the moving integral's terms */
  float sum, prev, prev2;             /* moving integral now, one and two samples ago */
  float spk, npk, learn_max, learn_sum, rr_avg, last_slope;
  float cand_peak, cand_slope;        /* the best peak under the threshold since the last beat */
  uint32_t n, last_beat, cand_r;
  int win, have_beat;
} tr_beats_t;

/* Returns 0, or ERR_NULL / ERR_FS (fs outside 50..MAX_FS). */
int tr_beats_init(tr_beats_t *s, float fs);

/* Push n samples (mV; NaN, infinities and values beyond 10 V are read as 0). Writes the sample indices (since init; a 32-bit count
   that wraps after 49 days at 1 kHz) of the R peaks found, at most max_beats, in time order, and
   returns how many, or ERR_NULL. A beat is reported 0.2-0.4 s after its R peak, or up to 1.66
   mean RR later when a search back finds it. */
int tr_beats_push(tr_beats_t *s, const float *mv, int n, uint32_t *beats, int max_beats);

#endif
