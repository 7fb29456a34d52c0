"""Thirty seconds of beats weighed with a model's window probabilities.

An 8 s window holds five to fifteen beats, too few for RR irregularity to tell AF from
ectopy; a long recording has every beat. For each window, RR features of the beats within
`context_s` seconds of its centre join the model's log-probabilities, and a multinomial
logistic regression fitted on validation windows (`scripts/rr_context.py --write`, stored in
the model card as `rr_context`) gives the class probabilities the monitor smooths. Measured in the
README ("RR context in the monitor"). Plain numpy: the fit needs scikit-learn, applying it not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

FEATURES = ("median_relative_rr_change", "share_rr_changes_over_10pct", "log_mean_rate_bpm", "rr_context_available")
MIN_BEATS = 5  # fewer beats in the context than this: the features are zeros and "available" is 0


def relative_changes(rr: np.ndarray) -> np.ndarray:
    """|RR[i+1] - RR[i]| / RR[i+1]: beat-to-beat irregularity, free of the rate."""
    return np.abs(np.diff(rr)) / rr[1:]


def context_features(beat_s: np.ndarray, centres_s: np.ndarray, half_s: float, block: int = 4096) -> np.ndarray:
    """[windows, FEATURES] of the beats (s, sorted) within half_s of each window's centre: the
    median relative RR change, the share of changes over 10 %, the log mean rate in bpm, and 1;
    all zeros for a context of fewer than MIN_BEATS beats.

    A window's relative changes are one contiguous run of the recording's, so blocks of windows
    are gathered into one padded array: a day's 42,000 windows in a fraction of a second, not
    a Python loop's seconds."""
    beat_s = np.asarray(beat_s, np.float64)
    out = np.zeros((len(centres_s), len(FEATURES)), np.float32)
    if len(beat_s) < MIN_BEATS:
        return out
    d_all = relative_changes(np.diff(beat_s))
    lo = np.searchsorted(beat_s, centres_s - half_s, "left")
    hi = np.searchsorted(beat_s, centres_s + half_s, "right")
    for s in range(0, len(centres_s), block):
        a, b = lo[s : s + block], hi[s : s + block]
        ok = b - a >= MIN_BEATS
        if not ok.any():
            continue
        a, b = a[ok], b[ok]
        n = b - a - 2  # relative changes in each context: d_all[a : b - 2]
        idx = a[:, None] + np.arange(n.max())
        d = np.where(idx < (b - 2)[:, None], d_all[np.minimum(idx, len(d_all) - 1)], np.nan)
        mean_rr = (beat_s[b - 1] - beat_s[a]) / (b - 1 - a)
        out[s : s + block][ok] = np.stack([np.nanmedian(d, 1), np.nansum(d > 0.1, 1) / n, np.log(60 / mean_rr),
                                          np.ones(len(a))], 1)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def model_inputs(probs: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """The regression's inputs: log-probabilities (floored as the HMM floors them) and RR features."""
    return np.hstack([np.log(np.clip(probs, 1e-6, 1.0)), feats]).astype(np.float64)


@dataclass(frozen=True)
class RRContext:
    """coef [classes, classes + FEATURES], intercept and decision offsets [classes] (the offsets
    chosen on validation macro F1, as the prior correction is); context_s: each side of a centre."""

    coef: np.ndarray
    intercept: np.ndarray
    offsets: np.ndarray
    context_s: float = 15.0
    # Offsets for deciding a whole short recording by its windows' mean (`predict`), chosen on
    # validation records; None: the card has none and records are decided by the network alone.
    record_offsets: np.ndarray | None = None

    def probabilities(self, probs: np.ndarray, feats: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        z = model_inputs(probs, feats) @ self.coef.T + self.intercept + (self.offsets if offsets is None else offsets)
        return softmax(z)

    def record_probabilities(self, probs: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """One recording's class probabilities from its windows': the mean of the fused windows
        (no offsets), then the record offsets, as `scripts/rr_context.py` chose them."""
        mean = self.probabilities(probs, feats, np.zeros_like(self.offsets)).mean(0)
        return softmax(np.log(np.clip(mean, 1e-12, 1.0))[None] + self.record_offsets)[0]

    def apply(self, probs: np.ndarray, beat_s: np.ndarray, centres_s: np.ndarray) -> np.ndarray:
        """New class probabilities of windows centred at centres_s (s) from their probabilities and the beats (s)."""
        return self.probabilities(probs, context_features(np.sort(beat_s), centres_s, self.context_s))

    def to_card(self, **provenance) -> dict:
        out = {"features": list(FEATURES), "context_s": self.context_s, "coef": np.round(self.coef, 6).tolist(),
               "intercept": np.round(self.intercept, 6).tolist(), "offsets": np.round(self.offsets, 4).tolist()}
        if self.record_offsets is not None:
            out["record_offsets"] = np.round(self.record_offsets, 4).tolist()
        return {**out, **provenance}

    @classmethod
    def from_card(cls, d, n_classes: int, path: str | Path) -> "RRContext":
        """The card's `rr_context`, every number checked: a damaged card is one line, not a wrong answer."""
        if not isinstance(d, dict):
            raise DataError(path, "card 'rr_context' must be an object")
        if d.get("features") != list(FEATURES):
            raise DataError(path, f"card 'rr_context' features must be {list(FEATURES)}, got {d.get('features')!r}")
        shapes = {"coef": (n_classes, n_classes + len(FEATURES)), "intercept": (n_classes,), "offsets": (n_classes,)}
        if "record_offsets" in d:
            shapes["record_offsets"] = (n_classes,)
        arrays = {}
        for key, shape in shapes.items():
            try:
                a = np.array(d.get(key), np.float64)
            except (TypeError, ValueError):
                a = np.zeros(0)
            if a.shape != shape or not np.all(np.isfinite(a)):
                raise DataError(path, f"card 'rr_context' {key!r} must be finite numbers of shape {shape}")
            arrays[key] = a
        c = d.get("context_s")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or not 2 <= c <= 600:
            raise DataError(path, f"card 'rr_context' context_s must be seconds in 2..600, got {c!r}")
        return cls(context_s=float(c), **arrays)


__all__ = ["FEATURES", "RRContext", "context_features", "model_inputs", "relative_changes", "softmax"]
