"""The recorder-independent rhythm task: input conditioning, the new real-data readers,
multi-source balanced sampling, and device handling."""

import json
import shutil

import numpy as np
import pytest
import torch
from scipy.signal import butter, sosfiltfilt

from conftest import DATA, assert_one_line_error, run_cli, train_tiny as _train
from tinyrhythm import models, zoo
from tinyrhythm.datasets import open_dataset


def condition_numpy(x: np.ndarray, kernel: int, floor_mv: float, stages: int = 2) -> np.ndarray:
    """An independent float64 reference of models.cnn.InputConditioning (cumulative sums,
    not AvgPool): y = x - centred moving average, `stages` times, then y / max(mean|y|, floor)."""
    y = np.asarray(x, np.float64)
    n, h = y.shape[-1], kernel // 2
    lo = np.clip(np.arange(n) - h, 0, n)
    hi = np.clip(np.arange(n) + h + 1, 0, n)
    for _ in range(stages):
        c = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(y, axis=-1)], axis=-1)
        y = y - (c[..., hi] - c[..., lo]) / (hi - lo)
    return y / np.maximum(np.abs(y).mean(axis=-1, keepdims=True), floor_mv)


def _real_windows(n_per=40):
    """Windows of 513 samples at 62.5 Hz from real records of four recorders."""
    from tinyrhythm.windows.labelling import WindowConfig, make_windows

    cfg = WindowConfig(fs=62.5, length=513, hop=256)
    out = []
    for name, patient in (("mitdb", "mitdb/203"), ("mitdb", "mitdb/119"), ("mitdb", "mitdb/210"), ("mitdb", "mitdb/100"),
                          ("aftdb", "aftdb/learning-set/n01"), ("aftdb", "aftdb/test-set-a/a01"),
                          ("aftdb", "aftdb/test-set-b/b01"), ("afpdb", "afpdb/p01-02"), ("cpsc2021", "cpsc2021/data_25_24")):
        rec = next(open_dataset(name).records(patient))
        w, _, _ = make_windows(rec, cfg)
        out.append(w[:n_per])
    return np.concatenate(out)


def test_conditioning_is_exact_for_offset_and_gain_and_keeps_flat_flat():
    model = models.create("cnn3", 3, 513, conditioning="window").eval()
    x = torch.from_numpy(_real_windows(8)).unsqueeze(1)
    with torch.no_grad():
        ref = model(x)
        for off, gain in ((-5.0, 1.0), (5.0, 1.0), (0.0, 0.25), (0.0, 4.0), (3.0, 2.0)):
            assert torch.allclose(model(x * gain + off), ref, atol=1e-3)
        flat = model.condition(torch.full((1, 1, 513), 4.2))
    assert float(flat.abs().max()) < 0.01  # a lead-off line stays a line (float rounding only), not amplified noise
    tiny = model.condition(torch.randn(1, 1, 513) * 1e-4)  # 0.1 uV of noise: below the floor, not blown up
    assert float(tiny.abs().mean()) < 0.1
    np.testing.assert_allclose(model.condition(x).numpy(), condition_numpy(x.numpy(), 25, 0.005), atol=1e-4)


def _perturbations(x, fs=62.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(x.shape[-1]) / fs
    yield "offset", [x + off for off in (-5.0, -3.0, -1.0, 1.0, 3.0, 5.0)]
    yield "gain", [x * g for g in (0.25, 0.5, 2.0, 4.0)]
    waves = []
    for f in (0.1, 0.25, 0.5):
        phase = rng.uniform(0, 2 * np.pi, size=(len(x), 1))
        waves.append(x + 1.0 * np.sin(2 * np.pi * f * t[None, :] + phase))
    yield "wander", waves
    # A recorder that keeps less than the windows' 31 Hz (README, "Recorder bandwidth").
    yield "25 Hz low-pass", [sosfiltfilt(butter(4, 25.0, fs=fs, output="sos"), x, axis=-1)]


@pytest.mark.parametrize("name", ["rhythm-cnn3", "rhythm-cnn3-int8"])
def test_zoo_rhythm_models_keep_their_class_under_offset_gain_wander_and_bandwidth(name):
    from tinyrhythm.runtime import load_model

    lm = load_model(name)
    x = _real_windows().astype(np.float32)

    def classes(w):
        with torch.no_grad():
            return lm.model(torch.from_numpy(np.ascontiguousarray(w, np.float32)).unsqueeze(1)).argmax(1).numpy()

    ref = classes(x)
    for kind, variants in _perturbations(x):
        for v in variants:
            agree = float((classes(v) == ref).mean())
            assert agree >= 0.99, f"{name}: {kind} changes the class of {1 - agree:.1%} of {len(x)} real windows"


def test_new_readers_label_the_real_records():
    aftdb = open_dataset("aftdb")
    assert len(aftdb.patients()) == 80
    rec = next(aftdb.records("aftdb/test-set-a/a01"))
    assert rec.fs == 128 and [z.label for z in rec.zones] == ["AFIB"] and rec.zones[0].end == len(rec.signal) - 1
    assert len(rec.beats) > 50  # .qrs beats

    afpdb = open_dataset("afpdb", lead="both")
    assert len(afpdb.patients()) == 50  # subjects, not records
    recs = list(afpdb.records("afpdb/p01-02"))
    assert sorted(r.record_id for r in recs) == ["p01:ECG0", "p01:ECG1", "p01c:ECG0", "p01c:ECG1",
                                                  "p02:ECG0", "p02:ECG1", "p02c:ECG0", "p02c:ECG1"]
    assert all(r.zones[0].label == "N" and r.patient_id == "afpdb/p01-02" for r in recs)
    # n17 has a lead that is off: with both leads the readable one is kept, alone it is an error
    assert [r.record_id for r in afpdb.records("afpdb/n17-18") if r.record_id.startswith("n17:")] == ["n17:ECG0"]

    cpsc = open_dataset("cpsc2021")
    non_af = next(cpsc.records("cpsc2021/data_0_2"))
    assert [z.label for z in non_af.zones] == ["N"]  # no rhythm note: a non-AF record
    paf = next(cpsc.records("cpsc2021/data_25_24"))
    assert {z.label for z in paf.zones} == {"N", "AFL"}
    assert abs(float(np.median(paf.signal))) > 3  # the recorder's DC offset is in the data

    noise = open_dataset("nstdb")
    assert len(noise.patients()) == 24
    assert all(z.label == "NOISE" for p in noise.patients()[:2] for r in noise.records(p) for z in r.zones)
    assert len(open_dataset("mitdb").patients()) == 43
    assert open_dataset("icentia11k").patients() == ["icentia11k/00000", "icentia11k/01001"]


def test_rhythm_task_counts_every_non_af_rhythm_as_normal():
    from tinyrhythm.tasks import get_task

    t = get_task("rhythm3")
    assert [t.class_index(r) for r in ("N", "OTHER", "AFIB", "AFL", "NOISE")] == [0, 0, 1, 1, 2]


def test_new_reader_bad_input_is_one_line(tmp_path):
    # an annotation file without its signal
    (tmp_path / "aftdb").mkdir()
    src = DATA / "aftdb" / "learning-set"
    shutil.copy(src / "n01.qrs", tmp_path / "aftdb" / "n01.qrs")
    shutil.copy(src / "n01.hea", tmp_path / "aftdb" / "n01.hea")
    proc = run_cli("data", "show", tmp_path / "aftdb" / "n01.hea", check=2)
    assert_one_line_error(proc, "n01.dat", "not found")
    # a subject whose record pair is not together
    (tmp_path / "afpdb").mkdir()
    for ext in (".hea", ".dat", ".qrs"):
        shutil.copy(DATA / "afpdb" / f"n01{ext}", tmp_path / "afpdb" / f"n01{ext}")
    proc = run_cli("data", "summary", "afpdb", "--json", env={"TINYRHYTHM_DATA": str(tmp_path)}, check=2)
    assert_one_line_error(proc, "n01", "pair")
    # a lead that does not exist
    proc = run_cli("data", "show", DATA / "afpdb" / "n01.hea", "--lead", "V9", check=2)
    assert_one_line_error(proc, "n01.hea", "V9")


@pytest.fixture(scope="module")
def holter_store(tmp_path_factory):
    """A small real store of three Holter sources (AFTDB, CPSC 2021, AFPDB)."""
    from tinyrhythm.windows.labelling import WindowConfig
    from tinyrhythm.windows.store import BuildConfig, WindowStore, build_store

    folder = tmp_path_factory.mktemp("holter") / "st"
    cfg = BuildConfig(["aftdb", "cpsc2021", "afpdb"], "rhythm3", WindowConfig(fs=62.5, hop=256), max_patients=6,
                      split_seed=0)
    build_store(folder, cfg, quiet=True)
    return WindowStore(folder)


def test_dataset_balanced_sampling(holter_store):
    store = holter_store
    idx = store.indices("train")
    labels = store.labels[idx]
    ds = store.dataset_index()[0][idx]
    w = store.sample_weights("train", {"afpdb": 3.0})
    present = [c for c in range(3) if (labels == c).any()]
    per_class = [w[labels == c].sum() for c in present]
    np.testing.assert_allclose(per_class, per_class[0])  # classes equally likely
    normal = labels == 0
    shares = {store.dataset_index()[1][d]: w[normal & (ds == d)].sum() / w[normal].sum() for d in np.unique(ds[normal])}
    assert {"afpdb", "cpsc2021"} <= set(shares)
    assert shares["afpdb"] == pytest.approx(3 * shares["cpsc2021"])
    # With a size power a dataset's share grows with its windows of the class: n ** power.
    n = {name: int((normal & (ds == store.dataset_index()[1].index(name))).sum()) for name in ("afpdb", "cpsc2021")}
    assert n["afpdb"] > n["cpsc2021"]
    for power in (0.5, 1.0):
        wp = store.sample_weights("train", {"afpdb": 3.0}, power)
        np.testing.assert_allclose([wp[labels == c].sum() for c in present], per_class)
        ratio = wp[normal & (ds == store.dataset_index()[1].index("afpdb"))].sum() / \
            wp[normal & (ds == store.dataset_index()[1].index("cpsc2021"))].sum()
        assert ratio == pytest.approx(3 * (n["afpdb"] / n["cpsc2021"]) ** power)
    with pytest.raises(Exception, match="not in the store"):
        store.sample_weights("train", {"mitdb": 1.0})
    with pytest.raises(Exception, match="size power"):
        store.sample_weights("train", None, 1.5)


def test_lead_mix_rotates_each_window_towards_the_same_moment_in_its_other_lead(tmp_path, small_store):
    """Two-lead AFTDB and CPSC 2021 records stored as two views: every window finds the same
    moment in its record's other lead, and lead mixing turns it into a unit combination of the
    two at an angle within the limit; single-lead windows have no partner and stay as they are.
    A rhythm3 run with lead mixing trains on such a store and records the setting."""
    from tinyrhythm.train.augment import Augmenter, lead_mix
    from tinyrhythm.train.config import AugmentConfig
    from tinyrhythm.windows.labelling import WindowConfig
    from tinyrhythm.windows.store import BuildConfig, WindowStore, build_store

    folder = tmp_path / "both"
    build_store(folder, BuildConfig(["aftdb", "cpsc2021"], "rhythm3", WindowConfig(fs=62.5, hop=256), max_patients=12,
                                    lead="both"), quiet=True)
    ws = WindowStore(folder)
    p = ws.lead_partners()
    i = np.arange(len(ws))
    assert len(ws) > 20 and (p >= 0).all() and np.array_equal(p[p], i)
    keys, names = ws.record_keys(), ws.record_names()
    assert (keys[p] != keys).all() and np.array_equal(ws.starts()[p], ws.starts())
    assert all(names[keys[j]].split(":")[0] == names[keys[p[j]]].split(":")[0] for j in i)
    assert np.array_equal(ws.labels[p], ws.labels) and np.array_equal(ws.splits[p], ws.splits)
    x, _ = ws.batch(i)
    y, _ = ws.batch(p)
    assert not np.allclose(x, y)  # two leads, not one twice
    assert (WindowStore(small_store).lead_partners() == -1).all()  # CinC 2017: one lead

    xt, yt = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).unsqueeze(1)
    yt[:5] = float("nan")  # no partner
    g = torch.Generator().manual_seed(0)
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    m = lead_mix(xt, yt, 60.0, 1.0, u)
    assert torch.equal(m[:5], xt[:5])
    for k in range(5, len(m)):
        a = np.stack([x[k], y[k]], 1).astype(np.float64)
        (c, s), *_ = np.linalg.lstsq(a, m[k, 0].numpy().astype(np.float64), rcond=None)
        assert c * c + s * s == pytest.approx(1, abs=1e-4) and abs(np.degrees(np.arctan2(s, c))) <= 60 + 1e-3
    assert torch.equal(lead_mix(xt, yt, 60.0, 0.0, u), xt)
    aug = Augmenter(AugmentConfig(noise_prob=0, wander_prob=0, scale=(1.0, 1.0), lead_mix_prob=1.0), 62.5, None)
    assert torch.equal(aug(xt, torch.Generator().manual_seed(1)), xt)  # no partner given: nothing to mix

    (tmp_path / "cfg.json").write_text(json.dumps({"task": "rhythm3", "conditioning": "window",
                                                   "augment": {"lead_mix_prob": 0.5, "lead_mix_deg": 45}}))
    _train(folder, tmp_path / "run", "--config", tmp_path / "cfg.json", "--task", "rhythm3")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["augment"]
    assert saved["lead_mix_prob"] == 0.5 and saved["lead_mix_deg"] == 45


def test_dataset_reports_score_each_dataset_and_pool(holter_store):
    store = holter_store
    from tinyrhythm.evaluate.metrics import classification_report
    from tinyrhythm.evaluate.scoring import dataset_reports
    idx = store.indices("train")
    pred = np.random.default_rng(0).integers(0, 3, len(idx))  # any predictions: the grouping is under test
    ds, names = store.dataset_index()
    out = dataset_reports(store, idx, pred, {"holter": ("aftdb", "cpsc2021", "mitdb")})
    present = [names[i] for i in np.unique(ds[idx])]
    assert list(out) == present + ["all", "holter"]
    y = store.labels[idx]
    assert out["all"] == classification_report(y, pred, store.classes)
    for name in present:
        m = ds[idx] == names.index(name)
        assert out[name] == classification_report(y[m], pred[m], store.classes)
    m = np.isin(ds[idx], [names.index("aftdb"), names.index("cpsc2021")])
    assert out["holter"]["n"] == int(m.sum()) > 0


def test_count_macs_runs_on_the_model_device():
    # The GPU crash after the last epoch was a CPU probe sent through a CUDA model; the meta
    # device shows the same mix-up without a GPU.
    model = models.create("cnn1", 3, 513, conditioning="window").to("meta")
    assert models.count_macs(model) == models.count_macs(models.create("cnn1", 3, 513))


def test_rhythm_zoo_cards_list_their_datasets_and_cross_dataset_figures():
    from tinyrhythm import zoo

    cards = zoo.cards()
    for name in ("rhythm-cnn1", "rhythm-cnn3", "rhythm-cnn5", "rhythm-cnn3-int8"):
        card = cards[name]
        assert card["task"] == "rhythm3" and card["labels"] == ["normal", "arrhythmia", "noise"]
        assert set(card["train"]["datasets"]) >= {"mitdb", "aftdb", "afpdb", "cinc2017", "nstdb"}
        assert card["train"]["conditioning"] == "window"
        assert "mitdb" in card["metrics_by_dataset"]
    assert cards["rhythm-cnn3-int8"]["weight_bytes"] <= 16 * 1024


C_DRIVER = r'''#include <stdio.h>
#include <stdlib.h>
#include "tr_model.h"
/* stdin: n float32 samples in mV; argv[1]: chunk seed. stdout: batch windows as "B start class s0..",
   their int8 inputs as "Q start q0 q1 ..", then the stream's decisions as "S start class s0..". */
int main(int argc, char **argv) {
  static float x[1 << 16]; int8_t sc[TR_NUM_CLASSES], q[TR_INPUT_LENGTH];
  int n = (int)fread(x, sizeof(float), 1 << 16, stdin), i, j, c;
  tr_stream_t st; unsigned seed = (unsigned)atoi(argv[argc - 1]);
  for (i = 0; i + TR_INPUT_LENGTH <= n; i += TR_HOP) {
    if (tr_quantize(x + i, TR_INPUT_LENGTH, q) != 0) return 2;
    c = tr_classify(q, TR_INPUT_LENGTH, sc);
    printf("B %d %d", i, c);
    for (j = 0; j < TR_NUM_CLASSES; ++j) printf(" %d", sc[j]);
    printf("\nQ %d", i);
    for (j = 0; j < TR_INPUT_LENGTH; ++j) printf(" %d", q[j]);
    printf("\n");
  }
  tr_stream_init(&st);
  for (i = 0; i < n;) {
    int chunk = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 700, used, k = 0;
    if (chunk > n - i) chunk = n - i;
    while (k < chunk) {
      c = tr_stream_push(&st, x + i + k, chunk - k, &used, sc);
      k += used;
      if (c >= 0) {
        printf("S %d %d", i + k - TR_INPUT_LENGTH, c);
        for (j = 0; j < TR_NUM_CLASSES; ++j) printf(" %d", sc[j]);
        printf("\n");
      } else if (c != TR_NO_DECISION) return 1;
    }
    i += chunk;
  }
  return 0;
}
'''


@pytest.mark.slow
def test_c_build_of_a_conditioned_model_matches_onnx_runtime(tmp_path):
    """The generated C conditions in tr_quantize (float) and then runs the int8 network
    bit-exactly; its float stream equals its batch windows; both agree with ONNX Runtime
    on a real Holter record with a 5 mV DC offset."""
    import subprocess

    from tinyrhythm.export.run import onnx_int8_run
    from tinyrhythm.runtime import load_model
    from tinyrhythm.windows.resample import resample

    out = tmp_path / "c"
    report = json.loads(run_cli("export", "rhythm-cnn3-int8", "--format", "c", "--out", out, "--json", check=0).stdout)
    c = report["c"]
    assert c["conditioning"] == {"kernel": 25, "stages": 2, "floor_mv": pytest.approx(0.005)}
    assert c["class_agreement_with_onnx_int8"] == 1.0 and c["max_score_diff_steps"] == 0
    # The one-pass stream: the Python one-pass scores bit for bit, a quarter of the MACs per decision.
    o = c["onepass"]
    assert o["max_score_diff_steps"] == 0 and o["decisions_checked"] >= 200
    assert o["macs_per_decision"] * 3.9 < o["window_macs"] and (out / "tr_onepass.c").is_file()
    assert "float ring" in (out / "tr_model.h").read_text()
    # The card's RR context travels with the export: `monitor` and `predict` on its files decide as the zoo model does.
    assert report["rr_context"] == zoo.cards()["rhythm-cnn3-int8"]["rr_context"]
    assert load_model(out / "model-int8.onnx").card.rr_fusion is not None
    (tmp_path / "d.c").write_text(C_DRIVER)
    build = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(out), str(tmp_path / "d.c"),
                            str(out / "tr_model.c"), "-lm", "-o", str(tmp_path / "d")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    lm = load_model("rhythm-cnn3-int8")
    rec = next(open_dataset("cpsc2021").records("cpsc2021/data_25_24"))
    x = resample(rec.signal, rec.fs, lm.fs).astype(np.float32)
    assert np.median(x) > 3  # the recorder's offset, left in
    for seed in ("3", "11"):
        lines = subprocess.run([str(tmp_path / "d"), seed], input=x.tobytes(), capture_output=True,
                               check=True).stdout.decode().splitlines()
        batch = [l[2:] for l in lines if l[0] == "B"]
        assert len(batch) > 10 and [l[2:] for l in lines if l[0] == "S"] == batch
    starts = [int(l.split()[1]) for l in lines if l[0] == "Q"]
    q_c = np.array([[int(v) for v in l.split()[2:]] for l in lines if l[0] == "Q"], np.int16)
    wins = np.stack([x[s : s + lm.input_length] for s in starts])[:, None, :]
    # the export quantizes the float parent itself: the C build is the twin of its model-int8.onnx
    q_ort, logits = onnx_int8_run(out / "model-int8.onnx", c["input_tensor"], wins)
    q_ort = q_ort.astype(np.int16)
    assert np.abs(q_c - q_ort).max() <= 1 and (q_c == q_ort).mean() >= 0.99  # float conditioning, rounding apart
    ort = logits.argmax(1)
    c_cls = np.array([int(l.split()[1]) for l in batch])
    assert (c_cls == ort).mean() >= 0.95



def test_prior_correction_finds_the_offset_that_undoes_a_biased_head():
    from tinyrhythm.evaluate.scoring import prior_offsets

    rng = np.random.default_rng(0)
    y = rng.choice(3, size=4000, p=[0.94, 0.04, 0.02])  # a recording's class mix
    z = np.eye(3)[y] * 2.0 + rng.normal(0, 1.0, (len(y), 3))
    z[:, 1] += 1.5  # a head trained as if AF were common over-calls it
    off, before, after = prior_offsets(z, y)
    assert off[0] == 0 and off[1] < -0.5  # the AF logit is moved down
    assert after > before + 0.05
