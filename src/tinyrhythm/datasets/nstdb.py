"""MIT-BIH Noise Stress Test noise recordings (bw, em, ma), for augmentation and as noise windows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ..errors import DataError
from .base import Dataset, Source, data_root, register_dataset
from .record import NOISE, Record, Zone

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


CHUNK_S = 300.0  # a "patient" of the noise dataset: 5 minutes of one lead of one recording
NOISE_RECORDS = ("em", "ma")  # 'bw' is baseline wander: the conditioning removes most of it


def _nstdb_finish(dest: Path) -> None:
    """The three noise records as nstdb.h5, the form tinyrhythm.datasets.nstdb reads."""
    import h5py
    import wfdb

    tmp = dest / "nstdb.h5.tmp"
    with h5py.File(tmp, "w") as f:
        for name in ("bw", "em", "ma"):
            f.create_dataset(name, data=wfdb.rdrecord(str(dest / name)).p_signal)
    os.replace(tmp, dest / "nstdb.h5")


@register_dataset
class NstdbNoise(Dataset):
    """NSTDB electrode-motion and muscle-artifact recordings as windows of the noise class.

    Each 5-minute chunk of each lead is a 'patient' (nstdb/em0-03), so the patient split
    spreads the 24 chunks over train, validation and test. The same recordings also feed
    training-time noise augmentation, so these windows measure recognising pure noise,
    not generalising to unseen noise sources.
    """

    name, subdir = "nstdb", "nstdb"
    source = Source("nstdb", "1.0.0", "nstdb", select=lambda p: p.split(".")[0] in ("bw", "em", "ma"),
                    finish=_nstdb_finish)

    def validate(self) -> None:
        self._noise = load_noise(self.root / "nstdb.h5")

    def patients(self) -> list[str]:
        out = []
        for kind in NOISE_RECORDS:
            x = self._noise[kind]
            chunks = int(len(x) // (CHUNK_S * FS))
            out += [f"nstdb/{kind}{lead}-{c:02d}" for lead in range(x.shape[1]) for c in range(chunks)]
        return out

    def record_paths(self, patient: str) -> list[Path]:
        return [self.root / "nstdb.h5"]

    def records(self, patient: str) -> Iterator[Record]:
        tag = patient.split("/", 1)[1]
        kind, lead, chunk = tag[:2], int(tag[2]), int(tag.split("-")[1])
        n = int(CHUNK_S * FS)
        x = np.ascontiguousarray(self._noise[kind][chunk * n : (chunk + 1) * n, lead])
        yield Record(record_id=tag, patient_id=patient, dataset=self.name, fs=FS, signal=x,
                     zones=[Zone(0, len(x) - 1, NOISE, f"({kind} noise")], path=str(self.root / "nstdb.h5"), lead=str(lead))
