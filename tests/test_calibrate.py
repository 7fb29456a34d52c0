"""`tinyrhythm calibrate`: a trained run's prior correction chosen again, on real windows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error, run_cli, zoo_run_folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Real rhythm3 windows of three Holter sources; validation holds AFTDB AF and AFPDB sinus."""
    from tinyrhythm.windows.build import build_store
    from tinyrhythm.windows.labelling import WindowConfig
    from tinyrhythm.windows.schema import BuildConfig

    out = tmp_path_factory.mktemp("cal") / "st"
    build_store(out, BuildConfig(["aftdb", "cpsc2021", "afpdb"], "rhythm3", WindowConfig(fs=62.5, hop=256),
                                 max_patients=6, split_seed=0), quiet=True)
    return out


@pytest.fixture()
def run(tmp_path):
    return zoo_run_folder(tmp_path / "run")


def test_split_weights_give_every_dataset_the_same_weight(store):
    from tinyrhythm.evaluate.scoring import eval_indices, split_weights
    from tinyrhythm.windows.store import WindowStore

    ws = WindowStore(store)
    assert split_weights(ws, "val", "windows") is None
    w = split_weights(ws, "val", "datasets")
    ds = ws.dataset_index()[0][eval_indices(ws, "val")]
    assert len(np.unique(ds)) == 2
    for d in np.unique(ds):
        assert w[ds == d].sum() == pytest.approx(1.0)
    with pytest.raises(Exception, match="prior weighting"):
        split_weights(ws, "val", "records")


def test_calibrate_cli_rechooses_the_correction_into_a_new_run(run, store, tmp_path):
    from tinyrhythm.evaluate.scoring import prior_offsets, split_logits, split_weights
    from tinyrhythm.runtime import load_model
    from tinyrhythm.windows.store import WindowStore

    before = (run / "model.pt").read_bytes(), (run / "config.json").read_text()
    old = load_model(run)
    old_off = np.array(old.card.logit_offsets)
    outs = {}
    for weighting in ("windows", "datasets"):
        out = tmp_path / weighting
        r = json.loads(run_cli("calibrate", run, "--out", out, "--store", store, "--weighting", weighting,
                               "--json", check=0).stdout)
        new = load_model(out)  # weights checked against the hash the new card records
        off = np.array(r["prior_correction"]["logit_offsets"])
        assert r["prior_correction"]["replaces"] == list(old_off) and r["prior_correction"]["weighting"] == weighting
        assert new.card.logit_offsets == list(off) and new.card.train["prior_weighting"] == weighting
        # Only the head's bias moved, by exactly the change of offsets.
        d_bias = (new.model.fc.bias - old.model.fc.bias).detach().numpy()
        np.testing.assert_allclose(d_bias, off - old_off, atol=1e-5)
        sd_old, sd_new = old.model.state_dict(), new.model.state_dict()
        assert all(torch.equal(sd_old[k], sd_new[k]) for k in sd_old if k != "fc.bias")
        # The offsets are the search's optimum on the store's validation windows, in the balanced frame.
        ws = WindowStore(store)
        z, y = split_logits(old.model, ws, "val", "cpu")
        want = prior_offsets(z - old_off, y, split_weights(ws, "val", weighting))[0]
        np.testing.assert_array_equal(off, want)
        assert r["val"]["n"] == len(y) and "test" in r
        outs[weighting] = off
    # Weighted by dataset, AFTDB's few AF windows count as much as AFPDB's thousands of sinus ones.
    assert outs["datasets"][1] > outs["windows"][1]
    assert ((run / "model.pt").read_bytes(), (run / "config.json").read_text()) == before  # source run untouched


def test_calibrate_refuses_what_it_cannot_do(run, store, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert_one_line_error(run_cli("calibrate", run, "--out", out, "--store", store, check=2), "taken", "not empty")
    assert (out / "keep.txt").read_text() == "x"
    proc = run_cli("calibrate", "rhythm-cnn3-int8", "--out", tmp_path / "q", "--store", store, check=2)
    assert_one_line_error(proc, "PyTorch run folder")
    assert not (tmp_path / "q").exists() and not (tmp_path / "q.tmp").exists()
