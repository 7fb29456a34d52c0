"""Writing and reading model files: atomic writes, `weights_only=True` loads."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import DataError


def save_atomic(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_weights(path: str | os.PathLike) -> dict:
    """Load tensors only: a model file that would run code is refused by torch."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise DataError(path, f"unreadable or unsafe model file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
