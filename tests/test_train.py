import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyrhythm.checkpoint import load_weights
from tinyrhythm.evaluate.metrics import cinc2017_score, classification_report

from conftest import CINC, DATA, assert_one_line_error, run_cli, train_tiny as _train

BIN = os.path.dirname(sys.executable)
ROOT = Path(__file__).resolve().parents[1]


def test_train_writes_a_complete_run(trained_run):
    run, result = trained_run
    assert {p.name for p in run.iterdir()} >= {"config.json", "model.pt", "checkpoint.pt", "history.json", "metrics.json"}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["model"] == "cnn1" and cfg["train"]["batch_size"] == 64 and cfg["classes"] == ["N", "A", "O", "~"]
    assert len(cfg["store_config_hash"]) == 16 and cfg["fs"] == 62.5
    assert len(json.loads((run / "history.json").read_text())) == 2
    for split in ("val", "test"):
        r = result[split]
        assert r["level"] == "record" and set(r["per_class"]) == {"N", "A", "O", "~"}
        assert {"macro_f1", "accuracy", "cinc_score", "af_f1", "confusion_matrix"} <= set(r)
    assert result["params_table"] == 4455 + 513 * 2 + 1  # 4 classes instead of 3
    # model.pt holds tensors only and loads with weights_only=True
    assert all(isinstance(v, torch.Tensor) for v in load_weights(run / "model.pt").values())


def test_same_seed_same_weights(small_store, trained_run, tmp_path):
    _train(small_store, tmp_path / "b")
    _train(small_store, tmp_path / "c", "--seed", "1")
    a = load_weights(trained_run[0] / "checkpoint.pt")["model"]
    b, c = (load_weights(tmp_path / n / "checkpoint.pt")["model"] for n in "bc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(small_store, tmp_path):
    args = ["train", "--model", "cnn1", "--task", "cinc2017", "--store", str(small_store), "--epochs", "4",
            "--samples-per-epoch", "2048", "--batch-size", "64", "--threads", "1", "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([os.path.join(BIN, "tinyrhythm"), *args, "--out", str(killed)],
                            env={**os.environ, "TINYRHYTHM_DATA": str(DATA)})
    history = killed / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (history.is_file() and len(json.loads(history.read_text() or "[]")) >= 1):
        time.sleep(0.1)
    time.sleep(1.0)  # now inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    done = len(json.loads(history.read_text()))
    assert 1 <= done < 4
    assert_one_line_error(run_cli(*args, "--out", killed), "not empty", "--resume")
    run_cli(*args, "--out", killed, "--resume", check=0)
    clean = tmp_path / "clean"
    run_cli(*args, "--out", clean, check=0)
    a, b = load_weights(killed / "model.pt"), load_weights(clean / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(json.loads(history.read_text())) == 4
    assert json.loads((killed / "metrics.json").read_text())["test"] == json.loads((clean / "metrics.json").read_text())["test"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(small_store, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "TINYRHYTHM_DATA": str(DATA), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([os.path.join(BIN, "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "tinyrhythm.cli",
                           "train", "--model", "cnn1", "--task", "cinc2017", "--store", str(small_store), "--epochs", "2",
                           "--samples-per-epoch", "512", "--batch-size", "64", "--out", str(out), "--quiet", "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["epochs_run"] == 2 and "cinc_score" in result["test"]
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 2


def test_evaluate_cli_json_and_png(trained_run):
    run = trained_run[0]
    proc = run_cli("evaluate", run, "--task", "cinc2017", "--split", "test", "--json", check=0)
    r = json.loads(proc.stdout)
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == r["n"] and r["split"] == "test"
    f1 = [2 * cm[c, c] / (cm[c].sum() + cm[:, c].sum()) if cm[c].sum() + cm[:, c].sum() else 0 for c in range(3)]
    assert r["cinc_score"] == pytest.approx(np.mean(f1))
    png = run / "confusion_test.png"
    assert r["confusion_png"] == str(png) and png.stat().st_size > 5000
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.std() > 0.05  # not a blank picture
    r2 = json.loads(run_cli("evaluate", run, "--task", "cinc2017", "--threshold", "0.6", "--json", check=0).stdout)
    assert 0 <= r2["abstention_rate"] <= 1 and r2["n"] == round(cm.sum() * (1 - r2["abstention_rate"]))
    assert_one_line_error(run_cli("evaluate", run, "--task", "study3"), "trained for task 'cinc2017'")


def test_cinc_score_by_hand():
    classes = ["N", "A", "O", "~"]
    y = np.array([0, 0, 0, 1, 1, 2, 2, 3])
    p = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    # F1_N = 2*2/(3+3), F1_A = 2*1/(2+2), F1_O = 2*2/(2+3)
    assert cinc2017_score(y, p, classes) == pytest.approx(np.mean([4 / 6, 2 / 4, 4 / 5]))
    r = classification_report(y, p, classes)
    assert r["af_f1"] == pytest.approx(0.5) and r["per_class"]["~"]["f1"] == 0


def test_predict_on_files_of_every_kind(trained_run, tmp_path):
    run = trained_run[0]
    import wfdb

    x = wfdb.rdrecord(str(CINC / "A00001")).p_signal[:, 0]
    np.save(tmp_path / "a1.npy", x)
    np.savetxt(tmp_path / "a1.csv", x, header="ecg_mv", comments="")
    proc = run_cli("predict", "--model", run, "--json", CINC / "A00001.hea", CINC / "A00004.mat",
                   tmp_path / "a1.npy", tmp_path / "a1.csv", DATA / "mitdb" / "100.hea", "--fs", "300", check=0)
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [l["record"] for l in lines] == ["A00001", "A00004", "a1", "a1", "100"]
    for l in lines:
        assert l["label"] in ("N", "A", "O", "~") and set(l["probabilities"]) == {"N", "A", "O", "~"}
        assert sum(l["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    # the same signal gives the same answer whatever its file type
    assert lines[0]["probabilities"] == lines[2]["probabilities"] == lines[3]["probabilities"]
    assert_one_line_error(run_cli("predict", "--model", run, tmp_path / "a1.npy"), "a1.npy", "--fs")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    assert_one_line_error(run_cli("predict", "--model", run, tmp_path / "bad.npy", "--fs", "250"), "bad.npy")
    assert_one_line_error(run_cli("predict", "--model", "cnn9", CINC / "A00001.hea"), "cnn9")


def test_folder_prediction_and_bad_configs(small_store, trained_run, tmp_path):
    run = trained_run[0]
    folder = tmp_path / "recs"
    folder.mkdir()
    for n in ("A00001", "A00003", "A00004"):
        for ext in (".hea", ".mat"):
            (folder / f"{n}{ext}").write_bytes((CINC / f"{n}{ext}").read_bytes())
    out = run_cli("predict", "--model", run, folder, check=0).stdout.splitlines()
    assert [l.split("\t")[0] for l in out] == ["A00001", "A00003", "A00004"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochz": 3}')
    assert_one_line_error(run_cli("train", "--config", bad, "--out", tmp_path / "x"), "epochz")
    bad.write_text('{"dataset_size_power": 2}')
    assert_one_line_error(run_cli("train", "--config", bad, "--out", tmp_path / "x"), "dataset_size_power")
    assert_one_line_error(_train(small_store, tmp_path / "y", "--resume", check=None), "nothing to resume")
    assert_one_line_error(run_cli("train", "--model", "cnn9", "--out", tmp_path / "z"), "cnn9")


def test_train_builds_its_store_from_the_config_study3_icentia(tmp_path):
    """The study's 3-class Icentia11k task end to end, the store built in the cache on first use."""
    cache = tmp_path / "cache"
    proc = run_cli("train", "--model", "cnn1", "--config", ROOT / "configs" / "icentia-study3.json", "--epochs", "1",
                   "--samples-per-epoch", "256", "--threads", "1", "--out", tmp_path / "run", "--quiet", "--json",
                   env={"TINYRHYTHM_CACHE": str(cache)}, check=0)
    result = json.loads(proc.stdout)
    stores = list((cache / "stores").iterdir())
    assert len(stores) == 1 and stores[0].name.startswith("icentia11k-study3-")
    manifest = json.loads((stores[0] / "manifest.json").read_text())
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["store_config_hash"] == manifest["config_hash"] and cfg["classes"] == ["normal", "arrhythmia", "noise"]
    assert result["val"]["level"] == "window" and result["val"]["per_class"]["normal"]["support"] > 0
    assert result["val"]["per_class"]["arrhythmia"]["support"] == 0  # patient 0 has no AF: said in the README


def test_stretch_slows_real_ecg_down():
    """A real MITDB window read at 0.7 samples per sample holds 0.7 times the beats, stays inside
    the original's amplitude range, and is left exactly as it was where not drawn."""
    import wfdb

    from tinyrhythm.windows.beats import detect_beats
    from tinyrhythm.train.augment import stretch
    from tinyrhythm.windows.resample import resample

    rec = wfdb.rdrecord(str(DATA / "mitdb" / "100"), sampto=360 * 60, channels=[0])
    x = resample(rec.p_signal[:, 0].astype(np.float32), 360, 62.5)
    n = 2049  # 33 s: enough beats that counting them measures the rate
    w = torch.from_numpy(x[:n].copy())[None, None, :]
    g = torch.Generator().manual_seed(0)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    slow = stretch(w, (0.7, 0.7), 1.0, u)
    before, after = len(detect_beats(w[0, 0].numpy(), 62.5)), len(detect_beats(slow[0, 0].numpy(), 62.5))
    assert before > 30 and abs(after / before - 0.7) < 0.06, (before, after)
    assert slow.min() >= w.min() and slow.max() <= w.max()
    assert torch.equal(stretch(w, (0.6, 1.0), 0.0, u), w)


def test_lowpass_takes_a_real_window_down_to_a_slower_recorders_bandwidth():
    """A real MITDB window through the recorder low-pass at 10 Hz keeps its slow content and
    loses its fast content; not drawn, it is left exactly as it was; with the config it runs in
    the Augmenter."""
    import wfdb

    from tinyrhythm.train.augment import Augmenter, lowpass
    from tinyrhythm.train.config import AugmentConfig
    from tinyrhythm.windows.resample import resample

    rec = wfdb.rdrecord(str(DATA / "mitdb" / "100"), sampto=360 * 20, channels=[0])
    x = resample(rec.p_signal[:, 0].astype(np.float32), 360, 62.5)[:513]
    w = torch.from_numpy(x - x.mean())[None, None, :]
    g = torch.Generator().manual_seed(0)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    lp = lowpass(w, 62.5, (10.0, 10.0), 1.0, u)
    f = np.fft.rfftfreq(513, 1 / 62.5)
    p_in, p_out = (np.abs(np.fft.rfft(v[0, 0].numpy())) ** 2 for v in (w, lp))
    fast, slow = f > 20, (f > 0.5) & (f < 5)
    assert p_out[fast].sum() < 0.01 * p_in[fast].sum()
    assert abs(p_out[slow].sum() / p_in[slow].sum() - 1) < 0.05
    assert torch.equal(lowpass(w, 62.5, (10.0, 20.0), 0.0, u), w)
    aug = Augmenter(AugmentConfig(noise_prob=0, wander_prob=0, scale=(1.0, 1.0), lowpass_prob=1.0,
                                  lowpass_hz=(10.0, 10.0)), 62.5, None)
    assert torch.allclose(aug(w, torch.Generator().manual_seed(1)), lp, atol=1e-5)


def test_slow_af_weight_draws_slow_af_more_and_keeps_the_balance(small_store, tmp_path):
    """Real CinC AF windows slower than 80 bpm are drawn three times as often as faster ones,
    every class's total share unchanged; a training config with the setting runs and records it."""
    from tinyrhythm.train.config import SLOW_AF_BPM
    from tinyrhythm.windows.store import WindowStore

    ws = WindowStore(small_store)
    w = ws.sample_weights("train")
    af = ws.classes.index("A")
    w3 = ws.slow_weights(w, "train", af, 3.0, SLOW_AF_BPM)
    y = ws.labels[ws.indices("train")]
    for c in range(len(ws.classes)):
        assert w3[y == c].sum() == pytest.approx(w[y == c].sum())
    mine = np.flatnonzero(y == af)
    slow = ws.window_rates(ws.indices("train")[mine]) < SLOW_AF_BPM
    assert 0 < slow.sum() < len(slow)
    gain = w3[mine] / w[mine]
    assert np.allclose(gain[slow] / gain[~slow].mean(), 3.0) and np.allclose(gain[~slow], gain[~slow][0])
    assert np.array_equal(w3[y != af], w[y != af])

    (tmp_path / "cfg.json").write_text(json.dumps({"task": "cinc2017", "slow_af_weight": 3.0}))
    _train(small_store, tmp_path / "run", "--config", tmp_path / "cfg.json")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["slow_af_weight"] == 3.0
