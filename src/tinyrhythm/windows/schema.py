"""The window store's format: sharded numpy memmaps plus one JSON manifest, and the
configuration (`BuildConfig`) whose digest names a store.

Layout of a store folder::

    build.json                     what is being built (config + its hash), written first
    shard-0003-of-0008/
        parts/<patient>.npz        one finished patient (renamed into place: never half-written)
        windows.npy  float32 [n, length]   memory-mapped when reading
        labels.npy   int8    [n]   task class index
        rhythm.npy   int8    [n]   canonical rhythm label (index into RHYTHM_LABELS)
        split.npy    int8    [n]   0 train, 1 val, 2 test
        patient.npy  int32   [n]   index into shard.json "patients"
        record.npy   int32   [n]   index into shard.json "records"
        start.npy    int64   [n]   first sample of the window at the store's rate
        shard.json   written last: its presence is what makes the shard complete
    manifest.json                  written when every shard is complete; joins them

Patients go to shards by a hash of their id, so N machines can each run
`--shard i/N` and any one of them can then join the shards with `data merge`.
A killed build is resumed by running the same command again: finished shards and
finished patients are kept, partial files (*.tmp) are discarded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..datasets.split import FRACTIONS
from ..errors import TinyRhythmError
from .labelling import WindowConfig

FORMAT_VERSION = 1
ARRAYS = ("windows", "labels", "rhythm", "split", "patient", "record", "start")


@dataclass
class BuildConfig:
    datasets: list[str]
    task: str
    window: WindowConfig = field(default_factory=WindowConfig)
    split_seed: int = 0
    num_shards: int = 1
    max_patients: int | None = None  # first N patients per dataset (sorted), for subsets
    lead: int | str | None = None
    # "patient" (the study's rule). "record" splits a patient's records apart: only for
    # demonstrations on a single patient, since it lets one patient's ECG into two splits.
    split_by: str = "patient"

    def __post_init__(self):
        if self.split_by not in ("patient", "record"):
            raise TinyRhythmError(f"split_by must be 'patient' or 'record', got {self.split_by!r}")

    def to_dict(self) -> dict:
        return {
            "datasets": list(self.datasets), "task": self.task, "window": self.window.to_dict(),
            "split_seed": self.split_seed, "split_fractions": list(FRACTIONS), "num_shards": self.num_shards,
            "max_patients": self.max_patients, "lead": self.lead, "format_version": FORMAT_VERSION,
            **({"split_by": self.split_by} if self.split_by != "patient" else {}),
        }

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "BuildConfig":
        return cls(datasets=d["datasets"], task=d["task"], window=WindowConfig(**d["window"]),
                   split_seed=d["split_seed"], num_shards=d["num_shards"], max_patients=d.get("max_patients"),
                   lead=d.get("lead"), split_by=d.get("split_by", "patient"))


def shard_of(patient_id: str, num_shards: int) -> int:
    return int.from_bytes(hashlib.sha256(f"shard:{patient_id}".encode()).digest()[:8], "big") % num_shards


def shard_name(i: int, n: int) -> str:
    return f"shard-{i:04d}-of-{n:04d}"
