"""R-peak detection for long recordings, with NeuroKit2's detectors.

Chosen by measurement on the 43 shared MITDB records against their `.atr` beat labels
(150 ms tolerance, ventricular flutter excluded as EC57 does; README, "Holter summary"):

| detector (NeuroKit2 0.3) | sensitivity | positive predictivity | s per 30 min |
|---|---|---|---|
| `neurokit` | 98.75 % | 98.25 % | 0.065 |
| `kalidas2017` (stationary wavelet) | 98.49 % | 99.62 % | 0.052 |
| `rodrigues2021` | 98.75 % | 99.40 % | 0.30 |
| `hamilton2002` | 97.05 % | 96.49 % | 0.29 |
| **`kalidas2017` + `neurokit` search-back (used)** | **99.20 %** | **99.56 %** | 0.096 |

Kalidas' detector rarely calls a T wave a beat but misses some wide ectopic beats;
NeuroKit's finds those but doubles tall T waves. So a NeuroKit beat is added only where
Kalidas' rhythm has a gap longer than 1.5 local RR intervals and the beat lies well
inside it (the search-back of Pan and Tompkins, with a second detector as the threshold).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import median_filter

GAP = 1.5  # a gap of this many local RR intervals is searched for a missed beat
EDGE = 0.3  # ... and a beat found there must lie this many local RR intervals from both ends
TOLERANCE_S = 0.15  # detections this close are the same beat


def detect_beats(x: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the R peaks of one lead (mV; NaN or unreadable stretches set to 0)."""
    x = np.nan_to_num(np.asarray(x, np.float64))
    if len(x) < int(2 * fs) or not np.any(x):
        return np.zeros(0, np.int64)
    with warnings.catch_warnings():  # NeuroKit warns on flat or very short input; empty output says it
        warnings.simplefilter("ignore")
        import neurokit2 as nk

        clean = nk.ecg_clean(x, sampling_rate=fs, method="neurokit")
        k = _peaks(nk, clean, fs, "kalidas2017")
        n = _peaks(nk, clean, fs, "neurokit")
    if len(k) < 3:
        return n
    rr = np.diff(k).astype(np.float64)
    local = median_filter(rr, size=9, mode="nearest")
    pos = np.searchsorted(k, n)
    tol = TOLERANCE_S * fs
    near = (np.abs(k[np.minimum(pos, len(k) - 1)] - n) <= tol) | (np.abs(k[np.maximum(pos - 1, 0)] - n) <= tol)
    inside = (pos > 0) & (pos < len(k))
    p = np.clip(pos, 1, len(k) - 1)
    ref = local[p - 1]
    gap = (k[p] - k[p - 1]) > GAP * ref
    central = ((n - k[p - 1]) > EDGE * ref) & ((k[p] - n) > EDGE * ref)
    add = n[~near & inside & gap & central]
    return np.sort(np.concatenate([k, add]))


def _peaks(nk, clean: np.ndarray, fs: float, method: str) -> np.ndarray:
    try:
        _, info = nk.ecg_peaks(clean, sampling_rate=fs, method=method)
    except (ValueError, IndexError, ZeroDivisionError):  # NeuroKit's detectors on signals with no beats
        return np.zeros(0, np.int64)
    return np.unique(np.asarray(info["ECG_R_Peaks"], np.int64))
