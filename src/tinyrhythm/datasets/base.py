"""What every dataset reader offers, and where datasets live on disk."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import DataError, TinyRhythmError
from .record import Record

DATA_ENV = "TINYRHYTHM_DATA"


def data_root() -> Path:
    """The folder named by TINYRHYTHM_DATA, laid out like shared/data."""
    value = os.environ.get(DATA_ENV)
    if not value:
        raise TinyRhythmError(f"{DATA_ENV} is not set: point it at the folder that holds cinc2017/, icentia11k/, mitdb/, nstdb/")
    root = Path(value)
    if not root.is_dir():
        raise DataError(root, f"{DATA_ENV} does not name an existing folder")
    return root


@dataclass(frozen=True)
class Source:
    """Where a dataset is published (a PhysioNet project) and how its files become the reader's layout."""

    slug: str  # PhysioNet project
    version: str
    dest: str  # folder under the data root, as the readers expect it
    select: Callable[[str], bool] = lambda path: True
    finish: Callable[[Path], None] | None = None  # turns downloaded files into the reader's layout


class Dataset:
    """A published dataset read from its own files; `@register_dataset` makes it known by name.

    Subclasses set `name`, `subdir` (below TINYRHYTHM_DATA), `native_fs` (None where
    records may have any rate) and implement `patients()` and `records(patient)`.
    Patient ids are global strings ("icentia11k/00000") so that the patient split and a
    store that mixes datasets never confuse two patients.
    """

    name: str = ""
    subdir: str = ""
    native_fs: float | None = None
    unzoned_noise: bool = False  # spans outside every rhythm zone are noise (Icentia11k)
    default_task: str = "rhythm3"  # the task `data build` windows it for when none is named
    source: Source | None = None  # `tinyrhythm data download NAME` fetches it from there

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else data_root() / self.subdir
        if not self.root.is_dir():
            raise DataError(self.root, f"{self.name} folder not found (expected {self.subdir}/ under {DATA_ENV})")
        self.validate()

    @classmethod
    def read_named(cls, base: Path) -> Record | None:
        """The record at `base` (a path without extension) when its name or folder says it is
        one of this dataset's records (`inspect` reads any file so), else None."""
        return None

    def validate(self) -> None:
        """Raise DataError if the folder does not hold this dataset."""

    def patients(self) -> list[str]:
        """Patient ids, sorted: the unit of the train/val/test split (a patient's records stay together)."""
        raise NotImplementedError

    def records(self, patient: str) -> Iterator[Record]:
        """A patient's records, read and validated: signal in mV, rate, lead, rhythm zones, beats."""
        raise NotImplementedError

    def num_records(self) -> int:
        """How many records all patients have (from file names; nothing is read)."""
        return sum(len(self.record_paths(p)) for p in self.patients())

    def record_paths(self, patient: str) -> list[Path]:
        """The files of a patient's records (a header or signal file per record)."""
        raise NotImplementedError

    def record_labels(self) -> dict[str, int]:
        """Records per rhythm label present in them (read from annotations only)."""
        counts: Counter[str] = Counter()
        for patient in self.patients():
            for rec in self.records(patient):
                counts.update({z.label for z in rec.zones} | ({rec.label} if rec.label else set()))
        return dict(sorted(counts.items()))

    def check_fs(self, fs: float, path: str | os.PathLike) -> None:
        """DataError naming `path` where a dataset with a fixed rate gets another."""
        if self.native_fs is not None and abs(fs - self.native_fs) > 1e-6:
            raise DataError(path, f"unsupported sampling rate {fs:g} Hz for {self.name} (expected {self.native_fs:g} Hz)")


DATASETS: dict[str, type[Dataset]] = {}


def register_dataset(cls: type[Dataset]) -> type[Dataset]:
    """Class decorator: the reader is opened by its `name` (open_dataset, window stores, the CLI),
    so a new dataset is one module."""
    if not cls.name or DATASETS.get(cls.name, cls) is not cls:
        raise TinyRhythmError(f"dataset reader {cls.__name__}: empty or duplicate name {cls.name!r}")
    DATASETS[cls.name] = cls
    return cls
