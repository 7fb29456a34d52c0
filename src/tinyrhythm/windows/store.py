"""The windowed dataset store: sharded numpy memmaps plus one JSON manifest.

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

import functools
import hashlib
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datasets import open_dataset
from ..datasets.record import RHYTHM_LABELS
from ..errors import DataError, TinyRhythmError
from ..paths import write_atomic
from ..tasks import get_task
from .labelling import WindowConfig, make_windows
from .split import FRACTIONS, SPLITS, assign_split

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


def write_json_atomic(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _part_name(patient_id: str) -> str:
    return patient_id.replace("/", "__") + ".npz"


# One opened dataset per worker process: opening CinC reads REFERENCE.csv once, not per patient.
_OPEN: dict = {}


def _dataset(name: str, root: str | None, lead):
    # Keyed by the data root in force too: a long-lived process (the API, in-process CLI calls)
    # may point TINYRHYTHM_DATA elsewhere between builds.
    key = (name, root, lead, os.environ.get("TINYRHYTHM_DATA"))
    if key not in _OPEN:
        from ..datasets import DATASETS, WfdbRhythmDatabase

        # A lead choice applies to the multi-lead databases of a mixed store, not to the
        # single-lead ones beside them.
        multi = issubclass(DATASETS.get(name, object), WfdbRhythmDatabase)
        _OPEN[key] = open_dataset(name, root, lead=lead if multi else None)
    return _OPEN[key]


def _build_patient(job: tuple) -> dict:
    """Window every record of one patient and write the part file. Runs in a worker."""
    name, root, lead, patient, cfg_dict, part_path, skip_bad = job
    cfg = BuildConfig.from_dict(cfg_dict)
    task = get_task(cfg.task)
    class_of_rhythm = np.array([task.class_index(r) for r in RHYTHM_LABELS] + [-1], dtype=np.int8)
    ds = _dataset(name, root, lead)
    out = {k: [] for k in ("windows", "labels", "rhythm", "record", "start", "split")}
    records, skipped = [], []
    try:
        for rec in ds.records(patient):
            w, rhythm, starts = make_windows(rec, cfg.window, unzoned_noise=ds.unzoned_noise)
            labels = class_of_rhythm[rhythm]  # -1 (left out) indexes the trailing -1
            keep = labels >= 0
            out["windows"].append(w[keep])
            out["labels"].append(labels[keep])
            out["rhythm"].append(rhythm[keep])
            out["start"].append(starts[keep])
            out["record"].append(np.full(int(keep.sum()), len(records), dtype=np.int32))
            unit = patient if cfg.split_by == "patient" else f"{patient}/{rec.record_id}"
            out["split"].append(np.full(int(keep.sum()), SPLITS.index(assign_split(unit, cfg.split_seed)), dtype=np.int8))
            records.append(rec.record_id)
    except DataError as exc:
        if not skip_bad:
            raise
        skipped.append(str(exc))
    arrays = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in out.items()}
    if not out["windows"]:
        arrays["windows"] = np.zeros((0, cfg.window.length), np.float32)
    tmp = part_path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, windows=arrays["windows"].astype(np.float32), labels=arrays["labels"].astype(np.int8),
                 rhythm=arrays["rhythm"].astype(np.int8), record=arrays["record"].astype(np.int32),
                 start=arrays["start"].astype(np.int64), split=arrays["split"].astype(np.int8),
                 meta=np.frombuffer(json.dumps({"patient": patient, "records": records, "skipped": skipped}).encode(), np.uint8))
    # No fsync per part: a killed process loses nothing the page cache holds, and
    # thousands of fsyncs would dominate the build of short records (CinC).
    os.replace(tmp, part_path)
    return {"patient": patient, "windows": int(len(arrays["labels"]))}


def _progress(iterable, total: int, desc: str, quiet: bool):
    if quiet:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="patient", file=sys.stderr, dynamic_ncols=True)


def _collect_patients(cfg: BuildConfig, roots: dict[str, str | None]) -> list[tuple[str, str]]:
    pairs = []
    for name in cfg.datasets:
        ds = _dataset(name, roots.get(name), cfg.lead)
        patients = ds.patients()
        if cfg.max_patients is not None:
            patients = patients[: cfg.max_patients]
        pairs.extend((name, p) for p in patients)
    return pairs


def _consolidate(shard_dir: Path, parts: list[Path], cfg: BuildConfig, classes: list[str]) -> dict:
    """Join a shard's part files into its arrays, then write shard.json last."""
    n = 0
    metas = []
    for p in parts:
        with np.load(p, allow_pickle=False) as z:
            n += len(z["labels"])
            metas.append(json.loads(bytes(z["meta"]).decode()))
    length = cfg.window.length
    tmp = {k: shard_dir / f"{k}.npy.tmp" for k in ARRAYS}
    dtypes = {"labels": np.int8, "rhythm": np.int8, "split": np.int8, "patient": np.int32, "record": np.int32, "start": np.int64}
    arr = {"windows": np.lib.format.open_memmap(tmp["windows"], mode="w+", dtype=np.float32, shape=(n, length))}
    for k, dt in dtypes.items():
        arr[k] = np.lib.format.open_memmap(tmp[k], mode="w+", dtype=dt, shape=(n,))
    records: list[str] = []
    patients: list[str] = []
    skipped: list[str] = []
    at = 0
    for pi, (p, meta) in enumerate(zip(parts, metas)):
        with np.load(p, allow_pickle=False) as z:
            m = len(z["labels"])
            arr["windows"][at : at + m] = z["windows"]
            for k in ("labels", "rhythm", "start", "split"):
                arr[k][at : at + m] = z[k]
            arr["patient"][at : at + m] = pi
            arr["record"][at : at + m] = z["record"] + len(records)
        patients.append(meta["patient"])
        records.extend(meta["records"])
        skipped.extend(meta["skipped"])
        at += m
    for k, a in arr.items():
        a.flush()
        del a
    arr.clear()
    for k in ARRAYS:
        os.replace(tmp[k], shard_dir / f"{k}.npy")
    labels = np.load(shard_dir / "labels.npy", allow_pickle=False)
    split = np.load(shard_dir / "split.npy", allow_pickle=False)
    counts = {s: {c: int(((split == si) & (labels == ci)).sum()) for ci, c in enumerate(classes)} for si, s in enumerate(SPLITS)}
    patient = np.load(shard_dir / "patient.npy", allow_pickle=False)
    patients_per_split = {s: int(len(np.unique(patient[split == si]))) for si, s in enumerate(SPLITS)}
    info = {"config_hash": cfg.digest(), "windows": n, "patients": patients, "records": records,
            "skipped": skipped, "counts": counts, "patients_per_split": patients_per_split}
    write_json_atomic(shard_dir / "shard.json", info)
    shutil.rmtree(shard_dir / "parts", ignore_errors=True)
    return info


def _check_build_json(out: Path, cfg: BuildConfig) -> None:
    path = out / "build.json"
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing.get("config_hash") != cfg.digest():
            raise TinyRhythmError(f"{out}: store was started with another configuration ({existing.get('config_hash')} != {cfg.digest()}); use a new folder")
    else:
        write_json_atomic(path, {"config": cfg.to_dict(), "config_hash": cfg.digest()})


def build_store(out: str | os.PathLike, cfg: BuildConfig, *, shard: int | None = None, workers: int = 1,
                roots: dict[str, str | None] | None = None, skip_bad: bool = False, quiet: bool = False) -> dict | None:
    """Build (or resume) one shard, or all shards when `shard` is None.

    Returns the manifest when every shard is complete, else None.
    """
    out = Path(out)
    roots = roots or {}
    get_task(cfg.task)
    if shard is not None and not 0 <= shard < cfg.num_shards:
        raise TinyRhythmError(f"shard {shard} out of range for {cfg.num_shards} shards")
    pairs = _collect_patients(cfg, roots)  # fails on a missing or wrong dataset before anything is written
    if not pairs:
        raise TinyRhythmError(f"no patients found in {', '.join(cfg.datasets)}")
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _check_build_json(out, cfg)
        classes = list(get_task(cfg.task).classes)
        for i in range(cfg.num_shards) if shard is None else [shard]:
            shard_dir = out / shard_name(i, cfg.num_shards)
            if (shard_dir / "shard.json").is_file():
                continue
            parts_dir = shard_dir / "parts"
            parts_dir.mkdir(parents=True, exist_ok=True)
            for stale in parts_dir.glob("*.tmp"):
                stale.unlink()
            mine = sorted(p for p in pairs if shard_of(p[1], cfg.num_shards) == i)
            part_paths = [parts_dir / _part_name(p) for _, p in mine]
            todo = [(n, roots.get(n), cfg.lead, p, cfg.to_dict(), str(pp), skip_bad)
                    for (n, p), pp in zip(mine, part_paths) if not pp.is_file()]
            desc = f"{shard_name(i, cfg.num_shards)}"
            if workers > 1 and len(todo) > 1:
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    for _ in _progress(pool.map(_build_patient, todo, chunksize=4), len(todo), desc, quiet):
                        pass
            else:
                for job in _progress(todo, len(todo), desc, quiet):
                    _build_patient(job)
            _consolidate(shard_dir, part_paths, cfg, classes)
    except TinyRhythmError:
        if fresh:  # a store this run started and could not finish is removed, not left half-written
            shutil.rmtree(out, ignore_errors=True)
        raise
    return merge_store(out, missing_ok=True)


def merge_store(out: str | os.PathLike, missing_ok: bool = False) -> dict | None:
    """Join complete shards into manifest.json (atomically). None if shards are missing and missing_ok."""
    out = Path(out)
    build = out / "build.json"
    if not build.is_file():
        raise DataError(out, "not a tinyrhythm store (build.json missing)")
    meta = json.loads(build.read_text())
    cfg = BuildConfig.from_dict(meta["config"])
    task = get_task(cfg.task)
    shards, missing = [], []
    for i in range(cfg.num_shards):
        path = out / shard_name(i, cfg.num_shards) / "shard.json"
        if not path.is_file():
            missing.append(shard_name(i, cfg.num_shards))
            continue
        info = json.loads(path.read_text())
        if info["config_hash"] != cfg.digest():
            raise DataError(path, "shard was built with another configuration")
        shards.append((shard_name(i, cfg.num_shards), info))
    if missing:
        if missing_ok:
            return None
        raise DataError(out, f"incomplete store: shards not built yet: {', '.join(missing)}")
    counts = {s: {c: sum(info["counts"][s][c] for _, info in shards) for c in task.classes} for s in SPLITS}
    manifest = {
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "config_hash": cfg.digest(),
        "task": task.to_dict(),
        "classes": list(task.classes),
        "sources": [{"dataset": d} for d in cfg.datasets],
        "fs": cfg.window.fs,
        "window_length": cfg.window.length,
        "shards": [{"name": n, "windows": info["windows"], "patients": len(info["patients"])} for n, info in shards],
        "windows": sum(info["windows"] for _, info in shards),
        "patients": sum(len(info["patients"]) for _, info in shards),
        "patients_per_split": {s: sum(info["patients_per_split"][s] for _, info in shards) for s in SPLITS},
        "counts": counts,
        "skipped": [s for _, info in shards for s in info["skipped"]],
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def _load(path: Path, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "store file missing (an incomplete or damaged store: build it again)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"damaged store file ({str(exc).splitlines()[0][:100]})") from None


class WindowStore:
    """Read a built store: memory-mapped windows, in-RAM labels/splits (1 byte each)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            why = "incomplete store: run the build again to finish it" if (self.path / "build.json").is_file() else "not a tinyrhythm store"
            raise DataError(self.path, f"{why} (manifest.json missing)")
        try:
            self.manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(mpath, f"malformed store manifest (not JSON: {str(exc)[:100]})") from None
        m = self.manifest
        if (not isinstance(m, dict) or not isinstance(m.get("classes"), list) or not isinstance(m.get("shards"), list)
                or not all(isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("windows"), int)
                           and Path(s["name"]).name == s["name"] not in ("", ".", "..") for s in m["shards"])):
            raise DataError(mpath, "malformed store manifest (classes, shards with name and windows expected)")
        self.classes: list[str] = self.manifest["classes"]
        self._windows, labels, splits, self.offsets = [], [], [], [0]
        for s in self.manifest["shards"]:
            d = self.path / s["name"]
            w = _load(d / "windows.npy", mmap=True)
            if w.ndim != 2 or len(w) != s["windows"]:
                raise DataError(d / "windows.npy", f"holds {len(w)} windows of shape {w.shape[1:]}, manifest says {s['windows']}")
            self._windows.append(w)
            for name, out in (("labels", labels), ("split", splits)):
                a = _load(d / f"{name}.npy")
                if a.shape != (len(w),):
                    raise DataError(d / f"{name}.npy", f"holds {a.shape} values for {len(w)} windows")
                out.append(a)
            self.offsets.append(self.offsets[-1] + len(w))
        self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int8)
        self.splits = np.concatenate(splits) if splits else np.zeros(0, np.int8)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _per_window(self, name: str) -> np.ndarray:
        return np.concatenate([np.load(self.path / s["name"] / f"{name}.npy", allow_pickle=False) for s in self.manifest["shards"]])

    @functools.cache
    def record_keys(self) -> np.ndarray:
        """A global record number per window (records of different shards never collide)."""
        keys, base = [], 0
        for s in self.manifest["shards"]:
            d = self.path / s["name"]
            keys.append(np.load(d / "record.npy", allow_pickle=False).astype(np.int64) + base)
            base += len(json.loads((d / "shard.json").read_text())["records"])
        return np.concatenate(keys) if keys else np.zeros(0, np.int64)

    def record_names(self) -> list[str]:
        """Record names in record-index order (the `record` array indexes them)."""
        return [r for s in self.manifest["shards"] for r in json.loads((self.path / s["name"] / "shard.json").read_text())["records"]]

    @functools.cache
    def starts(self) -> np.ndarray:
        """First sample of each window (read once: validation asks every epoch)."""
        return self._per_window("start")

    @property
    def fs(self) -> float:
        return float(self.manifest["fs"])

    @property
    def window_length(self) -> int:
        return int(self.manifest["window_length"])

    def indices(self, split: str) -> np.ndarray:
        """Window indices of a split ("train", "val", "test")."""
        return np.flatnonzero(self.splits == SPLITS.index(split))

    def window(self, i: int) -> np.ndarray:
        """One window's samples (mV, the store's rate), read from its shard's memory map."""
        s = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return np.asarray(self._windows[s][i - self.offsets[s]])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.window(i), int(self.labels[i])

    def batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows and labels for global indices (read in index order per shard)."""
        idx = np.asarray(idx, dtype=np.int64)
        x = np.empty((len(idx), self.window_length), np.float32)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            local = idx[sel] - self.offsets[s]
            order = np.argsort(local)
            x[sel[order]] = self._windows[s][local[order]]
        return x, self.labels[idx].astype(np.int64)

    def class_counts(self, split: str) -> np.ndarray:
        """Windows per class in a split."""
        return np.bincount(self.labels[self.indices(split)], minlength=len(self.classes))

    @functools.cache
    def dataset_index(self) -> tuple[np.ndarray, list[str]]:
        """(dataset number per window, dataset names), from the global patient ids."""
        names = [s["dataset"] for s in self.manifest["sources"]]
        out = []
        for s in self.manifest["shards"]:
            d = self.path / s["name"]
            pats = json.loads((d / "shard.json").read_text())["patients"]
            codes = np.array([names.index(p.split("/", 1)[0]) if p.split("/", 1)[0] in names else -1 for p in pats] or [0],
                             dtype=np.int16)
            out.append(codes[np.load(d / "patient.npy", allow_pickle=False)])
        return (np.concatenate(out) if out else np.zeros(0, np.int16)), names

    def sample_weights(self, split: str = "train", dataset_weights: dict[str, float] | None = None) -> np.ndarray:
        """Per-window weights (for the split's windows, in `indices(split)` order) that make
        every class equally likely under weighted sampling (with one dataset: 1 / class count).

        A store of several datasets is balanced over datasets too: within a class, each
        dataset that has the class gets a share in proportion to `dataset_weights` (1 for
        each dataset not named), spread evenly over its windows."""
        idx = self.indices(split)
        labels = self.labels[idx]
        sources = [s["dataset"] for s in self.manifest["sources"]]
        unknown = set(dataset_weights or {}) - set(sources)
        if unknown:
            raise TinyRhythmError(f"dataset_weights names datasets not in the store: {', '.join(sorted(unknown))}")
        ds = self.dataset_index()[0][idx]
        w_ds = np.array([float((dataset_weights or {}).get(n, 1.0)) for n in sources])
        if (w_ds < 0).any() or not np.isfinite(w_ds).all():
            raise TinyRhythmError("dataset_weights must be finite and non-negative")
        n_cd = np.zeros((len(self.classes), len(sources)))
        np.add.at(n_cd, (labels, ds), 1)
        share = np.where(n_cd > 0, w_ds[None, :], 0.0)
        share = np.divide(share, share.sum(1, keepdims=True), out=np.zeros_like(share), where=share.sum(1, keepdims=True) > 0)
        per_cd = np.divide(share, n_cd, out=np.zeros_like(share), where=n_cd > 0)
        return per_cd[labels, ds]

    def torch_dataset(self, split: str):
        """A torch Dataset over one split, reading windows from the memory map."""
        import torch

        store, idx = self, self.indices(split)

        class _Split(torch.utils.data.Dataset):
            def __len__(self):
                return len(idx)

            def __getitem__(self, k):
                x, y = store[int(idx[k])]
                return torch.from_numpy(np.array(x, dtype=np.float32)).unsqueeze(0), y

        return _Split()
