"""The shipped models: listed, hash-checked, usable right after install, metrics reproducible."""

import json
import shutil

import pytest

from tinyrhythm import models, zoo
from tinyrhythm.errors import DataError
from tinyrhythm.paths import sha256_file
from tinyrhythm.runtime import load_model

from conftest import CINC, assert_one_line_error, run_cli

EXPECTED = {"cnn1", "cnn2", "cnn3", "cnn4", "cnn5", "cnn3-kd"}
INT8 = {"cnn3-int8", "cnn3-kd-int8"}


def test_zoo_list_json():
    rows = json.loads(run_cli("zoo", "list", "--json", check=0).stdout)
    by_name = {r["name"]: r for r in rows}
    assert EXPECTED <= set(by_name)
    for name in EXPECTED:
        r = by_name[name]
        assert r["task"] == "cinc2017" and r["labels"] == ["N", "A", "O", "~"]
        d = models.describe(r["architecture"], num_classes=4, input_length=r["input_length"])
        assert r["params_table"] == d["params_table"] and r["weight_bytes"] == d["float32_bytes"]
        assert r["sha256"] == sha256_file(zoo.WEIGHTS_DIR / f"{name}.pt")
        for key in ("cinc_score", "macro_f1", "af_f1"):
            assert 0 < r["metrics"][key] <= 1


def test_predict_with_a_zoo_name():
    proc = run_cli("predict", "--model", "cnn3", "--json", CINC / "A00001.hea", CINC / "A00004.hea", check=0)
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [l["record"] for l in lines] == ["A00001", "A00004"]
    assert all(set(l["probabilities"]) == {"N", "A", "O", "~"} for l in lines)


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    shutil.copytree(zoo.WEIGHTS_DIR, tmp_path / "w")
    path = tmp_path / "w" / "cnn3.pt"
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "w")
    with pytest.raises(DataError, match="does not match the model card"):
        load_model("cnn3")
    assert load_model("cnn1").classes == ["N", "A", "O", "~"]


def test_unknown_zoo_name():
    assert_one_line_error(run_cli("predict", "--model", "cnn3-nope", CINC / "A00001.hea"), "cnn3-nope")


def test_int8_zoo_models_run_in_onnx_runtime():
    from tinyrhythm.export.onnx import OrtModule, weight_bytes

    cards = zoo.cards()
    assert INT8 <= set(cards)
    for name in INT8:
        card = cards[name]
        path = zoo.WEIGHTS_DIR / card["weights"]
        assert card["format"] == "onnx" and card["sha256"] == sha256_file(path)
        assert card["weight_bytes"] == weight_bytes(path)["total"] <= 16 * 1024
        assert isinstance(load_model(name).model, OrtModule)
        # Within a point of the float parent it was quantized from, as measured when packaged.
        assert abs(card["metrics"]["cinc_score"] - card["parent_metrics"]["cinc_score"]) <= 0.01
    int8 = [json.loads(l) for l in run_cli("predict", "--model", "cnn3-int8", "--json", CINC / "A00001.hea",
                                           CINC / "A00004.hea", check=0).stdout.splitlines()]
    fp32 = [json.loads(l) for l in run_cli("predict", "--model", "cnn3", "--json", CINC / "A00001.hea",
                                           CINC / "A00004.hea", check=0).stdout.splitlines()]
    assert [set(l) for l in int8] == [set(l) for l in fp32]
    assert [l["label"] for l in int8] == [l["label"] for l in fp32]


@pytest.mark.slow
def test_zoo_metrics_reproduce(tmp_path_factory):
    """CI re-scores every shipped model on the test split and finds the card's numbers."""
    cache = tmp_path_factory.mktemp("cache")
    for name in sorted(EXPECTED | INT8):
        card = zoo.cards()[name]
        proc = run_cli("evaluate", name, "--task", "cinc2017", "--split", "test", "--json",
                       env={"TINYRHYTHM_CACHE": str(cache)}, check=0)
        r = json.loads(proc.stdout)
        # int8 kernels may round differently on another CPU (VNNI or not): a few records' worth.
        tol = 6e-5 if name in EXPECTED else 0.01
        for key in ("cinc_score", "macro_f1", "af_f1"):
            assert r[key] == pytest.approx(card["metrics"][key], abs=tol), (name, key)
        assert r["n"] == card["metrics"]["n"]


RHYTHM = {"rhythm-cnn1", "rhythm-cnn3", "rhythm-cnn5", "rhythm-cnn3-int8"}


@pytest.mark.slow
def test_rhythm_zoo_metrics_reproduce(tmp_path_factory):
    """CI rebuilds the multi-source rhythm store from the shared data and re-scores the zoo v3
    models on its test split: the cards' numbers come back."""
    cache = tmp_path_factory.mktemp("cache")
    for name in sorted(RHYTHM):
        card = zoo.cards()[name]
        proc = run_cli("evaluate", name, "--task", "rhythm3", "--split", "test", "--json",
                       env={"TINYRHYTHM_CACHE": str(cache)}, check=0)
        r = json.loads(proc.stdout)
        tol = 1e-4 if card.get("format") != "onnx" else 0.01
        for key in ("macro_f1", "af_f1"):
            assert r[key] == pytest.approx(card["metrics"][key], abs=tol), (name, key)
        assert r["n"] == card["metrics"]["n"]


def test_rhythm_int8_model_is_within_a_point_of_its_parent():
    card = zoo.cards()["rhythm-cnn3-int8"]
    assert card["parent"] == "rhythm-cnn3" and card["weight_bytes"] <= 16 * 1024
    assert abs(card["metrics"]["af_f1"] - card["parent_metrics"]["af_f1"]) <= 0.01


def test_monitor_uses_the_rhythm_model_by_default():
    from conftest import DATA

    out = json.loads(run_cli("monitor", DATA / "cpsc2021" / "data_25_24.hea", "--json", check=0).stdout)
    assert out["model"] == "rhythm-cnn3-int8"
    # this Holter record carries a ~5 mV DC offset: the CinC models called all of it noise
    assert out["noise_fraction"] < 0.2 and out["unreadable_fraction"] == 0
