"""The measurements of "Lead placement and lead mixing for the zoo": leads turned between a
record's two (scripts/lead_rotation.py) and weight-space mixes of a model and its fine-tune
(scripts/weight_interpolation.py), on real two-lead AFTDB, CPSC 2021 and AFPDB records."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import lead_rotation  # noqa: E402
import weight_interpolation  # noqa: E402


@pytest.fixture(scope="module")
def two_lead_store(tmp_path_factory):
    from tinyrhythm.windows.labelling import WindowConfig
    from tinyrhythm.windows.store import BuildConfig, WindowStore, build_store

    folder = tmp_path_factory.mktemp("twolead") / "st"
    build_store(folder, BuildConfig(["aftdb", "cpsc2021"], "rhythm3", WindowConfig(fs=62.5, hop=256), max_patients=8,
                                    lead="both"), quiet=True)
    return WindowStore(folder)


def test_a_turned_lead_is_the_same_moment_seen_between_the_two_leads(two_lead_store):
    from tinyrhythm.runtime import load_model

    ws = two_lead_store
    model = load_model("rhythm-cnn3").model.eval()
    idx = np.arange(len(ws))
    sub, other = lead_rotation.two_lead(ws, idx)
    assert len(sub) == len(ws) > 20  # every window of a two-lead record has its partner
    x = torch.from_numpy(ws.batch(sub)[0]).unsqueeze(1)
    y = torch.from_numpy(other).unsqueeze(1)
    with torch.no_grad():
        plain = model(x)
        # 0 degrees is the lead as recorded; 90 degrees is the other lead itself, its sign
        # alternating from window to window as the angle's does.
        assert torch.allclose(lead_rotation.Rotated(model, other, 0.0)(x), plain, atol=1e-5)
        sign = torch.where(torch.arange(len(sub)) % 2 == 0, 1.0, -1.0)[:, None, None]
        turned = lead_rotation.Rotated(model, other, 90.0)
        assert torch.allclose(turned(x[:7]), model(sign[:7] * y[:7]), atol=1e-4)  # batch after batch, in order
        assert torch.allclose(turned(x[7:]), model(sign[7:] * y[7:]), atol=1e-4)
    f = lead_rotation.rotation_figures(model, ws, idx, (0.0, 45.0))
    assert f["windows"] == len(sub) and f[0.0]["changed"] == 0 and f[0.0]["macro_f1"] == f["stored"]["macro_f1"]
    assert 0 <= f[45.0]["changed"] <= 1 and f[45.0]["n"] == len(sub)


def test_weight_interpolation_mixes_a_model_and_its_finetune_into_a_calibrated_run(tmp_path, two_lead_store):
    from tinyrhythm.runtime import load_model

    (tmp_path / "cfg.json").write_text(json.dumps({"task": "rhythm3", "conditioning": "window", "epochs": 1,
                                                   "samples_per_epoch": 256, "batch_size": 64, "threads": 1,
                                                   "balanced": True, "prior_correction": True}))
    common = ("--config", tmp_path / "cfg.json", "--store", two_lead_store.path, "--quiet")
    run_cli("train", "--model", "cnn1", "--out", tmp_path / "base", *common, check=0)
    (tmp_path / "ft.json").write_text(json.dumps({**json.loads((tmp_path / "cfg.json").read_text()),
                                                  "init": str(tmp_path / "base"), "lr": 0.01}))
    run_cli("train", "--model", "cnn1", "--out", tmp_path / "ft", "--config", tmp_path / "ft.json",
            "--store", two_lead_store.path, "--quiet", check=0)

    a, base_lm = weight_interpolation.balanced_state(str(tmp_path / "base"))
    b, _ = weight_interpolation.balanced_state(str(tmp_path / "ft"))
    offsets = base_lm.card.logit_offsets
    assert offsets is not None and len(offsets) == 3
    raw = load_model(tmp_path / "base").model.state_dict()
    # the balanced frame: the recorded prior correction is out of the head, nothing else moved
    assert torch.allclose(a["fc.bias"] + torch.as_tensor(offsets), raw["fc.bias"])
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    for alpha, want in ((0.0, a), (1.0, b)):
        m = weight_interpolation.mix(a, b, alpha)
        assert all(torch.allclose(m[k], want[k]) for k in m if m[k].is_floating_point())
    half = weight_interpolation.mix(a, b, 0.5)
    k = "fc.weight"
    assert torch.allclose(half[k], (a[k] + b[k]) / 2)
    with pytest.raises(SystemExit, match="differ in shape"):
        weight_interpolation.mix(a, {**b, k: b[k][:1]}, 0.5)

    metrics = weight_interpolation.write_run(str(tmp_path / "base"), str(tmp_path / "ft"), 0.5, half, tmp_path / "mix")
    lm = load_model(tmp_path / "mix")  # SHA-256-checked like any run
    card = json.loads((tmp_path / "mix" / "config.json").read_text())
    assert card["interpolation"] == {"base": str(tmp_path / "base"), "finetuned": str(tmp_path / "ft"), "alpha": 0.5}
    assert metrics["prior_correction"]["replaces"] is None  # chosen afresh on the mix
    got = lm.model.state_dict()
    corr = torch.as_tensor(lm.card.logit_offsets)
    assert torch.allclose(got["fc.bias"] - corr, half["fc.bias"]) and torch.allclose(got[k], half[k])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("mix")) == ["mix"]  # no temporary left


def test_whole_records_are_turned_lead_by_lead_with_a_flat_lead_left_out():
    """`lead_rotation.py --monitor` reads both leads of every record of a split: at 0 degrees the
    first lead as recorded, at 90 the second (sign alternating from record to record); AFPDB
    n17, whose second lead is flat, is left out of the subject's records, n18 kept."""
    from tinyrhythm.datasets import open_dataset

    ds = open_dataset("aftdb")
    plain = list(lead_rotation.turned_records("aftdb", "val", 0.0))
    turned = list(lead_rotation.turned_records("aftdb", "val", 90.0))
    assert len(plain) == len(turned) > 3
    for k, ((s0, r0), (s90, r90)) in enumerate(zip(plain, turned)):
        assert r0.record_id == r90.record_id and r0.dataset == "aftdb"
        second = ds.read(r0.path, r0.patient_id, lead=1).signal
        np.testing.assert_allclose(s0, r0.signal, atol=1e-6)
        np.testing.assert_allclose(s90, (1 if k % 2 == 0 else -1) * second, atol=1e-5)
    afpdb = open_dataset("afpdb")
    subject = next(p for p in afpdb.patients() if any(x.name == "n17.hea" for x in afpdb.record_paths(p)))
    split = lead_rotation.assign_split(subject)
    names = {r.record_id for _, r in lead_rotation.turned_records("afpdb", split, 30.0) if r.patient_id == subject}
    assert "n17" not in names and "n18" in names
