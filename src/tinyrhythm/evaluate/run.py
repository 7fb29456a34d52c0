"""Evaluating a run folder or zoo model on a split of its task's window store."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TinyRhythmError
from ..runtime import load_model
from ..train.config import training_store as store_for
from ..datasets.split import SPLITS
from .plots import confusion_png
from .scoring import score_split


def evaluate(model: str, task: str, split: str = "test", store: str | None = None, threshold: float | None = None,
             plot: str | None = None) -> dict:
    """Score a run folder or zoo model on a store split (the task's window store unless `store`):
    macro and per-class F1 (AF first) and the confusion matrix, at window or record level as
    the task scores; `plot` (by default beside a run folder) writes the confusion matrix PNG."""
    if split not in SPLITS:
        raise TinyRhythmError(f"unknown split {split!r} (train, val, test)")
    if threshold is not None and not 0 < threshold < 1:
        raise TinyRhythmError(f"--threshold must lie in (0, 1), got {threshold}")
    lm = load_model(model)
    if lm.task and lm.task != task:  # an export made before reports named the task has none: the store check decides
        raise TinyRhythmError(f"{model}: model was trained for task {lm.task!r}, not {task!r}")
    ws = store_for(lm, store)
    report = score_split(lm.model, ws, split, torch.device("cpu"), threshold)
    report = {"model": lm.name, "task": task, "split": split, "threshold": threshold, **report}
    if plot is None and lm.card.source == "run":
        plot = str(Path(lm.card.card_path).parent / f"confusion_{split}.png")
    if plot:
        confusion_png(report["confusion_matrix"], lm.classes, plot, f"{lm.name} {task} {split} ({report['level']}s)")
        report["confusion_png"] = str(plot)
    return report
