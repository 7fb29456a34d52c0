"""Evaluating a run folder or zoo model on a split of its task's window store."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TinyRhythmError
from ..inference import LoadedModel, load_model
from ..train.config import TrainConfig
from ..train.loop import ensure_store, score_split
from ..windows.split import SPLITS
from ..windows.store import WindowStore
from .plots import confusion_png


def store_for(lm: LoadedModel, store: str | None = None) -> WindowStore:
    """The window store to score a model on: the one given, else the one it was trained on
    (rebuilt in the cache from its training config when the original folder is gone)."""
    train_cfg = lm.meta.get("train") or lm.meta.get("card", {}).get("train")
    if store:
        ws = WindowStore(store)
    elif train_cfg and train_cfg.get("store") and Path(train_cfg["store"]).is_dir():
        ws = WindowStore(train_cfg["store"])
    elif train_cfg:
        ws = ensure_store(TrainConfig.from_dict({**train_cfg, "store": ""}))
    else:
        raise TinyRhythmError(f"{lm.name}: no training config to find its data; pass --store")
    if ws.classes != lm.classes or abs(ws.fs - lm.fs) > 1e-9 or ws.window_length != lm.input_length:
        raise TinyRhythmError(f"{ws.path}: store ({ws.classes}, {ws.fs} Hz, {ws.window_length} samples) does not fit "
                              f"model ({lm.classes}, {lm.fs} Hz, {lm.input_length} samples)")
    return ws


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
    if lm.task != task:
        raise TinyRhythmError(f"{model}: model was trained for task {lm.task!r}, not {task!r}")
    ws = store_for(lm, store)
    report = score_split(lm.model, ws, split, torch.device("cpu"), threshold)
    report = {"model": lm.name, "task": task, "split": split, "threshold": threshold, **report}
    if plot is None and Path(model).is_dir():
        plot = str(Path(model) / f"confusion_{split}.png")
    if plot:
        confusion_png(report["confusion_matrix"], lm.classes, plot, f"{lm.name} {task} {split} ({report['level']}s)")
        report["confusion_png"] = str(plot)
    return report
