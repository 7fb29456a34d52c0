"""The shipped models: listed, hash-checked, usable right after install, metrics reproducible."""

import json
import shutil

import pytest

from tinyrhythm import models, zoo
from tinyrhythm.errors import DataError

from conftest import CINC, assert_one_line_error, run_cli

EXPECTED = {"cnn1", "cnn2", "cnn3", "cnn4", "cnn5"}


def test_zoo_list_json():
    rows = json.loads(run_cli("zoo", "list", "--json", check=0).stdout)
    by_name = {r["name"]: r for r in rows}
    assert EXPECTED <= set(by_name)
    for name in EXPECTED:
        r = by_name[name]
        assert r["task"] == "cinc2017" and r["labels"] == ["N", "A", "O", "~"]
        d = models.describe(r["architecture"], num_classes=4, input_length=r["input_length"])
        assert r["params_table"] == d["params_table"] and r["weight_bytes"] == d["float32_bytes"]
        assert r["sha256"] == zoo.sha256(zoo.WEIGHTS_DIR / f"{name}.pt")
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
        zoo.load("cnn3")
    assert zoo.load("cnn1").classes == ["N", "A", "O", "~"]


def test_unknown_zoo_name():
    assert_one_line_error(run_cli("predict", "--model", "cnn3-nope", CINC / "A00001.hea"), "cnn3-nope")


@pytest.mark.slow
def test_zoo_metrics_reproduce(tmp_path_factory):
    """CI re-scores every shipped model on the test split and finds the card's numbers."""
    cache = tmp_path_factory.mktemp("cache")
    for name in sorted(EXPECTED):
        card = zoo.cards()[name]
        proc = run_cli("evaluate", name, "--task", "cinc2017", "--split", "test", "--json",
                       env={"TINYRHYTHM_CACHE": str(cache)}, check=0)
        r = json.loads(proc.stdout)
        for key in ("cinc_score", "macro_f1", "af_f1"):
            assert r[key] == pytest.approx(card["metrics"][key], abs=6e-5), (name, key)
        assert r["n"] == card["metrics"]["n"]
