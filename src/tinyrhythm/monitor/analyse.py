"""Rhythm over time for a long recording: windows -> decisions -> episodes -> burden.

The recording is read in chunks of `chunk_s` seconds (plus a little context each side
so resampling and the flat-line check see no seam), resampled to the model's rate,
and cut into windows at every `hop_s`. Memory is a chunk plus the per-window results,
whatever the length (benchmarks/monitor_throughput.py measures it).
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..datasets.stream import ALL_LEADS, SignalStream, open_stream, open_streams
from ..errors import TinyRhythmError
from ..runtime import LoadedModel, load_model
from ..runtime.rr_context import softmax
from ..onepass import OnePassClassifier
from ..streaming import StreamingClassifier
from ..windows.resample import ratio, resample
from ..windows.beats import detect_beats
from .episodes import UNREADABLE, Episode, burden, class_rhythms, merge_short, runs, smooth
from .holter import holter_summary, rr_intervals
from .quality import unreadable_mask


ENGINES = ("auto", "onepass", "windows")
BEAT_DETECTORS = ("neurokit", "c")


@dataclass
class MonitorConfig:
    hop_s: float = 2.048  # 128 samples at 62.5 Hz: a decision every ~2 s
    # Chosen on validation-split recordings (scripts/monitor_smoothing.py, README table).
    smoothing: str = "hmm"
    smooth_width: int = 5
    hmm_stay: float = 0.9
    min_duration_s: float = 30.0
    max_unreadable: float = 0.5  # window or segment share of unreadable samples that makes it UNREADABLE
    chunk_s: float = 600.0  # ~290 windows per model call at the default hop: near the fastest batch on one core
    beats: bool = True  # R peaks, heart rate, RR intervals and pauses (windows.beats, monitor.holter)
    # "onepass": the trunk once over the recording (tinyrhythm.onepass, ~3x faster at the
    # default hop); "windows": every window classified alone; "auto": the model card's
    # `monitor_engine` (chosen per model by its agreement with the window path, README
    # "Monitoring"), else windows.
    engine: str = "auto"
    # The lead is known to be reversed (swapped electrodes, a patch stuck on upside down): the
    # samples are negated before everything else. The models are not polarity-invariant
    # (README, "Lead polarity"), so this is the user's knowledge, not a guess made here.
    invert: bool = False
    # Weigh each window's probabilities with the RR irregularity and rate of the beats around
    # it (runtime.rr_context), where the model card carries a fusion fitted on validation.
    rr_context: bool = True
    # Whose R peaks: the monitor's NeuroKit2 detectors ("neurokit"), or the C export's streaming
    # detector ("c", export.c_beats, built with the host's gcc): what a device running tr_beats.c
    # finds, for its RR context, heart rate and pauses. Python API only.
    beat_detector: str = "neurokit"


@dataclass
class MonitorResult:
    record: str
    path: str
    fs: float
    duration_s: float
    lead: str
    model: str
    task: str
    classes: list[str]
    config: MonitorConfig
    episodes: list[Episode]
    summary: dict
    # Per segment (one per window): its bounds in seconds, smoothed label, raw probabilities.
    bounds: np.ndarray
    labels: list[str]
    probs: np.ndarray
    unreadable: np.ndarray
    notes: list[str] = field(default_factory=list)
    beats: np.ndarray | None = None  # R-peak sample indices at `fs` (None: not detected)
    start_time: str | None = None  # clock time of the first sample, where the file says it
    engine: str = "windows"  # the engine that made the decisions ("auto" resolved)
    rr_context: bool = False  # whether `probs` are the card's RR context fusion of the network's
    beat_lead: int | str | None = None  # the lead the beats (and a report's strips) come from, as `lead=` takes it

    @functools.cached_property
    def rr(self) -> dict[str, np.ndarray]:
        """Every RR interval with its rhythm and validity (monitor.holter.rr_intervals)."""
        return rr_intervals(self)

    def holter(self) -> dict:
        """Heart rate, AF ventricular rate, longest AF episode, hourly burden and pauses."""
        if not hasattr(self, "_holter"):
            self._holter = holter_summary(self, self.rr)
        return self._holter

    def to_json(self) -> dict:
        return {
            "record": self.record, "fs": self.fs, "duration_s": round(self.duration_s, 3),
            "lead": self.lead, "model": self.model, "task": self.task, "engine": self.engine,
            "rr_context": self.rr_context,
            "af_burden": round(self.summary["af_burden"], 4),
            "noise_fraction": round(self.summary["noise_fraction"], 4),
            "unreadable_fraction": round(self.summary["unreadable_fraction"], 4),
            "analysed_s": round(self.summary["analysed_s"], 3),
            "time_s": self.summary["time_s"],
            "episodes": [e.to_dict() for e in self.episodes],
            "n_windows": int(len(self.labels)),
            "config": asdict(self.config),
            "notes": self.notes,
            "start_time": self.start_time,
            **self.holter(),
        }


def _check(cfg: MonitorConfig, lm: LoadedModel) -> int:
    hop = int(round(cfg.hop_s * lm.fs))
    if not 1 <= hop <= lm.input_length:
        raise TinyRhythmError(f"--hop must lie in {1 / lm.fs:.3f}..{lm.input_length / lm.fs:.2f} s for {lm.name}, got {cfg.hop_s}")
    if not 0 < cfg.max_unreadable <= 1:
        raise TinyRhythmError(f"max_unreadable must lie in (0, 1], got {cfg.max_unreadable}")
    if cfg.engine not in ENGINES:
        raise TinyRhythmError(f"--engine must be one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    if cfg.min_duration_s < 0:
        raise TinyRhythmError(f"--min-duration must be >= 0, got {cfg.min_duration_s}")
    if cfg.beat_detector not in BEAT_DETECTORS:
        raise TinyRhythmError(f"beat_detector must be one of {', '.join(BEAT_DETECTORS)}, got {cfg.beat_detector!r}")
    return hop


def classifier(lm: LoadedModel, hop: int, engine: str, notes: list[str]):
    """The engine's push/finish classifier; one-pass falls back to windows (with a note)
    for a model or hop it cannot run."""
    if engine == "auto":
        engine = lm.card.monitor_engine
    if engine == "onepass":
        try:
            return OnePassClassifier(lm, hop)
        except TinyRhythmError as exc:  # a model it cannot cut (fbgemm int8), a hop off the trunk's stride
            notes.append(f"{exc}: windows engine used")
    return StreamingClassifier(lm, hop)


def window_probs(stream: SignalStream, lm: LoadedModel, hop: int, cfg: MonitorConfig, beats: list | None = None):
    """(window starts in model samples, probabilities [n, classes], unreadable share per window,
    per-model-sample unreadable mask, model-rate length, engine used). With a `beats` list, the R peaks
    of each chunk (sample indices at the recording's rate) are appended to it."""
    r = ratio(stream.fs, lm.fs)
    find_beats = detect_beats
    if cfg.beat_detector == "c":
        from ..export.c_beats import MAX_FS, MIN_FS, detect_beats_c as find_beats

        if not MIN_FS <= stream.fs <= MAX_FS:
            raise TinyRhythmError(f"{stream.path}: the C beat detector takes {MIN_FS:g}-{MAX_FS:g} Hz, got {stream.fs:g} Hz")
    step = r.denominator  # chunk edges on a common grid of both rates: no drift between chunks
    chunk = max(step, int(cfg.chunk_s * stream.fs) // step * step)
    margin = max(step, int(4 * stream.fs) // step * step)
    n_model = int(np.ceil(stream.declared_samples * r.numerator / r.denominator))
    bad_model = np.zeros(n_model, bool)
    filled = 0
    # The device-style stream takes each resampled chunk: the windows engine's decisions are
    # exactly those of StreamingClassifier and of a batch pass; the one-pass engine's do not
    # depend on the chunking either.
    sc = classifier(lm, hop, cfg.engine, stream.notes)
    decisions = []
    for s in range(0, stream.declared_samples, chunk):
        e = min(s + chunk, stream.declared_samples)
        a, b = max(0, s - margin), min(stream.declared_samples, e + margin)
        x = stream.read(a, b)
        m = unreadable_mask(x, stream.fs)
        readable = np.where(m, 0.0, x)
        if beats is not None:  # detected with the chunk's context, kept inside the chunk: no seam doubles or loses a beat
            found = find_beats(readable, stream.fs) + a
            beats.append(found[(found >= s) & (found < e)])
        y = resample(readable, stream.fs, lm.fs)
        lo = (s - a) * r.numerator // r.denominator
        hi = lo + (e - s) * r.numerator // r.denominator if e < stream.declared_samples else len(y)
        hi = min(hi, len(y), lo + n_model - filled)
        bad_model[filled: filled + hi - lo] = m[np.minimum((np.arange(lo, hi) * r.denominator) // r.numerator, len(m) - 1)]
        filled += hi - lo
        decisions += sc.push(y[lo:hi])
    decisions += sc.finish()
    decisions = decisions or sc.padded()
    starts = np.array([d[0] for d in decisions], np.int64)
    probs = np.stack([d[1] for d in decisions]).astype(np.float32)
    L = lm.input_length
    if n_model >= L:
        view = sliding_window_view(bad_model, L)
        share = np.concatenate([view[starts[i:i + 4096]].mean(1) for i in range(0, len(starts), 4096)])
    else:
        share = np.array([bad_model.mean()])
    return starts, probs, share, bad_model, n_model, "onepass" if isinstance(sc, OnePassClassifier) else "windows"


def fuse_leads(probs: list[np.ndarray], win_bad: list[np.ndarray], max_unreadable: float) -> np.ndarray:
    """One recording's window probabilities from its leads': the normalised geometric mean over
    the leads readable at each window (all of them where none is). Leads are views of one
    rhythm; where they disagree on morphology (ectopy in one, noise in another) the mean is
    less sure than either, and where they agree, surer (README, "Every lead of a Holter")."""
    logp = np.log(np.clip(np.stack(probs), 1e-6, 1.0))
    ok = np.stack(win_bad) <= max_unreadable
    ok[:, ~ok.any(0)] = True
    return softmax((logp * ok[..., None]).sum(0) / ok.sum(0)[:, None])


def monitor(path: str | os.PathLike, model: str | LoadedModel, fs: float | None = None, lead: int | str | None = None,
            cfg: MonitorConfig | None = None) -> MonitorResult:
    """Rhythm over time of one recording of any length.

    path: WFDB (.hea/.dat), CinC .mat, EDF/EDF+, or .csv/.npy with `fs`; model: zoo name, run
    folder or a LoadedModel; lead: index or name, or "all" (every ECG signal, each window's
    probabilities the geometric mean of its readable leads', R peaks from the most readable
    lead). Returns a MonitorResult: smoothed label and probabilities per hop, episodes, AF
    burden, beats and the Holter summary (`.holter()`)."""
    cfg = cfg or MonitorConfig()
    lm = model if isinstance(model, LoadedModel) else load_model(model)
    hop = _check(cfg, lm)
    every = isinstance(lead, str) and lead.strip().lower() == ALL_LEADS
    streams = open_streams(path, fs, cfg.invert) if every else [open_stream(path, fs, lead, cfg.invert)]
    found = [[] if cfg.beats else None for _ in streams]
    # Per lead: window starts, probabilities, unreadable share per window, unreadable mask, length, engine.
    starts_l, probs_l, win_bad_l, bad_l, n_l, engine_l = zip(*(window_probs(s, lm, hop, cfg, b)
                                                               for s, b in zip(streams, found)))
    # The most readable lead gives the beats (RR context, heart rate, pauses) and the strips.
    primary = int(np.argmin([m.sum() for m in bad_l]))
    stream, starts, n_model, engine, beats = streams[primary], starts_l[primary], n_l[primary], engine_l[primary], found[primary]
    notes = list(dict.fromkeys(n for s in streams for n in s.notes))  # a note each lead repeats, once
    probs = fuse_leads(probs_l, win_bad_l, cfg.max_unreadable) if len(streams) > 1 else probs_l[0]
    win_bad, bad_model = np.min(win_bad_l, 0), np.logical_and.reduce(bad_l)
    L = lm.input_length
    beat_idx = np.concatenate([np.zeros(0, np.int64), *beats]) if beats is not None else None
    fusion = lm.card.rr_fusion if cfg.rr_context else None
    if fusion is not None and beat_idx is None:
        notes.append("RR context not used: beat detection is off")
    elif fusion is not None:
        probs = fusion.apply(probs, beat_idx / stream.fs, (starts + L / 2) / lm.fs)
    # Segment i: the hop around window i's centre; the first and last stretch to the ends.
    centres = starts + L // 2
    edges = np.concatenate([[0], (centres[:-1] + centres[1:]) // 2, [n_model]])
    edges = np.clip(edges, 0, n_model)
    width = edges[1:] - edges[:-1]
    # reduceat, not a cumsum: an int64 running sum of a day's samples would be the largest array here.
    sums = np.add.reduceat(bad_model, np.minimum(edges[:-1], max(0, n_model - 1)), dtype=np.int32) if n_model else 0
    seg_bad = np.where(width > 0, sums / np.maximum(width, 1), 1.0)
    unreadable = (win_bad > cfg.max_unreadable) | (seg_bad > cfg.max_unreadable)
    rhythms = class_rhythms(lm.task, lm.classes)
    labels = [UNREADABLE] * len(starts)
    # Smooth within each readable stretch only: a lead-off is not evidence for either side.
    i = 0
    while i < len(starts):
        if unreadable[i]:
            i += 1
            continue
        j = i
        while j < len(starts) and not unreadable[j]:
            j += 1
        for k, c in enumerate(smooth(probs[i:j], cfg.smoothing, cfg.smooth_width, cfg.hmm_stay)):
            labels[i + k] = rhythms[int(c)]
        i = j
    bounds = edges / lm.fs
    bounds[-1] = stream.duration_s
    episodes = merge_short(runs(labels, bounds), cfg.min_duration_s)
    return MonitorResult(
        record=stream.name, path=str(path), fs=stream.fs, duration_s=stream.duration_s,
        lead="+".join(s.lead or "?" for s in streams) if len(streams) > 1 else stream.lead,
        model=lm.name, task=lm.task, classes=list(lm.classes), config=cfg, episodes=episodes, summary=burden(episodes),
        bounds=bounds, labels=labels, probs=probs, unreadable=unreadable, notes=notes,
        beats=beat_idx, start_time=stream.start_time, engine=engine, rr_context=fusion is not None and beat_idx is not None,
        beat_lead=primary if every else lead,
    )
