"""MIT-BIH-style WFDB databases: MITDB, AFDB, LTAFDB, CPSC 2021 (rhythm aux notes), and
AFTDB and AFPDB (whole-record rhythm, beats in `.qrs`).

All share one format: multi-lead records at their own rate (360/250/128/200 Hz), '+'
annotations whose aux notes ('(N', '(AFIB', '(AFL', ...) open a rhythm that lasts
until the next note (CPSC 2021 also closes with ')'). Each record counts as a patient,
except in AFPDB (a subject is a record pair and its continuations).

`lead`: an index or a name picks one lead; "both" gives every lead of a record as its
own Record (`<record>:<lead>`), two views of one patient that always share a split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import DataError
from .base import Dataset, Source, register_dataset
from .record import AFIB, NSR, Record, Zone
from .wfdb_io import open_header, read_annotations, read_signal

ALL_LEADS = "both"


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
        for hea in self.record_paths(patient):
            yield from self.read_leads(hea, patient_id=patient)

    def read_leads(self, path: str | Path, patient_id: str | None = None) -> Iterator[Record]:
        """The record once, or once per lead with lead="both"."""
        if self.lead != ALL_LEADS:
            yield self.read(path, patient_id, self.lead)
            return
        _, header, _, _, _ = open_header(path, 0)
        flat = 0
        for k in range(header.n_sig):
            try:
                rec = self.read(path, patient_id, k)
            except DataError as exc:
                # A lead that is off (flat) is left out when the other lead can be read
                # (AFPDB n17 has one); a record with no readable lead is still an error.
                if exc.reason.startswith("flat-line") and flat < header.n_sig - 1:
                    flat += 1
                    continue
                raise
            rec.record_id = f"{rec.record_id}:{rec.lead or k}"
            yield rec

    def read(self, path: str | Path, patient_id: str | None = None, lead: int | str | None = None) -> Record:
        """One lead of a record: `lead`, else the dataset's lead (the first where that is "both")."""
        base = str(Path(path).with_suffix("")) if str(path).endswith(".hea") else str(path)
        if lead is None and self.lead != ALL_LEADS:
            lead = self.lead
        signal, fs, lead_name = read_signal(base, lead)
        zones, beats, symbols = read_annotations(base, self.annotation, len(signal))
        zones = self.record_zones(zones, len(signal))
        name = Path(base).name
        return Record(
            record_id=name, patient_id=patient_id or f"{self.name}/{name}", dataset=self.name, fs=fs,
            signal=signal, zones=zones, beats=beats, beat_symbols=symbols, path=base, lead=lead_name,
        )

    def record_zones(self, annotated: list[Zone], n: int) -> list[Zone]:
        """The rhythm zones of a record of `n` samples, from those its annotations give;
        databases whose labels live elsewhere (the whole record, the header) override it."""
        return annotated


@register_dataset
class Mitdb(WfdbRhythmDatabase):
    name, subdir = "mitdb", "mitdb"
    source = Source("mitdb", "1.0.0", "mitdb")


@register_dataset
class Afdb(WfdbRhythmDatabase):
    name, subdir = "afdb", "afdb"
    source = Source("afdb", "1.0.0", "afdb")


@register_dataset
class Ltafdb(WfdbRhythmDatabase):
    name, subdir = "ltafdb", "ltafdb"
    source = Source("ltafdb", "1.0.0", "ltafdb")


@register_dataset
class Cpsc2021(WfdbRhythmDatabase):
    name, subdir = "cpsc2021", "cpsc2021"
    source = Source("cpsc2021", "1.0.0", "cpsc2021")

    def record_zones(self, annotated: list[Zone], n: int) -> list[Zone]:
        # CPSC 2021 writes rhythm notes only where AF or flutter occurs; a record without
        # any is a non-AF record (its header says "non atrial fibrillation").
        return annotated or [Zone(0, n - 1, NSR, "(N no rhythm note)")]


@register_dataset
class Aftdb(WfdbRhythmDatabase):
    """AF Termination Challenge: 80 one-minute Holter excerpts (128 Hz, 2 leads), every one
    in atrial fibrillation (no rhythm file: the whole record is AF); beats in `.qrs`. The
    database gives no subject ids, so each record counts as a patient."""

    name, subdir, annotation = "aftdb", "aftdb", "qrs"
    source = Source("aftdb", "1.0.0", "aftdb")

    def record_zones(self, annotated: list[Zone], n: int) -> list[Zone]:
        return [Zone(0, n - 1, AFIB, "(AFIB whole record")]


@register_dataset
class Afpdb(WfdbRhythmDatabase):
    """PAF Prediction Challenge: 30-min and 5-min two-lead Holter excerpts (128 Hz), none
    with AF inside ('n' subjects never have PAF, 'p' subjects away from an episode). There
    are no rhythm annotations; each record is labelled N (sinus rhythm with whatever ectopy
    it holds), which the rhythm task counts as non-AF 'normal'. A subject is a record pair
    and its continuations (n01, n02, n01c, n02c): one patient id, so one split."""

    name, subdir, annotation = "afpdb", "afpdb", "qrs"
    # The 't' records are the challenge's unlabelled test set: no subject grouping, so not read.
    source = Source("afpdb", "1.0.0", "afpdb", select=lambda p: not p.rsplit("/", 1)[-1].startswith("t"))

    def record_zones(self, annotated: list[Zone], n: int) -> list[Zone]:
        return [Zone(0, n - 1, NSR, "(N whole record, non-AF Holter)")]

    @staticmethod
    def subject(record: str) -> str:
        stem = record.rstrip("c")
        if len(stem) < 2 or not stem[1:].isdigit() or stem[0] not in "np":
            raise ValueError(record)
        first = (int(stem[1:]) - 1) // 2 * 2 + 1
        return f"{stem[0]}{first:02d}-{first + 1:02d}"

    def _subjects(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self._record_names():
            try:
                out.setdefault(f"{self.name}/{self.subject(Path(name).name)}", []).append(name)
            except ValueError:
                continue  # not an AFPDB training record name (e.g. the unlabelled t* records)
        return out

    def patients(self) -> list[str]:
        return sorted(self._subjects())

    def record_paths(self, patient: str) -> list[Path]:
        names = self._subjects().get(patient)
        if not names:
            raise DataError(self.root, f"subject {patient} not found")
        main = sorted(n for n in names if not n.endswith("c"))
        if len(main) != 2:
            missing = patient.split("/")[1]
            raise DataError(self.root / f"{main[0] if main else missing}.hea",
                            f"record pair of subject {missing} incomplete: found {main or 'none'}, expected two "
                            "records in the same folder")
        return [self.root / f"{n}.hea" for n in sorted(names)]
