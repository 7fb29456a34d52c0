"""Building a window store (windows/schema.py describes its layout): patients read in
parallel, one finished patient renamed into place at a time, shards joined by `merge_store`.
A killed build is resumed by running the same command again."""

from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..datasets import DATASETS, WfdbRhythmDatabase, open_dataset
from ..datasets.record import RHYTHM_LABELS
from ..datasets.split import SPLITS, assign_split
from ..errors import DataError, TinyRhythmError
from ..paths import write_json_atomic
from ..tasks import get_task
from .labelling import make_windows
from .schema import ARRAYS, FORMAT_VERSION, BuildConfig, shard_name, shard_of


def _part_name(patient_id: str) -> str:
    return patient_id.replace("/", "__") + ".npz"


# One opened dataset per worker process: opening CinC reads REFERENCE.csv once, not per patient.
_OPEN: dict = {}


def _dataset(name: str, root: str | None, lead):
    # Keyed by the data root in force too: a long-lived process (the API, in-process CLI calls)
    # may point TINYRHYTHM_DATA elsewhere between builds.
    key = (name, root, lead, os.environ.get("TINYRHYTHM_DATA"))
    if key not in _OPEN:
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
