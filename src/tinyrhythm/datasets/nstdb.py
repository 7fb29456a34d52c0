"""MIT-BIH Noise Stress Test noise recordings (bw, em, ma), for augmentation."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import DataError
from .base import data_root

NOISE_KINDS = ("bw", "em", "ma")
FS = 360.0


def load_noise(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """{'bw'|'em'|'ma': float32 array (samples, 2 leads) in mV at 360 Hz}."""
    path = Path(path) if path is not None else data_root() / "nstdb" / "nstdb.h5"
    if not path.is_file():
        raise DataError(path, "NSTDB noise file not found")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in NOISE_KINDS if k not in f]
            if missing:
                raise DataError(path, f"not an NSTDB noise file: datasets {missing} missing")
            noise = {k: np.asarray(f[k], dtype=np.float32) for k in NOISE_KINDS}
    except OSError as exc:
        raise DataError(path, f"unreadable HDF5 file ({exc})") from None
    for k, x in noise.items():
        if x.ndim != 2 or not np.isfinite(x).all():
            raise DataError(path, f"noise '{k}' must be a finite (samples, leads) array")
    return noise
