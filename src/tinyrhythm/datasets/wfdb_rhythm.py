"""MIT-BIH-style WFDB databases with rhythm aux notes: MITDB, AFDB, LTAFDB, CPSC 2021.

All share one format: multi-lead records at their own rate (360/250/128/200 Hz), '+'
annotations whose aux notes ('(N', '(AFIB', '(AFL', ...) open a rhythm that lasts
until the next note (CPSC 2021 also closes with ')'). Each record counts as a patient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import DataError
from .base import Dataset
from .record import Record
from .wfdb_io import read_annotations, read_signal


class WfdbRhythmDatabase(Dataset):
    annotation = "atr"

    def __init__(self, root=None, lead: int | str | None = None):
        self.lead = lead
        super().__init__(root)

    def validate(self) -> None:
        if not self._record_names():
            raise DataError(self.root, f"not a {self.name} folder: no WFDB records (.hea) inside")

    def _record_names(self) -> list[str]:
        listed = self.root / "RECORDS"
        if listed.is_file():
            names = [ln.strip() for ln in listed.read_text().splitlines() if ln.strip()]
            return [n for n in names if (self.root / f"{n}.hea").is_file()]
        return sorted(str(p.relative_to(self.root).with_suffix("")) for p in self.root.rglob("*.hea"))

    def patients(self) -> list[str]:
        return [f"{self.name}/{n}" for n in self._record_names()]

    def record_paths(self, patient: str) -> list[Path]:
        return [self.root / f"{patient.split('/', 1)[1]}.hea"]

    def records(self, patient: str) -> Iterator[Record]:
        yield self.read(self.root / patient.split("/", 1)[1], patient_id=patient)

    def read(self, path: str | Path, patient_id: str | None = None) -> Record:
        base = str(Path(path).with_suffix("")) if str(path).endswith(".hea") else str(path)
        signal, fs, lead = read_signal(base, self.lead)
        zones, beats, symbols = read_annotations(base, self.annotation, len(signal))
        name = Path(base).name
        return Record(
            record_id=name, patient_id=patient_id or f"{self.name}/{name}", dataset=self.name, fs=fs,
            signal=signal, zones=zones, beats=beats, beat_symbols=symbols, path=base, lead=lead,
        )


class Mitdb(WfdbRhythmDatabase):
    name, subdir = "mitdb", "mitdb"


class Afdb(WfdbRhythmDatabase):
    name, subdir = "afdb", "afdb"


class Ltafdb(WfdbRhythmDatabase):
    name, subdir = "ltafdb", "ltafdb"


class Cpsc2021(WfdbRhythmDatabase):
    name, subdir = "cpsc2021", "cpsc2021"
