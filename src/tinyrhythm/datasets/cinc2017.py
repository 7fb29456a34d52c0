"""PhysioNet/CinC Challenge 2017: short AliveCor ECGs, 300 Hz, one label per record.

Labels come from REFERENCE.csv (N normal, A AF, O other rhythm, ~ noisy). Each record
is its own patient: the challenge publishes no patient ids.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from .base import Dataset, Source, register_dataset
from .record import AFIB, NOISE, NSR, OTHER, Record, Zone
from .wfdb_io import read_signal

# Challenge label -> canonical rhythm label.
CINC_LABELS = {"N": NSR, "A": AFIB, "O": OTHER, "~": NOISE}


def _cinc_finish(dest: Path) -> None:
    """training2017.zip -> training2017/, with the revised v3 labels as REFERENCE.csv."""
    zpath = dest / "training2017.zip"
    if not (dest / "training2017" / "RECORDS").is_file():
        with zipfile.ZipFile(zpath) as z:
            z.extractall(dest)
    shutil.copyfile(dest / "REFERENCE-v3.csv", dest / "training2017" / "REFERENCE.csv")


@register_dataset
class Cinc2017(Dataset):
    name = "cinc2017"
    source = Source("challenge-2017", "1.0.0", "cinc2017", select=lambda p: p in ("training2017.zip", "REFERENCE-v3.csv"),
                    finish=_cinc_finish)
    subdir = "cinc2017/training2017"
    default_task = "cinc2017"
    native_fs = 300.0

    @classmethod
    def read_named(cls, base: Path) -> Record | None:
        """A record of the challenge's training folder: REFERENCE.csv lies beside it."""
        if not (base.parent / "REFERENCE.csv").is_file():
            return None
        return cls(base.parent).read(base.name)
    def validate(self) -> None:
        ref = self.root / "REFERENCE.csv"
        if not ref.is_file():
            raise DataError(self.root, "not a CinC 2017 folder: REFERENCE.csv not found")
        self._labels = self._read_reference(ref)

    @staticmethod
    def _read_reference(ref: Path) -> dict[str, str]:
        labels: dict[str, str] = {}
        try:
            text = ref.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(ref, "not a text file (binary data)") from None
        if "\x00" in text:
            raise DataError(ref, "not a text file (NUL bytes)")
        for i, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 or not row[0].strip():
                raise DataError(ref, f"line {i}: expected 'record,label', got {','.join(row)!r}")
            name, label = row[0].strip(), row[1].strip()
            if label not in CINC_LABELS:
                raise DataError(ref, f"line {i}: unknown label {label!r} for {name} (expected one of N, A, O, ~)")
            if name in labels:
                raise DataError(ref, f"line {i}: record {name} listed twice")
            labels[name] = label
        if not labels:
            raise DataError(ref, "no records listed")
        return labels

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._labels)

    def patients(self) -> list[str]:
        return [f"cinc2017/{name}" for name in sorted(self._labels)]

    def record_paths(self, patient: str) -> list[Path]:
        return [self.root / f"{patient.split('/')[-1]}.hea"]

    def num_records(self) -> int:
        return len(self._labels)

    def records(self, patient: str) -> Iterator[Record]:
        yield self.read(patient.split("/")[-1])

    def read(self, name: str) -> Record:
        if name not in self._labels:
            raise DataError(self.root / "REFERENCE.csv", f"record {name} has no label")
        base = self.root / name
        signal, fs, lead = read_signal(base)
        self.check_fs(fs, f"{base}.hea")
        label = self._labels[name]
        return Record(
            record_id=name, patient_id=f"cinc2017/{name}", dataset=self.name, fs=fs, signal=signal,
            zones=[Zone(0, len(signal) - 1, CINC_LABELS[label], label)], label=label, path=str(base), lead=lead,
        )

    def record_labels(self) -> dict[str, int]:
        counts = Counter(self._labels.values())
        return {k: counts.get(k, 0) for k in CINC_LABELS}
