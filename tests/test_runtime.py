"""The runtime layer: one card schema for run folders and zoo entries, one loader, one backend per format."""

import json
import shutil

import numpy as np
import pytest
import torch

from tinyrhythm import zoo
from tinyrhythm.errors import DataError
from tinyrhythm.runtime import BACKENDS, FORMATS, ModelCard, card_of, load_model
from tinyrhythm.runtime.rr_context import FEATURES

from conftest import CINC, run_inprocess


def test_every_format_has_a_backend():
    assert set(BACKENDS) == set(FORMATS) == {"torch", "onnx", "fbgemm", "tflite"}


def test_zoo_cards_and_run_cards_share_one_schema(trained_run):
    run, metrics = trained_run
    run_card, _ = card_of(run)
    keys = set(run_card.to_dict())
    for name in zoo.names():
        card, folder = card_of(name)
        raw = zoo.cards()[name]
        assert set(card.to_dict()) == keys
        assert card.source == "zoo" and card.classes == tuple(raw["labels"]) and card.task == raw["task"]
        assert card.format == raw.get("format", "torch") and card.sha256 == raw["sha256"]
        assert (folder / card.weights).is_file() and isinstance(card.train, dict)
    # A run's card: the same facts, read from config.json and metrics.json.
    assert run_card.source == "run" and run_card.format == "torch" and run_card.task == "cinc2017"
    assert run_card.train["model"] == "cnn1" and run_card.architecture["name"] == "cnn1"
    assert run_card.metrics["val"]["macro_f1"] == metrics["val"]["macro_f1"]
    assert run_card.monitor_engine == "windows" and zoo.cards()["rhythm-cnn3-int8"]["monitor_engine"] == "onepass"
    assert card_of("rhythm-cnn3-int8")[0].monitor_engine == "onepass"


@pytest.mark.parametrize("name", ["cnn3", "cnn3-int8"])
def test_loaded_models_share_the_verbs(name):
    lm = load_model(name)
    x = np.random.default_rng(0).normal(0, 0.3, (5, lm.input_length)).astype(np.float32)
    p = lm.predict_proba(x)
    ref = torch.softmax(lm.model(torch.from_numpy(x).unsqueeze(1)), 1).detach().numpy()
    np.testing.assert_allclose(p, ref, rtol=1e-5, atol=1e-6)
    assert p.shape == (5, 4) and np.allclose(p.sum(1), 1, atol=1e-5)
    sizes = lm.sizes()
    assert sizes["format"] == lm.card.format and sizes["weight_bytes"] > 0
    if lm.card.format == "onnx":
        assert sizes["weight_bytes"] == zoo.cards()[name]["weight_bytes"]
    assert lm.latency_ms(repeats=3) > 0


def test_cards_are_checked_before_anything_is_built(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"classes": ["a"], "fs": 62.5, "input_length": 513,
                                                      "model": {"name": "cnn1"}, "monitor_engine": "fast"}))
    with pytest.raises(DataError, match="monitor_engine"):
        ModelCard.from_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"classes": ["a"], "fs": 62.5, "input_length": 513,
                                                      "format": "tflite"}))
    with pytest.raises(DataError, match="format"):
        ModelCard.from_run(tmp_path)
    # An exported file without the export report beside it has no card: refused, in one line.
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "lonely.tflite").write_bytes(b"TFL3" + bytes(100))
    proc = run_inprocess("predict", "--model", tmp_path / "alone" / "lonely.tflite", str(CINC / "A00001.hea"))
    assert proc.returncode == 2 and "export_report.json" in proc.stderr and "Traceback" not in proc.stderr


class _Tiny(torch.nn.Module):
    """An architecture outside the CNN family, registered by name as a new module would."""

    def __init__(self, num_classes, input_length, **_):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 9, stride=4)
        self.fc = torch.nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(-1))


def test_a_new_architecture_is_one_registration(small_store, tmp_path):
    from tinyrhythm import models
    from tinyrhythm.train import TrainConfig, train

    models.register_model("tiny-test", _Tiny)
    try:
        with pytest.raises(Exception, match="registered twice"):
            models.register_model("tiny-test", _Tiny)
        cfg = TrainConfig(model="tiny-test", task="cinc2017", store=str(small_store), epochs=1, samples_per_epoch=256,
                          batch_size=64, threads=1)
        metrics = train(cfg, tmp_path / "run", quiet=True)
        assert 0 <= metrics["val"]["macro_f1"] <= 1
        lm = load_model(tmp_path / "run")  # rebuilt from its registered name, weights hash-checked
        assert isinstance(lm.model, _Tiny) and lm.predict_proba(np.zeros((2, 513), np.float32)).shape == (2, 4)
    finally:
        del models.REGISTRY["tiny-test"]


def test_export_targets_and_datasets_are_registries():
    from tinyrhythm.datasets import DATASETS
    from tinyrhythm.datasets.base import Dataset, register_dataset
    from tinyrhythm.export.run import TARGETS

    assert list(TARGETS) == ["onnx", "tflite", "c"] and TARGETS["c"].seven_bit and not TARGETS["tflite"].keeps_int8
    assert {"mitdb", "aftdb", "afpdb", "cpsc2021", "icentia11k", "cinc2017", "nstdb"} <= set(DATASETS)

    class Mitdb2(Dataset):
        name = "mitdb"

    with pytest.raises(Exception, match="duplicate name"):
        register_dataset(Mitdb2)


def test_zoo_add_packages_a_run(trained_run, tmp_path, monkeypatch):
    from tinyrhythm.paths import sha256_file
    from conftest import assert_one_line_error

    run, metrics = trained_run
    card = json.loads(run_inprocess("zoo", "add", "tiny", run, "--zoo-dir", tmp_path / "zoo", "--json", check=0).stdout)
    weights = tmp_path / "zoo" / "weights" / "tiny.pt"
    assert card["sha256"] == sha256_file(weights) and card["labels"] == ["N", "A", "O", "~"]
    assert card["metrics"]["macro_f1"] == round(metrics["test"]["macro_f1"], 4) and card["train"]["model"] == "cnn1"
    monkeypatch.setattr(zoo, "CARDS_DIR", tmp_path / "zoo" / "cards")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "zoo" / "weights")
    ref, new = load_model(run), load_model("tiny")
    x = np.random.default_rng(1).normal(0, 0.3, (3, 513)).astype(np.float32)
    np.testing.assert_array_equal(ref.predict_proba(x), new.predict_proba(x))
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text((run / "config.json").read_text())
    assert_one_line_error(run_inprocess("zoo", "add", "x", tmp_path / "unfinished", "--zoo-dir", tmp_path / "zoo"),
                          "metrics.json")
    assert not (tmp_path / "zoo" / "cards" / "x.json").exists()
    # A run whose config carries an RR context fusion ships it in its zoo card.
    shutil.copytree(run, tmp_path / "fused")
    cfg = json.loads((tmp_path / "fused" / "config.json").read_text())
    cfg["rr_context"] = {"features": list(FEATURES), "context_s": 15.0, "coef": np.eye(4, 8).tolist(),
                         "intercept": [0.0] * 4, "offsets": [0.0] * 4, "record_offsets": [0.0, 1.0, 0.0, 0.0]}
    (tmp_path / "fused" / "config.json").write_text(json.dumps(cfg))
    fused = json.loads(run_inprocess("zoo", "add", "fused", tmp_path / "fused", "--zoo-dir", tmp_path / "zoo", "--json",
                                     check=0).stdout)
    assert fused["rr_context"] == cfg["rr_context"]
    assert load_model("fused").card.rr_fusion.record_offsets.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_runs_table_reads_what_runs_wrote(trained_run, tmp_path):
    from conftest import assert_one_line_error

    run, metrics = trained_run
    md = run_inprocess("runs", "table", run, check=0).stdout
    row = next(line for line in md.splitlines() if line.startswith("| cnn1 |"))
    assert f"{metrics['val']['macro_f1']:.3f}" in row and f"{metrics['test']['macro_f1']:.3f}" in row
    assert "test F1 ~" in md
    # A run with cross-dataset figures gets the rhythm tables; a study folder its compression table.
    shutil.copytree(run, tmp_path / "r")
    cross = {"window": {"all": {"n": 10, "per_class": {c: {"f1": 0.5, "support": 5} for c in ("normal", "arrhythmia", "noise")}}},
             "long": {}, "stress": {"clean": {"af_sensitivity": 0.7, "af_ppv": 1.0, "false_af_min_per_hour": 0.0}}}
    (tmp_path / "r" / "cross_dataset.json").write_text(json.dumps(cross))
    md = run_inprocess("runs", "table", tmp_path / "r", check=0).stdout
    assert "| r | all | 0.500 (5) | 0.500 (5) | 0.500 (5) | 10 |" in md and "| none | – | 0.700 | 1.000 | 0.00 |" in md
    assert_one_line_error(run_inprocess("runs", "table", tmp_path / "nope"), "nope", "not a folder")
    assert_one_line_error(run_inprocess("runs", "table", tmp_path / "r", "--kind", "compression"), "results.csv")


def test_a_teacher_teaches_in_the_students_balanced_frame():
    from tinyrhythm.train.distill import load_teacher

    lm = load_model("rhythm-cnn5")
    offsets = lm.card.prior_correction["logit_offsets"]
    assert offsets == [0.0, -3.75, 1.0]  # folded into its head after training, chosen on validation
    x = torch.from_numpy(np.random.default_rng(2).normal(0, 0.3, (4, 1, 513)).astype(np.float32))
    balanced = load_teacher("rhythm-cnn5", lm.classes, lm.fs, lm.input_length)
    as_shipped = load_teacher("rhythm-cnn5", lm.classes, lm.fs, lm.input_length, balanced=False)
    with torch.no_grad():
        torch.testing.assert_close(balanced(x), as_shipped(x) - torch.tensor(offsets), rtol=1e-5, atol=1e-5)


def test_fine_tuning_starts_from_the_balanced_head():
    from tinyrhythm.train import TrainConfig
    from tinyrhythm.train.loop import initial_model

    shipped = load_model("rhythm-cnn3")
    cfg = TrainConfig(model="cnn3", task="rhythm3", init="rhythm-cnn3", conditioning="window", balanced=True)
    model = initial_model(cfg, 3, 513)
    offsets = torch.tensor(shipped.card.prior_correction["logit_offsets"])
    torch.testing.assert_close(model.fc.bias.detach(), shipped.model.fc.bias.detach() - offsets)


def test_predict_classifies_the_windows_evaluate_scores(small_store):
    """One windowing rule: the windows `predict` cuts from a raw CinC record are the windows the
    record-level evaluation takes from the store for that record, sample for sample."""
    from tinyrhythm.datasets.files import read_any
    from tinyrhythm.evaluate.scoring import eval_indices
    from tinyrhythm.inference import record_windows
    from tinyrhythm.windows.store import WindowStore

    store = WindowStore(small_store)
    idx = eval_indices(store, "test")
    keys, names = store.record_keys()[idx], store.record_names()
    checked = 0
    for key in np.unique(keys)[:25]:
        mine = idx[keys == key]
        x_store = store.batch(mine[np.argsort(store.starts()[mine])])[0]
        name = names[key].rsplit("/", 1)[-1]
        _, signal, fs = read_any(CINC / f"{name}.hea")
        x_predict = record_windows(signal, fs, store.fs, store.window_length)
        assert x_predict.shape == x_store.shape, name
        np.testing.assert_allclose(x_predict, x_store, atol=1e-5)
        checked += 1
    assert checked == 25


def test_a_dataset_knows_its_task_and_its_records(tmp_path):
    from conftest import DATA, assert_one_line_error
    from tinyrhythm.inspect import read_record

    out = tmp_path / "s"
    run_inprocess("data", "build", "cinc2017", "--max-patients", "4", "--out", out, "--quiet", check=0)
    assert json.loads((out / "manifest.json").read_text())["config"]["task"] == "cinc2017"  # the reader's default task
    assert_one_line_error(run_inprocess("data", "build", "cinc2017", "mitdb", "--out", tmp_path / "m"),
                          "different default tasks", "--task")
    # Each reader recognises its own records by name and folder.
    assert read_record(CINC / "A00001.hea").dataset == "cinc2017"
    icentia = next((DATA / "icentia11k" / "wfdb").glob("p*/p*/p*_s*.hea"))
    assert read_record(icentia).dataset == "icentia11k"
    assert read_record(DATA / "mitdb" / "100.hea").dataset == "wfdb"
