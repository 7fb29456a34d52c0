import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tinyrhythm.errors import DataError
from tinyrhythm.datasets.split import SPLITS, assign_split
from tinyrhythm.windows.store import BuildConfig, WindowStore, build_store

from conftest import DATA, assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def icentia_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("st") / "icentia"
    proc = run_cli("data", "build", "icentia11k", "--task", "study3", "--out", out, "--quiet", "--json", check=0)
    msg = json.loads(proc.stdout)
    assert msg["complete"] is True
    return out


def test_icentia_store_manifest_and_memmap(icentia_store):
    store = WindowStore(icentia_store)
    m = store.manifest
    assert m["classes"] == ["normal", "arrhythmia", "noise"] and m["task"]["name"] == "study3"
    assert m["sources"] == [{"dataset": "icentia11k"}] and len(m["config_hash"]) == 16
    split = assign_split("icentia11k/00000")
    assert m["counts"][split]["normal"] > 2000 and m["counts"][split]["noise"] > 50
    assert sum(sum(c.values()) for c in m["counts"].values()) == m["windows"] == len(store)
    assert isinstance(store._windows[0], np.memmap)
    x, y = store.batch(np.array([5, 1, 3]))
    assert x.shape == (3, 513) and x.dtype == np.float32
    np.testing.assert_array_equal(x[1], store.window(1))
    summary = json.loads(run_cli("data", "summary", icentia_store, "--json", check=0).stdout)
    assert summary["counts"] == m["counts"]


def test_balanced_weights_and_torch_loading(icentia_store):
    store = WindowStore(icentia_store)
    split = assign_split("icentia11k/00000")
    w = store.sample_weights(split)
    labels = store.labels[store.indices(split)]
    per_class = [w[labels == c].sum() for c in np.unique(labels)]
    np.testing.assert_allclose(per_class, 1.0)
    ds = store.torch_dataset(split)
    sampler = torch.utils.data.WeightedRandomSampler(w, num_samples=400, generator=torch.Generator().manual_seed(0))
    xb, yb = next(iter(torch.utils.data.DataLoader(ds, batch_size=400, sampler=sampler)))
    assert xb.shape == (400, 1, 513) and xb.dtype == torch.float32
    assert 0.35 < (yb == 2).float().mean() < 0.65  # noise is ~4% of windows but half of a balanced batch


def _arrays(path):
    store = WindowStore(path)
    keys = []
    for s in store.manifest["shards"]:
        d = path / s["name"]
        info = json.loads((d / "shard.json").read_text())
        pat = np.array(info["patients"])[np.load(d / "patient.npy", allow_pickle=False)]
        keys += list(zip(pat.tolist(), np.load(d / "start.npy", allow_pickle=False).tolist()))
    return store, keys


def test_shards_built_apart_join_into_one_manifest(tmp_path):
    common = ["cinc2017", "--task", "cinc2017", "--max-patients", "240", "--quiet", "--json"]
    out = tmp_path / "sharded"
    for i in range(3):
        msg = json.loads(run_cli("data", "build", *common, "--out", out, "--shard", f"{i}/3", check=0).stdout)
        assert msg["complete"] is (i == 2)
        assert (out / "manifest.json").exists() is (i == 2)
    single = tmp_path / "single"
    run_cli("data", "build", *common, "--out", single, "--workers", "2", check=0)
    a, ka = _arrays(out)
    b, kb = _arrays(single)
    assert a.manifest["counts"] == b.manifest["counts"] and len(a) == len(b)
    assert len(a.manifest["shards"]) == 3 and all(s["windows"] > 0 for s in a.manifest["shards"])
    assert sorted(ka) == sorted(kb)
    ia, ib = ka.index(kb[7]), 7
    np.testing.assert_array_equal(a.window(ia), b.window(ib))
    # no patient in two splits, and each where the hash puts it
    for store, keys in ((a, ka),):
        by_patient = {}
        for (patient, _), s in zip(keys, store.splits.tolist()):
            by_patient.setdefault(patient, set()).add(s)
        assert all(len(v) == 1 for v in by_patient.values())
        assert all(SPLITS[next(iter(v))] == assign_split(p) for p, v in by_patient.items())
    assert a.manifest["patients_per_split"]["train"] > a.manifest["patients_per_split"]["test"] > 0


def test_other_config_into_same_store_is_refused(tmp_path):
    out = tmp_path / "st"
    run_cli("data", "build", "cinc2017", "--task", "cinc2017", "--max-patients", "5", "--out", out, "--quiet", check=0)
    proc = run_cli("data", "build", "cinc2017", "--task", "cinc2017", "--max-patients", "5", "--hop", "100", "--out", out, "--quiet")
    assert_one_line_error(proc, "another configuration")


def test_incomplete_store_is_never_taken_as_complete(tmp_path):
    cfg = BuildConfig(datasets=["cinc2017"], task="cinc2017", num_shards=2, max_patients=20)
    assert build_store(tmp_path / "st", cfg, shard=0, quiet=True) is None
    with pytest.raises(DataError, match="incomplete store"):
        WindowStore(tmp_path / "st")
    assert_one_line_error(run_cli("data", "merge", tmp_path / "st"), "shard-0001-of-0002")


@pytest.mark.slow
def test_killed_build_resumes(tmp_path):
    args = ["data", "build", "cinc2017", "--task", "cinc2017", "--max-patients", "1500", "--quiet", "--hop", "256"]
    out = tmp_path / "killed"
    exe = os.path.join(os.path.dirname(sys.executable), "tinyrhythm")
    proc = subprocess.Popen([exe, *args, "--out", str(out)], env={**os.environ, "TINYRHYTHM_DATA": str(DATA)})
    parts = out / "shard-0000-of-0001" / "parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.npz"))) < 200:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("*.npz")))
    assert 200 <= done_before < 1500
    assert not (out / "manifest.json").exists() and not (out / "shard-0000-of-0001" / "shard.json").exists()
    (parts / "cinc2017__A09999.npz.tmp").write_bytes(b"half a file")  # as a kill mid-write leaves it
    with pytest.raises(DataError, match="incomplete store"):
        WindowStore(out)
    run_cli(*args, "--out", out, check=0)
    clean = tmp_path / "clean"
    run_cli(*args, "--out", clean, check=0)
    a, b = WindowStore(out), WindowStore(clean)
    assert a.manifest["counts"] == b.manifest["counts"]
    for name in ("windows", "labels", "split", "start", "record", "patient"):
        np.testing.assert_array_equal(np.load(out / "shard-0000-of-0001" / f"{name}.npy", allow_pickle=False),
                                      np.load(clean / "shard-0000-of-0001" / f"{name}.npy", allow_pickle=False))
    assert not list(out.rglob("*.tmp"))


def test_split_by_record_for_single_patient_demos(tmp_path):
    from tinyrhythm.windows.labelling import WindowConfig

    cfg = BuildConfig(["icentia11k"], "study3", WindowConfig(fs=62.5, hop=513), split_by="record", max_patients=1)
    m = build_store(tmp_path / "st", cfg, quiet=True)
    store = WindowStore(tmp_path / "st")
    assert all(m["patients_per_split"][s] == 1 for s in SPLITS)  # patient 0 in all three: demo only
    names = store.record_names()
    keys = store.record_keys()
    for k in np.unique(keys):  # each record lies wholly in the split its own hash gives
        splits = np.unique(store.splits[keys == k])
        assert len(splits) == 1 and SPLITS[splits[0]] == assign_split(f"icentia11k/00000/{names[k]}")
    assert BuildConfig(["icentia11k"], "study3").digest() != cfg.digest()
