"""Compression: knowledge distillation, pruning and quantization, each measured against its parent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import TinyRhythmError
from ..models import TinyRhythmCNN
from ..runtime import load_model


def float_parent(parent: str, out: str | os.PathLike, force: bool, verb: str):
    """The float model a compression starts from, and its empty output folder (`force` clears it)."""
    lm = load_model(parent)
    if not isinstance(lm.model, TinyRhythmCNN):
        raise TinyRhythmError(f"{parent}: already quantized; only a float model can be {verb}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise TinyRhythmError(f"{out}: run folder exists and is not empty")
        shutil.rmtree(out)
    return lm, out
