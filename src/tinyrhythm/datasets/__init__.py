"""Readers for published ECG datasets, one module each, and a registry by name."""

from __future__ import annotations

from ..errors import TinyRhythmError
from .base import DATA_ENV, DATASETS, Dataset, data_root
from .record import RHYTHM_LABELS, Record, Zone
# Imported in the order the registry lists them (each module registers its readers).
from .icentia11k import Icentia11k, Icentia11kOriginal
from .cinc2017 import Cinc2017
from .wfdb_rhythm import Afdb, Afpdb, Aftdb, Cpsc2021, Ltafdb, Mitdb, WfdbRhythmDatabase
from .nstdb import NstdbNoise, load_noise

# DATASETS: every reader registered by @register_dataset in the modules above.


def default_task(names: list[str]) -> str:
    """The task these datasets are windowed for when none is named: their readers' common one."""
    tasks = {DATASETS[n].default_task for n in names}
    if len(tasks) != 1:
        raise TinyRhythmError(f"datasets {', '.join(names)} have different default tasks ({', '.join(sorted(tasks))}): "
                              "name one with --task")
    return tasks.pop()


def open_dataset(name: str, root=None, **kwargs) -> Dataset:
    """Open a dataset by name, from `root` or from its folder under TINYRHYTHM_DATA."""
    try:
        cls = DATASETS[name]
    except KeyError:
        raise TinyRhythmError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
    if kwargs.get("lead") is not None and not issubclass(cls, WfdbRhythmDatabase):
        raise TinyRhythmError(f"{name} records have one lead: --lead applies to MIT-BIH-style databases only")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return cls(root, **kwargs)


__all__ = [
    "DATASETS", "DATA_ENV", "Dataset", "Record", "Zone", "RHYTHM_LABELS", "data_root", "default_task", "load_noise",
    "open_dataset",
    "Icentia11k", "Icentia11kOriginal", "Cinc2017", "Mitdb", "Afdb", "Ltafdb", "Cpsc2021", "Aftdb", "Afpdb", "NstdbNoise",
]
