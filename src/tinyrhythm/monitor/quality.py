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


def _runs_of_equal(x: np.ndarray, min_len: int) -> np.ndarray:
    """Mask of samples inside runs of >= min_len identical consecutive values."""
    mask = np.zeros(len(x), bool)
    if len(x) < min_len:
        return mask
    # Such a run holds a whole aligned block of min_len // 2 samples: where no block is
    # constant (nearly always) the per-sample scan below is skipped.
    b = min_len // 2
    blocks = x[: len(x) // b * b].reshape(-1, b)
    if not (blocks.max(1) == blocks.min(1)).any():
        return mask
    change = np.flatnonzero(x[1:] != x[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(x)]])
    long = ends - starts >= min_len
    edges = np.zeros(len(x) + 1, np.int8)  # +1 where a long run starts, -1 where it ends
    edges[starts[long]] += 1  # starts are distinct, ends too; a long run may end where the next begins
    edges[ends[long]] -= 1
    return np.cumsum(edges[:-1], dtype=np.int8) > 0


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
    stuck = _runs_of_equal(y, max(3, int(round(RAIL_S * fs))))
    if stuck.any():
        # The baseline from every 8th readable sample: the 1 mV margin does not need more.
        good = y[::8][~bad[::8]]
        base = float(np.median(good)) if len(good) else 0.0
        bad |= stuck & (np.abs(y - base) > RAIL_MV)
    return bad
