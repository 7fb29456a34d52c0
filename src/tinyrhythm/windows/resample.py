"""Sampling-rate conversion with scipy's polyphase resampler."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from ..errors import TinyRhythmError


def ratio(fs_in: float, fs_out: float) -> Fraction:
    """fs_out / fs_in as a small fraction (up/down of resample_poly)."""
    if fs_in <= 0 or fs_out <= 0:
        raise TinyRhythmError(f"sampling rates must be positive, got {fs_in} -> {fs_out}")
    want = fs_out / fs_in
    r = Fraction(want).limit_denominator(1000)
    if abs(float(r) - want) > 1e-9 * want:
        # Any real rate (299.99 Hz, a clock measured at 257.3 Hz): a finer fraction, within
        # 1 ppm (0.09 s a day); the polyphase filter grows with its terms but stays cheap.
        r = Fraction(want).limit_denominator(100_000)
        if abs(float(r) - want) > 1e-6 * want:
            raise TinyRhythmError(f"cannot resample {fs_in} Hz to {fs_out} Hz within 1 ppm")
    return r


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample a 1-D signal; float32 in, float32 out. Identity when the rates match."""
    r = ratio(fs_in, fs_out)
    if r == 1:
        return np.asarray(signal, dtype=np.float32)
    return resample_poly(signal, r.numerator, r.denominator).astype(np.float32)
