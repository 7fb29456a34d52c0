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
    r = Fraction(fs_out / fs_in).limit_denominator(1000)
    if abs(float(r) - fs_out / fs_in) > 1e-9 * fs_out / fs_in:
        raise TinyRhythmError(f"cannot resample {fs_in} Hz to {fs_out} Hz with a rational ratio of small terms")
    return r


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample a 1-D signal; float32 in, float32 out. Identity when the rates match."""
    r = ratio(fs_in, fs_out)
    if r == 1:
        return np.asarray(signal, dtype=np.float32)
    return resample_poly(signal, r.numerator, r.denominator).astype(np.float32)
