"""Monitor output against reference rhythm annotations.

- Episode sensitivity: share of reference AF episodes that some detected AF episode
  overlaps; episode PPV: share of detected AF episodes that overlap a reference AF episode
  (the overlap rule of ANSI/AAMI EC57's AF episode statistics).
- Duration-weighted AF sensitivity, PPV and F1 over the time the reference labels
  with a rhythm (unlabelled reference time is left out).
- AF burden error: detected minus reference burden; false AF minutes per hour of
  reference non-AF rhythm, the figure that matters on a record without AF.
- A segment-level confusion matrix in the model's classes, for the report.
"""

from __future__ import annotations

import numpy as np

from ..datasets.record import NOISE, Zone
from ..datasets.wfdb_io import read_annotations, record_base
from ..errors import TinyRhythmError
from ..tasks import get_task
from .analyse import MonitorResult
from .episodes import AF_LABELS, UNREADABLE, Episode, join_touching, class_rhythms


def reference_episodes(zones: list[Zone], fs: float) -> list[Episode]:
    return join_touching([Episode(z.label, z.start / fs, (z.end + 1) / fs) for z in sorted(zones, key=lambda z: z.start)])


def read_reference(result: MonitorResult, extension: str) -> list[Episode]:
    if result.path.endswith((".csv", ".npy")):
        raise TinyRhythmError(f"{result.path}: reference annotations need a WFDB record (.hea)")
    zones, _, _ = read_annotations(record_base(result.path), extension, int(round(result.duration_s * result.fs)))
    return reference_episodes(zones, result.fs)


def _overlap(a: Episode, b: Episode) -> float:
    return max(0.0, min(a.end_s, b.end_s) - max(a.start_s, b.start_s))


def _labels_at(episodes: list[Episode], t: np.ndarray) -> np.ndarray:
    """Label of the episode holding each time t ('' where none does)."""
    out = np.full(len(t), "", dtype=object)
    for e in episodes:
        out[(t >= e.start_s) & (t < e.end_s)] = e.label
    return out


def evaluate_episodes(result: MonitorResult, reference: list[Episode]) -> dict:
    is_af = lambda e: e.label in AF_LABELS  # noqa: E731
    ref_af = join_touching([Episode("AF", e.start_s, e.end_s) for e in reference if is_af(e)])
    det_af = join_touching([Episode("AF", e.start_s, e.end_s) for e in result.episodes if is_af(e)])
    sens = (sum(any(_overlap(r, d) > 0 for d in det_af) for r in ref_af) / len(ref_af)) if ref_af else None
    ppv = (sum(any(_overlap(d, r) > 0 for r in ref_af) for d in det_af) / len(det_af)) if det_af else None

    # Duration-weighted figures on a 0.1 s grid over the reference's rhythm-labelled time.
    t = np.arange(0, result.duration_s, 0.1) + 0.05
    ref_lab = _labels_at(reference, t)
    det_lab = _labels_at(result.episodes, t)
    rhythm = (ref_lab != "") & (ref_lab != NOISE)
    r_af = np.isin(ref_lab, AF_LABELS) & rhythm
    d_af = np.isin(det_lab, AF_LABELS)
    tp, fp, fn = (0.1 * float((a & b & rhythm).sum()) for a, b in ((r_af, d_af), (~r_af, d_af), (r_af, ~d_af)))
    se_d = tp / (tp + fn) if tp + fn else None
    ppv_d = tp / (tp + fp) if tp + fp else None
    f1_d = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    ref_rhythm_s = 0.1 * float(rhythm.sum())
    ref_burden = 0.1 * float(r_af.sum()) / ref_rhythm_s if ref_rhythm_s else None
    non_af_h = (ref_rhythm_s - 0.1 * float(r_af.sum())) / 3600
    rnd = lambda v: None if v is None else round(v, 4)  # noqa: E731
    return {
        "reference_af_episodes": len(ref_af), "detected_af_episodes": len(det_af),
        "episode_sensitivity": rnd(sens), "episode_ppv": rnd(ppv),
        "af_sensitivity_duration": rnd(se_d), "af_ppv_duration": rnd(ppv_d), "af_f1_duration": rnd(f1_d),
        "reference_af_burden": rnd(ref_burden), "af_burden": rnd(result.summary["af_burden"]),
        "af_burden_error": rnd(None if ref_burden is None else result.summary["af_burden"] - ref_burden),
        "false_af_min_per_hour": rnd(fp / 60 / non_af_h) if non_af_h > 0 else None,
        "reference_rhythm_s": round(ref_rhythm_s, 1),
        # the raw durations, so that figures over many records can be pooled
        "af_tp_s": round(tp, 1), "af_fp_s": round(fp, 1), "af_fn_s": round(fn, 1),
        "confusion": segment_confusion(result, reference),
    }


def segment_confusion(result: MonitorResult, reference: list[Episode]) -> dict:
    """Reference class (rows) against smoothed decision (columns), one count per segment,
    in the model task's classes; UNREADABLE segments and unlabelled reference time left out."""
    task = get_task(result.task)
    classes = list(task.classes)
    centres = (result.bounds[:-1] + result.bounds[1:]) / 2
    ref = _labels_at(reference, centres)
    inverse = {r: c for c, r in zip(classes, class_rhythms(task.name, classes))}
    cm = np.zeros((len(classes), len(classes)), np.int64)
    for r, d in zip(ref, result.labels):
        if d == UNREADABLE or r == "" or r not in task.label_map:
            continue
        cm[classes.index(task.label_map[r]), classes.index(inverse[d])] += 1
    return {"classes": classes, "matrix": cm.tolist()}

