"""Icentia11k (Tan et al. 2019): 11,000 patients, 250 Hz single-lead Holter ECG.

Two releases hold the same labels:

* PhysioNet WFDB (`pXX/pXXXXX/pXXXXX_sYY.{hea,dat,atr}`): beats N/S/V/Q, rhythm zones
  opened by '+' notes `(N`, `(AFIB`, `(AFL` and closed by `)`.
* The original pickles (`{pid:05d}_batched.pkl.gz`, `{pid:05d}_batched_lbls.pkl.gz`):
  per segment, beat sample indices grouped by beat type (`btype`) and by rhythm type
  (`rtype`: 0 null, 1 end, 2 noise, 3 NSR, 4 AFib, 5 AFlutter).

Both readers give identical zones: a zone is a run of consecutive beats with the same
rhythm (NSR/AF/AFL), from its first to its last beat. Beats of rtype 0/1/2 lie in no
zone and are undefined ('Q') beats; that is where the noise is. Which of those
unzoned spans become the *noise class* is decided by the window-labelling rule in
`tinyrhythm.windows.labelling` (unzoned and dominated by Q beats), the same for both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from . import safe_pickle
from .base import Dataset, Source, register_dataset
from .record import AFIB, AFL, NSR, Record, Zone, check_signal
from .wfdb_io import read_annotations, read_signal

SEGMENT_LENGTH = 1_048_577
GAIN = 74.36482269503546  # adu/mV: original float32 = WFDB digital value / GAIN
FS = 250.0
RTYPE_LABELS = {3: NSR, 4: AFIB, 5: AFL}
RTYPE_NOTES = {NSR: "(N", AFIB: "(AFIB", AFL: "(AFL"}
BTYPE_SYMBOLS = {0: "Q", 1: "N", 2: "S", 3: "a", 4: "V"}

_PATIENT_DIR = re.compile(r"^p(\d{5})$")
_SEGMENT = re.compile(r"^p(\d{5})_s(\d{2})\.hea$")


def patient_key(pid: int | str) -> str:
    return f"icentia11k/{int(pid):05d}"


@register_dataset
class Icentia11k(Dataset):
    """The PhysioNet WFDB release."""

    name = "icentia11k"
    subdir = "icentia11k/wfdb"
    default_task = "study3"
    source = Source("icentia11k-continuous-ecg", "1.0", "icentia11k/wfdb",
                    select=lambda p: p.startswith("p") and p.endswith((".hea", ".dat", ".atr")))
    native_fs = FS
    unzoned_noise = True

    @classmethod
    def read_named(cls, base: Path) -> Record | None:
        """Records are named pPPPPP_sSS, in icentia11k/wfdb/pXX/pPPPPP/."""
        if not re.match(r"^p\d{5}_s\d{2}$", base.name):
            return None
        return cls(base.parent.parent.parent).read(base.with_suffix(".hea"))
    def validate(self) -> None:
        if not self._patient_dirs():
            raise DataError(self.root, "not an Icentia11k WFDB folder: no pXX/pXXXXX/pXXXXX_sYY.hea records inside")

    def _patient_dirs(self) -> dict[str, Path]:
        dirs = {}
        for group in sorted(self.root.glob("p[0-9][0-9]")):
            for d in sorted(group.iterdir()):
                m = _PATIENT_DIR.match(d.name)
                if m and d.is_dir() and any(d.glob(f"{d.name}_s*.hea")):
                    dirs[patient_key(m.group(1))] = d
        return dirs

    def patients(self) -> list[str]:
        return list(self._patient_dirs())

    def record_paths(self, patient: str) -> list[Path]:
        pid = int(patient.split("/")[-1])
        d = self.root / f"p{pid // 1000:02d}" / f"p{pid:05d}"
        paths = sorted(p for p in d.glob("*.hea") if _SEGMENT.match(p.name))
        if not paths:
            raise DataError(d, f"patient {patient} not found")
        return paths

    def records(self, patient: str) -> Iterator[Record]:
        for hea in self.record_paths(patient):
            yield self.read(hea)

    def read(self, path: str | Path) -> Record:
        path = Path(path)
        base = str(path.with_suffix(""))
        m = _SEGMENT.match(Path(base).name + ".hea")
        if not m:
            raise DataError(path, "not an Icentia11k segment name (expected pXXXXX_sYY)")
        signal, fs, lead = read_signal(base)
        self.check_fs(fs, base + ".hea")
        zones, beats, symbols = read_annotations(base, "atr", len(signal))
        return Record(
            record_id=Path(base).name, patient_id=patient_key(m.group(1)), dataset=self.name, fs=fs,
            signal=signal, zones=zones, beats=beats, beat_symbols=symbols, path=base, lead=lead,
        )

    def record_labels(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for patient in self.patients():
            for hea in self.record_paths(patient):
                base = str(hea.with_suffix(""))
                zones, _, _ = read_annotations(base, "atr", SEGMENT_LENGTH)
                for label in {z.label for z in zones}:
                    counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))


def segment_labels(entry: dict, path: str, segment: int) -> tuple[list[Zone], np.ndarray, np.ndarray]:
    """Zones, beats and beat symbols of one segment of an original-release label file."""
    try:
        btype = [np.asarray(a, dtype=np.int64).ravel() for a in entry["btype"]]
        rtype = [np.asarray(a, dtype=np.int64).ravel() for a in entry["rtype"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"segment {segment}: not an Icentia11k label entry ({exc})") from None
    if len(btype) != 5 or len(rtype) != 6:
        raise DataError(path, f"segment {segment}: expected 5 btype and 6 rtype arrays, got {len(btype)} and {len(rtype)}")
    beats = np.concatenate(btype)
    symbols = np.concatenate([np.full(len(a), BTYPE_SYMBOLS[k], dtype="<U1") for k, a in enumerate(btype)])
    order = np.argsort(beats, kind="stable")
    beats, symbols = beats[order], symbols[order]
    if len(beats) and (beats[0] < 0 or beats[-1] >= SEGMENT_LENGTH):
        raise DataError(path, f"segment {segment}: beat index outside the {SEGMENT_LENGTH}-sample segment")

    rb = np.concatenate(rtype)
    rl = np.concatenate([np.full(len(a), k, dtype=np.int64) for k, a in enumerate(rtype)])
    order = np.argsort(rb, kind="stable")
    rb, rl = rb[order], rl[order]
    zones: list[Zone] = []
    start = 0
    for i in range(1, len(rb) + 1):
        if i == len(rb) or rl[i] != rl[start]:
            label = RTYPE_LABELS.get(int(rl[start]))
            if label is not None:
                zones.append(Zone(int(rb[start]), int(rb[i - 1]), label, RTYPE_NOTES[label]))
            start = i
    return zones, beats, symbols


def read_original_labels(path: str | Path) -> list[tuple[list[Zone], np.ndarray, np.ndarray]]:
    """Per segment (zones, beats, beat symbols) of a `*_batched_lbls.pkl.gz` file."""
    path = str(path)
    data = safe_pickle.load(path)
    if not isinstance(data, (list, tuple)) or not all(isinstance(e, dict) for e in data):
        raise DataError(path, "not an Icentia11k label file (expected a list of per-segment dicts)")
    return [segment_labels(e, path, i) for i, e in enumerate(data)]


@register_dataset
class Icentia11kOriginal(Dataset):
    """The original release (`*_batched.pkl.gz` signal + `*_batched_lbls.pkl.gz` labels)."""

    name = "icentia11k-original"
    subdir = "icentia11k/original"
    default_task = "study3"
    native_fs = FS
    unzoned_noise = True

    def validate(self) -> None:
        if not list(self.root.glob("[0-9][0-9][0-9][0-9][0-9]_batched_lbls.pkl.gz")):
            raise DataError(self.root, "not an Icentia11k original-release folder: no NNNNN_batched_lbls.pkl.gz files")

    def patients(self) -> list[str]:
        return [patient_key(p.name[:5]) for p in sorted(self.root.glob("[0-9][0-9][0-9][0-9][0-9]_batched.pkl.gz"))]

    def labelled_patients(self) -> list[str]:
        return [patient_key(p.name[:5]) for p in sorted(self.root.glob("[0-9][0-9][0-9][0-9][0-9]_batched_lbls.pkl.gz"))]

    def _paths(self, patient: str) -> tuple[Path, Path]:
        pid = patient.split("/")[-1]
        return self.root / f"{pid}_batched.pkl.gz", self.root / f"{pid}_batched_lbls.pkl.gz"

    def record_paths(self, patient: str) -> list[Path]:
        return [self._paths(patient)[0]]

    def num_records(self) -> int:
        return sum(len(read_original_labels(self._paths(p)[1])) for p in self.patients())

    def records(self, patient: str, segments: list[int] | None = None) -> Iterator[Record]:
        sig_path, lbl_path = self._paths(patient)
        if not sig_path.is_file():
            raise DataError(sig_path, "signal file not found (the label file has no signal beside it)")
        labels = read_original_labels(lbl_path)
        signals = safe_pickle.load(sig_path)
        if not isinstance(signals, np.ndarray) or signals.ndim != 2 or signals.shape[1] != SEGMENT_LENGTH:
            shape = getattr(signals, "shape", type(signals).__name__)
            raise DataError(sig_path, f"expected a (segments, {SEGMENT_LENGTH}) array, got {shape}")
        if len(signals) != len(labels):
            raise DataError(lbl_path, f"label file has {len(labels)} segments but {sig_path.name} has {len(signals)}: wrong label file")
        pid = patient.split("/")[-1]
        for seg in segments if segments is not None else range(len(signals)):
            zones, beats, symbols = labels[seg]
            where = f"{sig_path}[segment {seg}]"
            yield Record(
                record_id=f"p{pid}_s{seg:02d}", patient_id=patient, dataset=self.name, fs=FS,
                signal=check_signal(signals[seg], where), zones=zones, beats=beats, beat_symbols=symbols,
                path=where,
            )

    def record_labels(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for patient in self.labelled_patients():
            for zones, _, _ in read_original_labels(self._paths(patient)[1]):
                for label in {z.label for z in zones}:
                    counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))
