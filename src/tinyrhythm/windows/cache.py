"""Window stores in the user's cache: one folder per store configuration, built on first use.

A store's folder name is its datasets, task and configuration digest, so a training run,
an evaluation and a compression of the same model find the same store without being told
where it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TinyRhythmError
from .build import build_store
from .schema import BuildConfig
from .store import WindowStore

# The rhythm task pools every real source: Holter (MITDB, AFTDB, AFPDB, CPSC 2021,
# Icentia11k), handheld (CinC 2017) and NSTDB noise.
RHYTHM_DATASETS = ["mitdb", "aftdb", "afpdb", "cpsc2021", "icentia11k", "cinc2017", "nstdb"]
DEFAULT_DATASETS = {"cinc2017": ["cinc2017"], "study3": ["icentia11k"], "icentia4": ["icentia11k"],
                    "rhythm3": RHYTHM_DATASETS, "rhythm4": RHYTHM_DATASETS}


def cache_dir() -> Path:
    return Path(os.environ.get("TINYRHYTHM_CACHE", Path.home() / ".cache" / "tinyrhythm"))


def default_datasets(task: str, datasets: list[str] | None) -> list[str]:
    """The datasets a store holds: the ones named, else the task's own."""
    out = datasets or DEFAULT_DATASETS.get(task)
    if not out:
        raise TinyRhythmError(f"task {task!r} has no default dataset: set 'datasets' or 'store' in the config")
    return list(out)


def store_path(bc: BuildConfig) -> Path:
    return cache_dir() / "stores" / f"{'+'.join(bc.datasets)}-{bc.task}-{bc.digest()}"


def ensure_store(bc: BuildConfig, quiet: bool = False, build: bool = True) -> WindowStore:
    """The window store `bc` describes, built (or resumed) in the cache on first use."""
    path = store_path(bc)
    if build and not (path / "manifest.json").is_file():
        build_store(path, bc, workers=max(1, min(4, os.cpu_count() or 1)), quiet=quiet)
    return WindowStore(path)
