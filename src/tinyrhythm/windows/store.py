"""Reading a built window store (layout: windows/schema.py; building: windows/build.py)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from ..datasets.split import SPLITS
from ..errors import DataError, TinyRhythmError
# The names scripts import from here since before the split into schema, build and reader.
from ..paths import write_json_atomic  # noqa: F401
from .beats import detect_beats
from .build import build_store, merge_store  # noqa: F401
from .schema import BuildConfig  # noqa: F401


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

    @functools.cache
    def lead_partners(self) -> np.ndarray:
        """For each window, the global index of the same moment in the other lead of its record
        (a two-lead record stored as two views, `lead: "both"`), -1 where there is none: the same
        dataset, record name before ":" and first sample, exactly two views."""
        names = self.record_names()
        base = np.array([n.split(":", 1)[0] if ":" in n else "" for n in names] or [""])
        codes, base_id = np.unique(base, return_inverse=True)
        has = codes[base_id] != ""
        keys, starts, ds = self.record_keys(), self.starts().astype(np.int64), self.dataset_index()[0].astype(np.int64)
        out = np.full(len(self), -1, np.int64)
        cand = np.flatnonzero(has[keys]) if len(self) else np.zeros(0, np.int64)
        if not len(cand):
            return out
        # One integer per (dataset, record base name, start); a pair is two adjacent equal keys
        # that are not also equal to a third.
        key = (ds[cand] * (len(codes) + 1) + base_id[keys[cand]]) * (int(starts.max()) + 1) + starts[cand]
        order = np.argsort(key, kind="stable")
        k, c = key[order], cand[order]
        same = k[1:] == k[:-1]
        pair = same & np.r_[True, ~same[:-1]] & np.r_[~same[1:], True]
        pair &= keys[c[1:]] != keys[c[:-1]]
        i = np.flatnonzero(pair)
        out[c[i]], out[c[i + 1]] = c[i + 1], c[i]
        return out

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

    def sample_weights(self, split: str = "train", dataset_weights: dict[str, float] | None = None,
                       size_power: float = 0.0) -> np.ndarray:
        """Per-window weights (for the split's windows, in `indices(split)` order) that make
        every class equally likely under weighted sampling (with one dataset: 1 / class count).

        A store of several datasets is balanced over datasets too: within a class, each
        dataset that has the class gets a share in proportion to `dataset_weights` (1 for
        each dataset not named) times its window count of the class to the `size_power`,
        spread evenly over its windows. Power 0 gives every dataset the same share, 1 pools
        the windows, 0.5 lies between (temperature sampling): with power 0 a dataset holding
        two AF windows draws as many AF samples as one holding thousands."""
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
        if not (np.isfinite(size_power) and 0.0 <= size_power <= 1.0):
            raise TinyRhythmError(f"dataset size power {size_power!r} is not in [0, 1]")
        share = np.where(n_cd > 0, w_ds[None, :] * n_cd ** size_power, 0.0)
        share = np.divide(share, share.sum(1, keepdims=True), out=np.zeros_like(share), where=share.sum(1, keepdims=True) > 0)
        per_cd = np.divide(share, n_cd, out=np.zeros_like(share), where=n_cd > 0)
        return per_cd[labels, ds]

    def window_rates(self, idx: np.ndarray) -> np.ndarray:
        """Ventricular rate of each window in beats per minute: its R peaks (windows.beats) over
        its duration. A few ms a window, so computed for the windows asked for, not stored."""
        x, _ = self.batch(idx)
        return np.array([60.0 * len(detect_beats(w, self.fs)) * self.fs / len(w) for w in x])

    def slow_weights(self, weights: np.ndarray, split: str, cls: int, factor: float, bpm: float) -> np.ndarray:
        """`weights` (`sample_weights` of the split) with the class `cls` windows slower than `bpm`
        drawn `factor` times as often as its faster ones, within each dataset; every dataset's
        share of the class, and so the class balance, unchanged."""
        idx = self.indices(split)
        ds = self.dataset_index()[0][idx]
        mine = np.flatnonzero(self.labels[idx] == cls)
        slow = self.window_rates(idx[mine]) < bpm
        out = weights.astype(np.float64).copy()
        for d in np.unique(ds[mine]):
            sel = ds[mine] == d
            k = mine[sel]
            w = out[k] * np.where(slow[sel], factor, 1.0)
            out[k] = w * out[k].sum() / w.sum() if w.sum() > 0 else out[k]
        return out

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
