"""`tinyrhythm calibrate RUN --out NEW`: choose a trained run's prior correction again.

The correction (per-class logit offsets folded into the head's bias, evaluate.scoring) is the
one part of a rhythm model that depends on the class mix it will meet. Choosing it again needs
no training: the recorded offsets are taken out, new ones are chosen on the validation split of
the run's store (or of another store, e.g. labelled patients from the user's own recorder) with
the given weighting, and a new run folder is written beside the old one, which stays as it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from .. import models
from ..checkpoint import save_atomic
from ..errors import TinyRhythmError
from ..evaluate.scoring import correct_priors, record_level, score_split
from ..paths import write_json_atomic
from ..runtime import load_model
from ..runtime.card import read_json
from .config import training_store


def calibrate(run: str | os.PathLike, out: str | os.PathLike, weighting: str = "windows",
              store: str | None = None) -> dict:
    """Write run `out`: `run`'s model with its prior correction chosen again; returns its metrics."""
    run, out = Path(run), Path(out)
    lm = load_model(run)
    if lm.card.source != "run" or lm.card.format != "torch" or not isinstance(lm.model, models.TinyRhythmCNN):
        raise TinyRhythmError(f"{run}: calibrate needs a PyTorch run folder of the CNN family "
                              "(quantize the calibrated run again for an int8 model)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TinyRhythmError(f"{out}: run folder exists and is not empty")
    ws = training_store(lm, store)
    if record_level(ws):
        raise TinyRhythmError(f"{ws.path}: a record-level store (one label per record) has no prior correction")
    model = lm.model.eval()
    old = lm.card.logit_offsets
    if old:
        with torch.no_grad():  # back to the balanced frame the new correction is chosen in
            model.fc.bias -= torch.as_tensor(old, dtype=model.fc.bias.dtype)
    prior = correct_priors(model, ws, "cpu", weighting)
    prior["replaces"] = old

    cfg = read_json(run / "config.json", "run card")
    cfg.pop("weights_sha256", None)
    cfg["train"] = {**cfg["train"], "prior_correction": True, "prior_weighting": weighting}
    cfg["calibrated_from"] = str(run)
    if store:
        cfg["calibration_store"] = str(ws.path)
    metrics = read_json(run / "metrics.json", "run metrics") if (run / "metrics.json").is_file() else {}
    metrics.update({"val": score_split(model, ws, "val", "cpu"), "test": score_split(model, ws, "test", "cpu"),
                    "prior_correction": prior, "scored_on": str(ws.path)})

    # Built in a sibling folder and renamed into place: a failure leaves no half-written run.
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_json_atomic(tmp / "config.json", cfg)
        save_atomic(model.state_dict(), tmp / "model.pt")  # its SHA-256 goes into config.json
        write_json_atomic(tmp / "metrics.json", metrics)
        if (run / "history.json").is_file():
            shutil.copyfile(run / "history.json", tmp / "history.json")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metrics
