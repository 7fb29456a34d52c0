"""Stretches no rhythm can be read from: gaps (NaN), lead-off (flat) and saturation.

Each check works on the signal at its own rate and returns a per-sample mask, so a
monitor can label those stretches UNREADABLE instead of feeding them to a model.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

# A lead that moves less than this over FLAT_S seconds is off or disconnected: even a
# 40 bpm rhythm puts a QRS (~1 mV) into every 2 s.
FLAT_MV, FLAT_S = 0.02, 2.0
# Saturation: the signal stuck at one value for this long, far from the baseline.
RAIL_S, RAIL_MV = 0.08, 1.0


def _stuck_far(y: np.ndarray, bad: np.ndarray, min_len: int) -> np.ndarray | None:
    """Samples in runs of >= min_len identical consecutive values more than RAIL_MV from the
    baseline (None: none). A run's samples are all far or all near (one value), so only the
    far samples (R peaks, mostly: a small share) are scanned for runs."""
    good = y[::8][~bad[::8]]  # the baseline from every 8th readable sample: the 1 mV margin needs no more
    base = float(np.median(good)) if len(good) else 0.0
    idx = np.flatnonzero(np.abs(y - base) > RAIL_MV)
    if len(idx) < min_len:
        return None
    v = y[idx]
    brk = np.flatnonzero((np.diff(idx) != 1) | (v[1:] != v[:-1])) + 1
    starts, ends = np.concatenate([[0], brk]), np.concatenate([brk, [len(idx)]])
    long = ends - starts >= min_len
    if not long.any():
        return None
    mask = np.zeros(len(y), bool)
    for a, e in zip(idx[starts[long]], idx[ends[long] - 1] + 1):  # few: each is a saturated stretch
        mask[a:e] = True
    return mask


def unreadable_mask(x: np.ndarray, fs: float) -> np.ndarray:
    """True where the sample is missing, lead-off or saturated."""
    bad = ~np.isfinite(x)
    y = np.where(bad, 0.0, x)
    # Flat: ranges over quarter-second blocks, then over FLAT_S of consecutive blocks; far
    # cheaper than a sliding range per sample and as sharp as a quarter second needs to be.
    b = max(1, int(round(fs / 4)))
    k = max(1, int(round(FLAT_S * fs / b)))
    nb = -(-len(y) // b)
    blocks = np.pad(y, (0, nb * b - len(y)), mode="edge").reshape(nb, b)
    if nb >= k:
        rng = maximum_filter1d(blocks.max(1), k) - minimum_filter1d(blocks.min(1), k)
        # A flat span centred on block i makes all its k blocks flat, hence the dilation.
        flat = maximum_filter1d((rng < FLAT_MV).astype(np.uint8), k).astype(bool)
        bad |= np.repeat(flat, b)[: len(y)]
    stuck = _stuck_far(y, bad, max(3, int(round(RAIL_S * fs))))
    if stuck is not None:
        bad |= stuck
    return bad
