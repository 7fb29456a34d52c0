"""From a sequence of window decisions to rhythm episodes and AF burden.

Each window decides for the `hop` seconds around its centre (a *segment*). Smoothing
acts on the class probabilities of consecutive windows; episodes are runs of one label
over segments, then runs shorter than `min_duration_s` are absorbed by their neighbours
(the clinical convention counts AF episodes of 30 s or more).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..datasets.record import AFIB, AFL, NOISE, NSR, OTHER
from ..errors import TinyRhythmError
from ..tasks import get_task

UNREADABLE = "UNREADABLE"
AF_LABELS = (AFIB, AFL)
SMOOTHING = ("none", "mean", "hmm")


@dataclass
class Episode:
    label: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def class_rhythms(task: str, classes: list[str]) -> list[str]:
    """The rhythm label each model class stands for (AFIB where a class holds AF)."""
    label_map = get_task(task).label_map
    out = []
    for c in classes:
        sources = [r for r, cls in label_map.items() if cls == c]
        # A class that pools sinus rhythm with other non-AF rhythms (rhythm3's "normal") is
        # reported as N: what the clinician reads is "not AF".
        out.append(AFIB if AFIB in sources else sources[0] if len(sources) == 1 else NSR if NSR in sources else OTHER)
    return out


def smooth(probs: np.ndarray, method: str = "hmm", width: int = 5, stay: float = 0.99) -> np.ndarray:
    """Class indices per window after smoothing the [n, classes] probabilities.

    mean: centred moving average over `width` windows, then argmax.
    hmm: Viterbi path of a hidden Markov chain that keeps its class with probability
    `stay` per window, emissions the model's posteriors (its classes were trained
    balanced, so posterior / prior is proportional to the posterior).
    """
    if method not in SMOOTHING:
        raise TinyRhythmError(f"unknown smoothing {method!r} (expected {', '.join(SMOOTHING)})")
    if len(probs) == 0:
        return np.zeros(0, np.int64)
    if method == "none" or len(probs) == 1:
        return probs.argmax(1)
    if method == "mean":
        if width < 1:
            raise TinyRhythmError(f"smoothing width must be >= 1, got {width}")
        k = np.ones(width) / width
        padded = np.pad(probs, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
        return np.stack([np.convolve(padded[:, c], k, mode="valid") for c in range(probs.shape[1])], 1).argmax(1)
    if not 0 < stay < 1:
        raise TinyRhythmError(f"HMM stay probability must lie in (0, 1), got {stay}")
    n, c = probs.shape
    log_e = np.log(np.clip(probs, 1e-6, 1.0)).tolist()
    log_stay, log_move = float(np.log(stay)), float(np.log((1 - stay) / max(1, c - 1)))
    # Plain Python over a handful of classes beats numpy's per-call overhead by ~5x here.
    back = [None] * n
    score = log_e[0]
    states = range(c)
    for t in range(1, n):
        # Best predecessor: the same class, or the best other class (the move costs the same from any).
        best = max(states, key=score.__getitem__)
        move = score[best] + log_move
        prev = [i if score[i] + log_stay >= move or i == best else best for i in states]
        e = log_e[t]
        score = [(score[i] + log_stay if prev[i] == i else move) + e[i] for i in states]
        back[t] = prev
    path = np.empty(n, np.int64)
    path[-1] = max(states, key=score.__getitem__)
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t][path[t]]
    return path


def runs(labels: list[str], bounds: np.ndarray) -> list[Episode]:
    """Runs of equal labels; segment i spans bounds[i]..bounds[i+1] seconds."""
    out: list[Episode] = []
    for i, lab in enumerate(labels):
        if out and out[-1].label == lab:
            out[-1].end_s = float(bounds[i + 1])
        else:
            out.append(Episode(lab, float(bounds[i]), float(bounds[i + 1])))
    return out


def merge_short(episodes: list[Episode], min_duration_s: float) -> list[Episode]:
    """Absorb episodes shorter than min_duration_s into the long episodes around them.

    Long episodes and all UNREADABLE ones (never hidden: a lead-off must show) anchor;
    the short runs between two anchors go to the neighbour whose label holds more of
    their time (the left one on a tie, the readable one beside an UNREADABLE).
    """
    if min_duration_s <= 0 or not episodes:
        return join_touching(episodes)
    anchor = [e.duration_s >= min_duration_s or e.label == UNREADABLE for e in episodes]
    if not any(anchor):
        time: dict[str, float] = {}
        for e in episodes:
            time[e.label] = time.get(e.label, 0.0) + e.duration_s
        return [Episode(max(time, key=time.get), episodes[0].start_s, episodes[-1].end_s)]
    out: list[Episode] = []
    i = 0
    while i < len(episodes):
        if anchor[i]:
            out.append(Episode(**asdict(episodes[i])))
            i += 1
            continue
        j = i
        while j < len(episodes) and not anchor[j]:
            j += 1
        gap = episodes[i:j]
        left = out[-1] if out else None
        right = episodes[j] if j < len(episodes) else None
        choices = [e.label for e in (left, right) if e is not None and e.label != UNREADABLE]
        if not choices:  # only lead-off around: keep the short runs' own majority
            choices = [e.label for e in gap]
        held = {c: sum(g.duration_s for g in gap if g.label == c) for c in choices}
        label = max(choices, key=lambda c: held[c])  # max keeps the first (left) on ties
        out.append(Episode(label, gap[0].start_s, gap[-1].end_s))
        i = j
    return join_touching(out)


def join_touching(episodes: list[Episode]) -> list[Episode]:
    """Merge touching episodes of one label."""
    out: list[Episode] = []
    for e in episodes:
        if out and out[-1].label == e.label and e.start_s - out[-1].end_s < 1e-6:
            out[-1].end_s = e.end_s
        else:
            out.append(Episode(**asdict(e)))
    return out


def burden(episodes: list[Episode]) -> dict:
    """AF burden over analysed time (not noise, not unreadable) and the noise fractions."""
    total = sum(e.duration_s for e in episodes)
    by = {}
    for e in episodes:
        by[e.label] = by.get(e.label, 0.0) + e.duration_s
    af = sum(by.get(x, 0.0) for x in AF_LABELS)
    unreadable = by.get(UNREADABLE, 0.0)
    noise = by.get(NOISE, 0.0) + unreadable
    analysed = total - noise
    return {
        "af_burden": af / analysed if analysed > 0 else 0.0,
        "noise_fraction": noise / total if total > 0 else 0.0,
        "unreadable_fraction": unreadable / total if total > 0 else 0.0,
        "analysed_s": analysed,
        "time_s": {k: round(v, 3) for k, v in sorted(by.items())},
    }


__all__ = ["AF_LABELS", "Episode", "NSR", "UNREADABLE", "burden", "class_rhythms", "merge_short", "runs", "smooth"]
