"""Pack a window store's training and validation windows into a few tens of MB, and unpack it.

A lent GPU machine receives only the checkout (64 MiB) and not ../shared, so a store of
several hundred MB has to travel small. Two facts make that lossless in practice:
consecutive windows of a record overlap (hop 128 of 513 samples), so each record's
signal is kept once and windows are re-cut from it; and the signal rounded to 1 uV in
int16 loses nothing a model sees (ECG recorders resolve 1-5 uV). Windows that are not
slices of their record's signal (zero-padded short records) travel verbatim.

    python scripts/pack_store.py pack STORE OUT_DIR [--splits train,val]
    python scripts/pack_store.py unpack OUT_DIR/pack.npz.xz STORE_OUT

Unpacking writes an ordinary store (float32 windows, the original manifest with the
packed splits' counts) that `TrainConfig.store` can name; `pack` checks the round trip.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import sys
from pathlib import Path

import numpy as np

UV = 1000.0  # int16 units per mV
PER_WINDOW = ("labels", "split", "patient", "record", "start", "rhythm")


def _cover(starts: np.ndarray, length: int) -> list[int]:
    """Positions (into sorted `starts`) of a small set of windows whose union covers them all."""
    chosen, end = [0], int(starts[0]) + length  # end: first sample not covered
    while True:
        j = int(np.searchsorted(starts, end - length, side="right"))  # first window not covered
        if j >= len(starts):
            return chosen
        k = max(j, int(np.searchsorted(starts, end, side="right")) - 1)  # reaches farthest without a gap
        chosen.append(k)
        end = int(starts[k]) + length


def pack(store_dir: Path, out_dir: Path, splits: list[str]) -> None:
    from tinyrhythm.windows.store import SPLITS, WindowStore

    store = WindowStore(store_dir)
    if len(store.manifest["shards"]) != 1:
        sys.exit(f"{store_dir}: packing handles one-shard stores only")
    shard = store.path / store.manifest["shards"][0]["name"]
    keep = np.isin(store.splits, [SPLITS.index(s) for s in splits])
    arrays = {k: np.load(shard / f"{k}.npy", allow_pickle=False)[keep] for k in PER_WINDOW}
    gidx = np.flatnonzero(keep)
    L = store.window_length
    raw = np.load(shard / "windows.npy", mmap_mode="r", allow_pickle=False)
    def q(x):
        return np.clip(np.round(np.asarray(x, np.float64) * UV), -32768, 32767).astype(np.int16)
    order = np.lexsort((arrays["start"], arrays["record"]))
    pieces, piece_meta, verbatim = [], [], []  # piece_meta: (record, start) of each kept run
    rec = arrays["record"][order]
    bounds = np.flatnonzero(np.diff(rec)) + 1
    for grp in np.split(order, bounds):
        starts = arrays["start"][grp].astype(np.int64)
        sig_start = starts[0]
        sig = np.zeros(starts[-1] + L - sig_start, np.int16)
        covered = np.zeros(len(sig), bool)
        for c in _cover(starts, L):
            w = q(raw[gidx[grp[c]]])
            sig[starts[c] - sig_start : starts[c] - sig_start + L] = w
            covered[starts[c] - sig_start : starts[c] - sig_start + L] = True
        for k, g in enumerate(grp):
            s = starts[k] - sig_start
            if not covered[s : s + L].all() or not np.array_equal(sig[s : s + L], q(raw[gidx[g]])):
                verbatim.append(g)
        pieces.append(sig)
        piece_meta.append((int(arrays["record"][grp[0]]), int(sig_start), len(sig)))
    verbatim = np.asarray(sorted(verbatim), np.int64)
    payload = {
        **{k: v for k, v in arrays.items()},
        "signal": np.concatenate(pieces),
        "piece": np.asarray(piece_meta, np.int64),
        "verbatim_index": verbatim,
        "verbatim": q(raw[gidx[verbatim]]) if len(verbatim) else np.zeros((0, L), np.int16),
        "manifest": np.frombuffer(json.dumps(store.manifest).encode(), np.uint8),
        "shard_json": np.frombuffer((shard / "shard.json").read_bytes(), np.uint8),
    }
    buf = io.BytesIO()
    np.savez(buf, **payload)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "pack.npz.xz"
    target.write_bytes(lzma.compress(buf.getvalue(), preset=6))
    print(f"{target}: {target.stat().st_size / 2**20:.1f} MiB for {keep.sum()} windows "
          f"({len(verbatim)} verbatim, {len(payload['signal']) / 1e6:.1f} M samples)")
    # Round trip: every packed window equals the original to 1 uV.
    back = unpack(target, out_dir / "check-store")
    got = WindowStore(back)
    rng = np.random.default_rng(0)
    probe = rng.choice(len(gidx), size=min(20000, len(gidx)), replace=False)
    x_new, y_new = got.batch(probe)
    x_old, y_old = store.batch(gidx[probe])
    err = np.abs(x_new - x_old).max()
    if err > 0.51 / UV or not np.array_equal(y_new, y_old):
        sys.exit(f"round trip failed: max error {err} mV")
    print(f"round trip on {len(probe)} windows: max error {err * 1000:.3f} uV")
    import shutil

    shutil.rmtree(back)


def unpack(pack_file: Path, out: Path) -> Path:
    data = np.load(io.BytesIO(lzma.decompress(Path(pack_file).read_bytes())), allow_pickle=False)
    manifest = json.loads(data["manifest"].tobytes())
    L = int(manifest["window_length"])
    n = len(data["labels"])
    windows = np.empty((n, L), np.float32)
    sig, pos = data["signal"], 0
    rec, start = data["record"], data["start"].astype(np.int64)
    order = np.lexsort((start, rec))
    bounds = np.flatnonzero(np.diff(rec[order])) + 1
    for grp, (r, s0, length) in zip(np.split(order, bounds), data["piece"]):
        piece = sig[pos : pos + length]
        pos += length
        idx = start[grp] - s0
        windows[grp] = piece[idx[:, None] + np.arange(L)] / UV
    windows[data["verbatim_index"]] = data["verbatim"] / UV
    shard_name = manifest["shards"][0]["name"]
    d = out / shard_name
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / "windows.npy", windows)
    for k in PER_WINDOW:
        np.save(d / f"{k}.npy", data[k])
    (d / "shard.json").write_bytes(data["shard_json"].tobytes())
    manifest["shards"][0]["windows"] = n
    manifest["windows"] = n
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("store", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--splits", default="train,val")
    u = sub.add_parser("unpack")
    u.add_argument("pack", type=Path)
    u.add_argument("out", type=Path)
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.store, a.out, a.splits.split(","))
    else:
        print(unpack(a.pack, a.out))


if __name__ == "__main__":
    main()
