"""Many recordings at once: `monitor` over records and folders, in parallel, with one summary.

Each recording is analysed in a worker process (the model loaded once per worker, one
thread each), its usual outputs written to the output folder as it finishes, and one row
per recording goes into `summary.csv` and `summary.jsonl` beside them. A recording that
cannot be read gets a row with its error and does not stop the others.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

from ..datasets.files import expand
from ..errors import TinyRhythmError
from ..paths import write_atomic
from ..runtime import load_model
from .analyse import MonitorConfig, MonitorResult, monitor
from .episodes import AF_LABELS
from .evaluate import evaluate_episodes, read_reference
from .holter import longest_af_episode
from .output import write_outputs

SUMMARY_FIELDS = ("record", "path", "duration_s", "af_burden", "episodes", "af_episodes", "longest_af_episode_s",
                  "noise_fraction", "unreadable_fraction", "analysed_s", "error")


@dataclass
class BatchJob:
    model: str
    fs: float | None
    lead: int | str | None
    cfg: MonitorConfig
    out: str | None = None
    ann_ext: str = "tr"
    reference: str | None = None


def find_recordings(args: list[str | os.PathLike]) -> list[Path]:
    """Recordings named or held by folders (datasets.files.expand); a file that is missing or
    unreadable is kept, so that its error lands in its summary row. A folder with no
    recordings is an error for the whole call."""

    out: list[Path] = []
    for a in args:
        if Path(a).is_dir():
            out += expand([a])
            continue
        try:
            out += expand([a])
        except TinyRhythmError:
            out.append(Path(a))
    return list(dict.fromkeys(out))


def summary_row(result: MonitorResult, name: str, evaluation: dict | None = None) -> dict:
    s = result.summary
    row = {"record": name, "path": result.path, "duration_s": round(result.duration_s, 3),
           "af_burden": round(s["af_burden"], 4), "episodes": len(result.episodes),
           "af_episodes": sum(e.label in AF_LABELS for e in result.episodes),
           "longest_af_episode_s": round(longest_af_episode(result.episodes), 3),
           "noise_fraction": round(s["noise_fraction"], 4), "unreadable_fraction": round(s["unreadable_fraction"], 4),
           "analysed_s": round(s["analysed_s"], 3), "error": None}
    if evaluation is not None:
        row["evaluation"] = {k: v for k, v in evaluation.items() if k != "confusion"}
    return row


def output_names(paths: list[Path]) -> list[str]:
    """One output name per recording: its stem, or its parent folders too where stems repeat."""
    stems = [p.stem for p in paths]
    count = Counter(stems)
    names = []
    for p, s in zip(paths, stems):
        name = s if count[s] == 1 else "_".join(p.with_suffix("").parts[-3:])
        names.append(re.sub(r"[^A-Za-z0-9_-]", "_", name) or "record")
    return names


_WORKER: dict = {}


def _init(model: str, threads: int = 1) -> None:

    torch.set_num_threads(threads)
    _WORKER["lm"] = load_model(model)


def _one(path: Path, name: str, job: BatchJob) -> dict:
    """The summary row of one recording (with its warnings); its error in the row where it fails."""

    try:
        r = monitor(path, _WORKER["lm"], fs=job.fs, lead=job.lead, cfg=job.cfg)
        r.record = name
        ev = evaluate_episodes(r, read_reference(r, job.reference)) if job.reference else None
        if job.out:
            write_outputs(r, job.out, job.ann_ext, ev)
        row = summary_row(r, name, ev)
        if r.notes:
            row["warnings"] = list(r.notes)
        return row
    except TinyRhythmError as exc:
        return {**{k: None for k in SUMMARY_FIELDS}, "record": name, "path": str(path), "error": str(exc)}


def monitor_many(paths: list[Path], job: BatchJob, jobs: int = 1, progress: bool | None = None) -> list[dict]:
    """Summary rows in the order of `paths` (each recording's outputs written to `job.out`)."""
    from tqdm import tqdm

    names = output_names(paths)
    rows: list[dict | None] = [None] * len(paths)
    bar = tqdm(total=len(paths), unit="rec", desc="monitor", disable=None if progress is None else not progress)
    try:
        if jobs <= 1:
            _init(job.model, threads=1)
            for i, (p, n) in enumerate(zip(paths, names)):
                rows[i] = _one(p, n, job)
                bar.update()
        else:
            with ProcessPoolExecutor(jobs, initializer=_init, initargs=(job.model,)) as ex:
                futs = {ex.submit(_one, p, n, job): i for i, (p, n) in enumerate(zip(paths, names))}
                for f in as_completed(futs):
                    rows[futs[f]] = f.result()
                    bar.update()
    finally:
        bar.close()
        _WORKER.clear()
    return rows  # type: ignore[return-value]


def write_summary(rows: list[dict], out: str | os.PathLike) -> list[Path]:
    """summary.csv and summary.jsonl in `out`, each written whole or not at all."""
    out = Path(out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SUMMARY_FIELDS)
    for r in rows:
        w.writerow(["" if r.get(k) is None else r[k] for k in SUMMARY_FIELDS])
    paths = [out / "summary.csv", out / "summary.jsonl"]
    write_atomic(paths[0], buf.getvalue())
    write_atomic(paths[1], "".join(json.dumps(r) + "\n" for r in rows))
    return paths
