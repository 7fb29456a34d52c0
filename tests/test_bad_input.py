"""Each kind of bad input: one line naming the file and the reason, exit 2, nothing half-written."""

import shutil

import numpy as np
import pytest
import wfdb

from conftest import CINC, ICENTIA_P0, assert_one_line_error, copy_record, run_inprocess


@pytest.fixture
def icentia_copy(tmp_path):
    return copy_record(ICENTIA_P0 / "p00000_s15", tmp_path / "icentia11k" / "wfdb" / "p00" / "p00000")


def test_truncated_dat(icentia_copy):
    dat = icentia_copy.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:1_000_000])
    assert_one_line_error(run_inprocess("data", "show", icentia_copy.with_suffix(".hea")), str(dat), "truncated")


def test_header_disagrees_with_data(icentia_copy):
    hea = icentia_copy.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("1048577", "1048000"))  # sample count no longer matches
    assert_one_line_error(run_inprocess("data", "show", hea), "p00000_s15.dat", "checksum mismatch")
    dat = icentia_copy.with_suffix(".dat")
    raw = bytearray(dat.read_bytes())
    raw[1000:1002] = b"\x00\x40"  # one corrupted sample
    dat.write_bytes(bytes(raw))
    hea.write_text(hea.read_text().replace("1048000", "1048577"))
    assert_one_line_error(run_inprocess("data", "show", hea), "checksum mismatch")


def test_missing_and_unsupported_sampling_rate(icentia_copy):
    hea = icentia_copy.with_suffix(".hea")
    text = hea.read_text()
    hea.write_text(text.replace("p00000_s15 1 250 1048577", "p00000_s15 1"))
    assert_one_line_error(run_inprocess("data", "show", hea), str(hea), "missing sampling rate")
    hea.write_text(text.replace(" 250 ", " 500 "))
    assert_one_line_error(run_inprocess("data", "show", hea), str(hea), "unsupported sampling rate 500 Hz")


def _write_record(tmp_path, name, d_signal, fs=250):
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["ecg"], d_signal=d_signal.reshape(-1, 1), fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path))
    return tmp_path / f"{name}.hea"


def test_nan_and_flat_line(tmp_path):
    sig = (np.sin(np.arange(5000) / 10) * 300).astype(np.int16)
    sig[1234] = -32768  # WFDB's invalid-sample marker becomes NaN
    assert_one_line_error(run_inprocess("data", "show", _write_record(tmp_path, "nan", sig)), "nan.dat", "NaN/Inf", "1234")
    flat = np.full(5000, 7, np.int16)
    assert_one_line_error(run_inprocess("data", "show", _write_record(tmp_path, "flat", flat)), "flat.dat", "flat-line")


def test_empty_record(tmp_path):
    (tmp_path / "empty.hea").write_text("empty 1 250 0\nempty.dat 16 200(0)/mV 16 0 0 0 0 ecg\n")
    (tmp_path / "empty.dat").write_bytes(b"")
    assert_one_line_error(run_inprocess("data", "show", tmp_path / "empty.hea"), "empty.hea", "empty record")


def test_annotation_without_signal(icentia_copy):
    icentia_copy.with_suffix(".dat").unlink()
    assert_one_line_error(run_inprocess("data", "show", icentia_copy.with_suffix(".hea")), "p00000_s15.dat", "not found")
    icentia_copy.with_suffix(".hea").unlink()
    assert_one_line_error(run_inprocess("data", "show", icentia_copy.with_suffix(".atr")), "p00000_s15.hea", "not found")


def _cinc_root(tmp_path, n=20):
    root = tmp_path / "data" / "cinc2017" / "training2017"
    root.mkdir(parents=True)
    names = [l.split(",")[0] for l in (CINC / "REFERENCE.csv").read_text().splitlines()[:n]]
    for name in names:
        for ext in (".hea", ".mat"):
            shutil.copyfile(CINC / f"{name}{ext}", root / f"{name}{ext}")
    lines = (CINC / "REFERENCE.csv").read_text().splitlines()[:n]
    (root / "REFERENCE.csv").write_text("\n".join(lines) + "\n")
    return root, names


def test_unknown_label_in_reference(tmp_path):
    root, names = _cinc_root(tmp_path)
    ref = root / "REFERENCE.csv"
    ref.write_text(ref.read_text().replace(f"{names[3]},", f"{names[3]},X", 1).replace(",XN", ",X").replace(",XA", ",X").replace(",XO", ",X").replace(",X~", ",X"))
    proc = run_inprocess("data", "summary", "cinc2017", env={"TINYRHYTHM_DATA": str(tmp_path / "data")})
    assert_one_line_error(proc, str(ref), "line 4", "unknown label 'X'")


def test_folder_that_is_not_the_dataset(tmp_path):
    (tmp_path / "cinc2017" / "training2017").mkdir(parents=True)
    (tmp_path / "icentia11k" / "wfdb").mkdir(parents=True)
    env = {"TINYRHYTHM_DATA": str(tmp_path)}
    assert_one_line_error(run_inprocess("data", "summary", "cinc2017", env=env), "training2017", "REFERENCE.csv not found")
    assert_one_line_error(run_inprocess("data", "summary", "icentia11k", env=env), "not an Icentia11k WFDB folder")
    assert_one_line_error(run_inprocess("data", "summary", "mitdb", env=env), "mitdb folder not found")


def test_data_env_unset_or_wrong(tmp_path):
    assert_one_line_error(run_inprocess("data", "summary", "cinc2017", env={"TINYRHYTHM_DATA": None}), "TINYRHYTHM_DATA is not set")
    missing = tmp_path / "nowhere"
    assert_one_line_error(run_inprocess("data", "summary", "cinc2017", env={"TINYRHYTHM_DATA": str(missing)}), str(missing))


def test_failed_build_leaves_no_store(tmp_path):
    root, names = _cinc_root(tmp_path)
    mat = root / f"{names[10]}.mat"
    mat.write_bytes(mat.read_bytes()[:100])
    out = tmp_path / "store"
    proc = run_inprocess("data", "build", "cinc2017", "--task", "cinc2017", "--out", out, "--quiet",
                   env={"TINYRHYTHM_DATA": str(tmp_path / "data")})
    assert_one_line_error(proc, str(mat))
    assert not out.exists()
    # with --skip-bad the record is left out and named in the manifest
    proc = run_inprocess("data", "build", "cinc2017", "--task", "cinc2017", "--out", out, "--quiet", "--skip-bad",
                   env={"TINYRHYTHM_DATA": str(tmp_path / "data")}, check=0)
    import json

    m = json.loads((out / "manifest.json").read_text())
    assert m["patients"] == 20 and len(m["skipped"]) == 1 and names[10] in m["skipped"][0]


def test_bad_options():
    assert_one_line_error(run_inprocess("data", "build", "cinc2017", "--task", "cinc2017", "--out", "x", "--shard", "3/2"), "--shard")
    assert_one_line_error(run_inprocess("data", "build", "cinc2017", "--task", "cinc2017", "--out", "x", "--purity", "0.2"), "purity")
    assert_one_line_error(run_inprocess("data", "download", "icentia11k", "--patients", "abc", "--out", "x"), "--patients")


def test_run_folder_with_weights_of_another_model_is_refused(tmp_path):
    import json
    import shutil

    import torch

    from tinyrhythm import models
    from tinyrhythm.zoo import CARDS_DIR

    card = json.loads((CARDS_DIR / "cnn3.json").read_text())
    run = tmp_path / "run"
    run.mkdir()
    from dataclasses import asdict

    cfg = {**asdict(models.create("cnn3", num_classes=4, input_length=513).config), "name": "cnn3"}  # as train writes it
    (run / "config.json").write_text(json.dumps({"model": cfg,
                                                 "classes": card["labels"], "fs": 62.5, "input_length": 513,
                                                 "task": {"name": "cinc2017"}}))
    torch.save(models.create("cnn1", num_classes=4, input_length=513).state_dict(), run / "model.pt")
    from tinyrhythm.checkpoint import record_hash

    record_hash(run / "model.pt")  # a run's card records its weights' hash (checkpoint.save_atomic does this)
    from conftest import assert_one_line_error

    assert_one_line_error(run_inprocess("predict", "--model", run, str(tmp_path / "none.npy"), "--fs", "250"),
                          "model.pt", "do not fit model cnn3")
    (run / "config.json").write_text(json.dumps({"model": {"name": "cnn3"}, "classes": card["labels"], "fs": 62.5,
                                                 "input_length": 513, "task": {"name": "cinc2017"}}))
    record_hash(run / "model.pt")
    assert_one_line_error(run_inprocess("predict", "--model", run, str(tmp_path / "none.npy"), "--fs", "250"),
                          "config.json", "invalid model section")
    shutil.rmtree(run)
