"""The Holter summary a clinician reads first: heart rate, rate in AF, pauses, hourly AF burden.

From a monitor result's R peaks and rhythm episodes. Beats inside noise or unreadable
stretches are left out, and so is every RR interval that spans one: a pause or a rate
measured across a lead-off is an artefact, not a finding. Times are seconds from the
start of the recording; `*_clock` fields give clock times where the file has a start time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from ..datasets.record import NOISE
from .episodes import AF_LABELS, UNREADABLE

PAUSE_S = 2.0  # RR longer than this is a pause (the common Holter default)
MINUTE_MIN_S = 20.0  # a minute's average needs this many seconds of valid RR intervals
RR_RANGE_S = (0.2, 6.0)  # outside: a detection error, not a heart beat (300 bpm .. 10 bpm)


def clock(start_time: str | None, t: float) -> str | None:
    """Clock time `t` seconds after `start_time` (ISO date-time, or a bare time of day)."""
    if start_time is None:
        return None
    if "T" in start_time:
        return (dt.datetime.fromisoformat(start_time) + dt.timedelta(seconds=float(t))).isoformat(timespec="seconds")
    h, m, s = (int(v) for v in start_time.split(":"))
    total = int(h * 3600 + m * 60 + s + t) % 86400
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def rr_intervals(result) -> dict[str, np.ndarray]:
    """Per RR interval: `time_s` (its closing beat), `rr_s`, `af` (closing beat inside an AF or
    flutter episode), `valid` (both beats readable, not noise, nothing excluded between)."""
    fs = result.fs
    beats = np.asarray(result.beats if result.beats is not None else [], np.int64)
    t = beats / fs
    starts = np.array([e.start_s for e in result.episodes])
    labels = np.array([e.label for e in result.episodes])
    if len(t) < 2 or not len(starts):
        empty = np.zeros(0)
        return {"time_s": empty, "rr_s": empty, "af": empty.astype(bool), "valid": empty.astype(bool)}
    ep = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    lab = labels[ep]
    excluded = np.isin(lab, [NOISE, UNREADABLE])
    # Any excluded episode between two beats breaks the interval: count them cumulatively.
    bad_ep = np.concatenate([[0], np.cumsum(np.isin(labels, [NOISE, UNREADABLE]))])
    rr = np.diff(t)
    spans_bad = bad_ep[ep[1:]] - bad_ep[ep[:-1] + 1] > 0
    valid = ~excluded[1:] & ~excluded[:-1] & ~spans_bad & (rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1])
    return {"time_s": t[1:], "rr_s": rr, "af": np.isin(lab[1:], AF_LABELS), "valid": valid}


def _minute_rates(time_s: np.ndarray, rr: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(minute start s, mean heart rate in bpm) for minutes with enough valid RR time."""
    minute = (time_s // 60).astype(np.int64)
    n = int(np.ceil(duration_s / 60)) or 1
    covered = np.bincount(minute, weights=rr, minlength=n)
    beats = np.bincount(minute, minlength=n)
    ok = covered >= MINUTE_MIN_S
    return np.flatnonzero(ok) * 60.0, 60.0 * beats[ok] / covered[ok]


def holter_summary(result, rr: dict[str, np.ndarray] | None = None) -> dict:
    """The summary keys of `monitor --json`; `rr`: the result's rr_intervals when already computed."""
    r = rr if rr is not None else rr_intervals(result)
    v = r["valid"]
    start = result.start_time
    out: dict = {"beats": int(len(result.beats)) if result.beats is not None else None}
    m_t, m_bpm = _minute_rates(r["time_s"][v], r["rr_s"][v], result.duration_s)
    if len(m_bpm):
        lo, hi = int(np.argmin(m_bpm)), int(np.argmax(m_bpm))
        out["heart_rate"] = {
            "min_bpm": round(float(m_bpm[lo]), 1), "mean_bpm": round(float(m_bpm.mean()), 1),
            "max_bpm": round(float(m_bpm[hi]), 1), "min_time_s": float(m_t[lo]), "max_time_s": float(m_t[hi]),
            "min_clock": clock(start, m_t[lo]), "max_clock": clock(start, m_t[hi]), "minutes": int(len(m_bpm)),
        }
    else:
        out["heart_rate"] = None
    af = v & r["af"]
    a_t, a_bpm = _minute_rates(r["time_s"][af], r["rr_s"][af], result.duration_s)
    out["af_ventricular_rate"] = ({"mean_bpm": round(60.0 / float(r["rr_s"][af].mean()), 1),
                                   "max_bpm": round(float(a_bpm.max()), 1) if len(a_bpm) else None}
                                  if af.any() else None)
    out["longest_af_episode_s"] = round(longest_af_episode(result.episodes), 3)
    out["hourly"] = _hourly(result, r)
    long_rr = v & (r["rr_s"] > PAUSE_S)
    if long_rr.any():
        i = int(np.flatnonzero(long_rr)[np.argmax(r["rr_s"][long_rr])])
        at = float(r["time_s"][i] - r["rr_s"][i])  # the pause starts at the beat before it
        out["pauses"] = {"threshold_s": PAUSE_S, "count": int(long_rr.sum()), "longest_s": round(float(r["rr_s"][i]), 3),
                         "longest_time_s": round(at, 3), "longest_clock": clock(start, at)}
    else:
        out["pauses"] = {"threshold_s": PAUSE_S, "count": 0, "longest_s": None, "longest_time_s": None,
                         "longest_clock": None}
    return out


def longest_af_episode(episodes) -> float:
    """Longest run of touching AF and flutter episodes (AF that turns into flutter is one episode)."""
    best, cur, end = 0.0, 0.0, None
    for e in episodes:
        if e.label in AF_LABELS:
            cur = cur + e.duration_s if end is not None and abs(e.start_s - end) < 1e-6 else e.duration_s
            end = e.end_s
            best = max(best, cur)
        else:
            end, cur = None, 0.0
    return best


def _hourly(result, r: dict) -> list[dict]:
    hours = int(np.ceil(result.duration_s / 3600)) or 1
    rows = []
    for h in range(hours):
        lo, hi = h * 3600.0, min((h + 1) * 3600.0, result.duration_s)
        analysed = af = 0.0
        for e in result.episodes:
            overlap = max(0.0, min(e.end_s, hi) - max(e.start_s, lo))
            if overlap and e.label not in (NOISE, UNREADABLE):
                analysed += overlap
                af += overlap if e.label in AF_LABELS else 0.0
        sel = r["valid"] & (r["time_s"] >= lo) & (r["time_s"] < hi)
        rows.append({
            "hour": h, "start_s": lo, "start_clock": clock(result.start_time, lo), "analysed_s": round(analysed, 1),
            "af_burden": round(af / analysed, 4) if analysed > 0 else None,
            "mean_bpm": round(60.0 * int(sel.sum()) / float(r["rr_s"][sel].sum()), 1) if sel.sum() >= 10 else None,
        })
    return rows
