"""Reading one record by path, whatever the dataset, and summarising datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .datasets import DATASETS, open_dataset
from .datasets.icentia11k import read_original_labels
from .datasets.record import RHYTHM_LABELS, Record
from .datasets.wfdb_io import read_signal
from .datasets.wfdb_rhythm import WfdbRhythmDatabase
from .errors import DataError
from .windows.labelling import WindowConfig, make_windows

def read_record(path: str | Path, lead: int | str | None = None) -> Record:
    """A WFDB record (.hea or base name) of any supported dataset, chosen by its name and folder."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".hea", ".dat", ".mat", ".atr") else p
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise DataError(hea, "header file not found")
    for cls in DATASETS.values():  # a reader recognises its own records by their names and folders
        rec = cls.read_named(base)
        if rec is not None:
            return rec
    db = _GenericWfdb(base.parent, lead=lead)
    if not base.with_suffix(".atr").is_file():
        db.annotation = None
    return db.read(base)


class _GenericWfdb(WfdbRhythmDatabase):
    name = "wfdb"

    def read(self, path, patient_id=None, lead=None):
        if self.annotation is None:
            signal, fs, lead = read_signal(path, self.lead if lead is None else lead)
            name = Path(path).name
            return Record(record_id=name, patient_id=f"wfdb/{name}", dataset="wfdb", fs=fs, signal=signal,
                          path=str(path), lead=lead)
        return super().read(path, patient_id, lead)


def describe_record(rec: Record) -> dict:
    return {
        "record": rec.record_id, "patient": rec.patient_id, "dataset": rec.dataset, "fs": rec.fs,
        "samples": int(len(rec.signal)), "duration_s": round(rec.duration_s, 3), "lead": rec.lead,
        "label": rec.label, "beats": dict(Counter(rec.beat_symbols.tolist())),
        "zones": [{"start": z.start, "end": z.end, "label": z.label} for z in rec.zones],
    }


def describe_label_file(path: str | Path) -> dict:
    segments = read_original_labels(path)
    zones = Counter(z.label for zs, _, _ in segments for z in zs)
    beats = Counter(s for _, _, sym in segments for s in sym.tolist())
    return {"file": str(path), "segments": len(segments), "zones": dict(zones), "beats": dict(beats)}


def summarize(name: str, window: WindowConfig | None = None, root=None) -> dict:
    """records, patients, record_labels and, given a window config, windows per rhythm label."""
    ds = open_dataset(name, root)
    out = {"dataset": name, "root": str(ds.root), "records": ds.num_records(), "patients": len(ds.patients()),
           "record_labels": ds.record_labels()}
    if window is not None:
        counts: Counter[str] = Counter()
        for patient in ds.patients():
            for rec in ds.records(patient):
                _, labels, _ = make_windows(rec, window, unzoned_noise=ds.unzoned_noise)
                counts.update(RHYTHM_LABELS[k] if k >= 0 else "unlabelled" for k in labels.tolist())
        out["window"] = window.to_dict()
        out["windows"] = dict(sorted(counts.items()))
    return out


__all__ = ["read_record", "describe_record", "describe_label_file", "summarize", "DATASETS"]
