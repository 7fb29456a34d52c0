import json

import pytest
import torch

from tinyrhythm.errors import TinyRhythmError
from tinyrhythm.models import count_params_table, create
from tinyrhythm.models.cnn import same_pad

from conftest import run_cli

STUDY_COUNTS = {"cnn1": 4455, "cnn2": 7093, "cnn3": 11833, "cnn4": 20289, "cnn5": 73343}


def test_models_json_reproduces_the_study_table():
    rows = json.loads(run_cli("models", "--json", check=0).stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(STUDY_COUNTS) | {"teacher", "cnn3-gap"}
    for name, n in STUDY_COUNTS.items():
        r = by_name[name]
        assert r["params_table"] == n, name
        for key in ("blocks", "initial_filters", "s_j", "params_trainable", "macs", "float32_bytes"):
            assert key in r
        assert r["float32_bytes"] == 4 * r["params_trainable"]
    assert by_name["teacher"]["params_table"] > 3 * by_name["cnn5"]["params_table"]
    assert [by_name[n]["macs"] for n in STUDY_COUNTS] == sorted(by_name[n]["macs"] for n in STUDY_COUNTS)


@pytest.mark.parametrize("name,t_final,f_last", [("cnn1", 513, 2), ("cnn2", 257, 4), ("cnn3", 129, 8),
                                                 ("cnn4", 65, 16), ("cnn5", 65, 32)])
def test_shapes_and_forward(name, t_final, f_last):
    model = create(name, num_classes=4).eval()
    assert (model.final_length, model.final_channels) == (t_final, f_last)
    out = model(torch.randn(5, 1, 513))
    assert out.shape == (5, 4) and torch.isfinite(out).all()


def test_keras_same_padding():
    assert same_pad(513, 16, 1) == (7, 8)
    assert same_pad(513, 16, 2) == (7, 8)  # out 257: (256*2 + 16 - 513) = 15
    assert same_pad(257, 16, 2) == (7, 8) and same_pad(10, 4, 2) == (1, 1) and same_pad(4, 1, 2) == (0, 0)


def test_counts_depend_on_classes_and_length():
    assert count_params_table(create("cnn3", num_classes=4)) == 11833 + 129 * 8 + 1
    assert count_params_table(create("cnn1", input_length=2049)) != 4455
    with pytest.raises(TinyRhythmError):
        create("cnn9")


def test_gap_head_takes_any_length():
    m = create("cnn3-gap", num_classes=4, input_length=2049).eval()
    assert count_params_table(m) == 11833 - (129 * 8 * 3 + 3) + (8 * 4 + 4)
    for n in (513, 2049, 4000):
        assert m(torch.randn(2, 1, n)).shape == (2, 4)
