"""Monitoring long recordings: the CLI on real WFDB records, episodes, evaluation, bad stretches."""

import json

import numpy as np
import pytest
import wfdb

from conftest import CINC, DATA, ICENTIA_P0, assert_one_line_error, copy_record, run_cli
from tinyrhythm.datasets.concat import cinc_episode_recording
from tinyrhythm.datasets.wfdb_io import read_annotations, read_signal
from tinyrhythm.runtime import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
from tinyrhythm.monitor.episodes import UNREADABLE, Episode, burden, merge_short, smooth
from tinyrhythm.monitor.evaluate import evaluate_episodes, read_reference

MITDB_100 = DATA / "mitdb" / "100.hea"


@pytest.fixture(scope="module")
def lm():
    return load_model("cnn3-kd-int8")


@pytest.fixture(scope="module")
def af_recording(tmp_path_factory):
    """20 minutes of real CinC test-split records joined in labelled blocks, with a reference .atr."""
    return cinc_episode_recording(tmp_path_factory.mktemp("ep"), "test", minutes=20, seed=3, root=CINC)


def test_monitor_json_on_mitdb_100_has_no_af(tmp_path):
    proc = run_cli("monitor", MITDB_100, "--model", "cnn3-kd-int8", "--json", "--reference", "atr", check=0)
    r = json.loads(proc.stdout)
    for key in ("record", "fs", "duration_s", "af_burden", "noise_fraction", "episodes"):
        assert key in r
    assert r["record"] == "100" and r["fs"] == 360 and abs(r["duration_s"] - 650000 / 360) < 1e-3
    assert r["af_burden"] < 0.02, r["af_burden"]
    assert r["evaluation"]["false_af_min_per_hour"] < 1.0
    eps = r["episodes"]
    assert eps[0]["start_s"] == 0 and abs(eps[-1]["end_s"] - r["duration_s"]) < 1e-3
    assert all(a["end_s"] == b["start_s"] for a, b in zip(eps, eps[1:]))
    assert {e["label"] for e in eps} <= {"N", "AFIB", "AFL", "OTHER", "NOISE", UNREADABLE}


def test_monitor_out_writes_wfdb_annotations_standard_tools_read(tmp_path, af_recording):
    out = tmp_path / "out"
    proc = run_cli("monitor", af_recording, "--out", out, "--json", check=0)
    r = json.loads(proc.stdout)
    name = af_recording.stem
    ann = wfdb.rdann(str(out / name), "tr")
    assert list(ann.symbol) == ["+"] * len(r["episodes"])
    assert [a.strip() for a in ann.aux_note][:2] == ["(" + {"N": "N", "AFIB": "AFIB", "OTHER": "O", "NOISE": "NOISE"}[e["label"]]
                                                      for e in r["episodes"][:2]]
    # Our own reader (the one training uses) gets the episodes back from the file.
    zones, _, _ = read_annotations(out / name, "tr", int(r["duration_s"] * r["fs"]))
    # UNREADABLE reads back as NOISE: for training, a lead-off stretch is noise.
    assert [z.label for z in zones] == [{UNREADABLE: "NOISE"}.get(e["label"], e["label"]) for e in r["episodes"]]
    rows = (out / f"{name}_episodes.csv").read_text().splitlines()
    assert rows[0] == "label,start_s,end_s,duration_s" and len(rows) == len(r["episodes"]) + 1
    assert json.loads((out / f"{name}_monitor.json").read_text())["af_burden"] == r["af_burden"]
    assert not [p for p in out.iterdir() if p.name.startswith(".monitor-")]


def test_episode_evaluation_on_joined_cinc_test_records(lm, af_recording):
    r = monitor(af_recording, lm)
    ev = evaluate_episodes(r, read_reference(r, "atr"))
    assert ev["reference_af_episodes"] >= 2
    # Measured 2026-11-25: see README "Monitoring"; these bounds catch a broken pipeline, not noise.
    assert ev["episode_sensitivity"] >= 0.6
    assert ev["af_f1_duration"] >= 0.7
    assert abs(ev["af_burden_error"]) < 0.1
    cm = np.array(ev["confusion"]["matrix"])
    assert cm.trace() / cm.sum() > 0.6


def test_chunk_size_does_not_change_results(lm):
    rec = ICENTIA_P0 / "p00000_s15.hea"
    a = monitor(rec, lm, cfg=MonitorConfig(chunk_s=600))
    b = monitor(rec, lm, cfg=MonitorConfig(chunk_s=97))
    assert a.probs.shape == b.probs.shape
    np.testing.assert_allclose(a.probs, b.probs, atol=2e-3)
    assert np.mean(np.array(a.labels) == np.array(b.labels)) > 0.995


def test_gaps_flat_saturation_and_nan_are_unreadable_not_a_crash(tmp_path):
    x, fs, _ = read_signal(ICENTIA_P0 / "p00000_s15")
    x = x[: int(600 * fs)].astype(np.float64)
    x[int(100 * fs): int(160 * fs)] = np.nan  # a gap
    x[int(250 * fs): int(310 * fs)] = 0.0  # lead off
    x[int(400 * fs): int(460 * fs)] = 8.0  # saturated at the rail
    np.save(tmp_path / "bad.npy", x)
    proc = run_cli("monitor", tmp_path / "bad.npy", "--fs", fs, "--json", check=0)
    r = json.loads(proc.stdout)
    unread = [e for e in r["episodes"] if e["label"] == UNREADABLE]
    for lo, hi in ((100, 160), (250, 310), (400, 460)):
        assert any(e["start_s"] <= lo + 8 and e["end_s"] >= hi - 8 for e in unread), (lo, hi, unread)
    assert 0.25 < r["unreadable_fraction"] < 0.45
    assert r["noise_fraction"] >= r["unreadable_fraction"]


def test_truncated_record_marks_missing_tail(tmp_path):
    base = copy_record(MITDB_100.with_suffix(""), tmp_path)
    dat = base.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[: 3 * 360 * 600])  # 10 of 30 min (fmt 212: 3 bytes per sample pair)
    proc = run_cli("monitor", base.with_suffix(".hea"), "--json", check=0)
    assert "truncated" in proc.stderr and str(dat) in proc.stderr
    r = json.loads(proc.stdout)
    assert r["episodes"][-1]["label"] == UNREADABLE and r["episodes"][-1]["start_s"] < 610
    assert 0.6 < r["unreadable_fraction"] < 0.7


def test_lead_option_and_bad_input_errors(tmp_path):
    r = json.loads(run_cli("monitor", MITDB_100, "--lead", "V5", "--json", check=0).stdout)
    assert r["lead"] == "V5"
    assert_one_line_error(run_cli("monitor", MITDB_100, "--lead", "3"), "100.hea", "lead 3 does not exist")
    (tmp_path / "x.txt").write_text("1,2,3\n")
    assert_one_line_error(run_cli("monitor", tmp_path / "x.txt"), "x.txt", "unsupported file type")
    np.save(tmp_path / "s.npy", np.zeros(1000))
    assert_one_line_error(run_cli("monitor", tmp_path / "s.npy"), "s.npy", "--fs")
    assert_one_line_error(run_cli("monitor", tmp_path / "missing.hea"), "missing.hea", "not found")
    assert_one_line_error(run_cli("monitor", tmp_path / "s.npy", "--fs", "250", "--reference", "atr"), "s.npy", "WFDB")
    assert_one_line_error(run_cli("monitor", MITDB_100, "--reference", "nope"), "100.nope", "not found")
    assert_one_line_error(run_cli("monitor", MITDB_100, "--hop", "60"), "--hop")
    (tmp_path / "junk.npy").write_bytes(b"not an npy file")
    assert_one_line_error(run_cli("monitor", tmp_path / "junk.npy", "--fs", "250"), "junk.npy", "unreadable")


def test_smoothing_and_episode_merging():
    p = np.tile([[0.8, 0.1, 0.05, 0.05]], (40, 1))
    p[20] = [0.1, 0.8, 0.05, 0.05]  # one stray AF window
    assert (smooth(p, "none") == 1).sum() == 1
    assert (smooth(p, "hmm", stay=0.9) == 0).all()
    assert (smooth(p, "mean", width=5) == 0).all()
    eps = [Episode("N", 0, 100), Episode("AFIB", 100, 110), Episode("N", 110, 200), Episode(UNREADABLE, 200, 205),
           Episode("AFIB", 205, 300)]
    merged = merge_short(eps, 30)
    assert [(e.label, e.start_s, e.end_s) for e in merged] == [("N", 0, 200), (UNREADABLE, 200, 205), ("AFIB", 205, 300)]
    b = burden(merged)
    assert b["af_burden"] == pytest.approx(95 / 295) and b["unreadable_fraction"] == pytest.approx(5 / 300)


def test_csv_with_header_and_empty_cells_marks_them_unreadable(tmp_path):
    x, fs, _ = read_signal(MITDB_100.with_suffix(""))
    x = x[: int(120 * fs)].astype(np.float64)
    x[int(10 * fs): int(20 * fs)] = np.nan  # written as empty cells, as spreadsheet exports do
    lines = ["mV,flat"] + [("" if np.isnan(v) else f"{v:.4f}") + ",0" for v in x]
    (tmp_path / "rec.csv").write_text("\n".join(lines) + "\n")
    r = json.loads(run_cli("monitor", tmp_path / "rec.csv", "--fs", fs, "--json", check=0).stdout)
    assert r["record"] == "rec" and r["lead"] == "column 0"
    assert any(e["label"] == UNREADABLE and e["start_s"] <= 12 and e["end_s"] >= 18 for e in r["episodes"])
    r = json.loads(run_cli("monitor", tmp_path / "rec.csv", "--fs", fs, "--lead", "1", "--json", check=0).stdout)
    assert r["unreadable_fraction"] == 1.0 and r["af_burden"] == 0.0  # a flat column: all lead-off, no crash


def test_invert_puts_a_reversed_lead_the_right_way_up(tmp_path):
    """A lead wired the other way round, given with --invert, is analysed exactly like the upright
    lead (monitor and predict), and the outputs say it was inverted."""
    x, fs, _ = read_signal(DATA / "mitdb" / "203")  # AF and flutter throughout
    x = x[: int(300 * fs)]
    np.save(tmp_path / "up.npy", x)
    np.save(tmp_path / "down.npy", -x)

    def mon(name, *extra):
        return json.loads(run_cli("monitor", tmp_path / name, "--fs", fs, "--json", *extra, check=0).stdout)

    up, fixed = mon("up.npy"), mon("down.npy", "--invert")
    for key in ("af_burden", "noise_fraction", "episodes", "beats"):
        assert fixed[key] == up[key], key
    assert fixed["config"]["invert"] and not up["config"]["invert"] and fixed["lead"] == "column 0 (inverted)"

    def pred(name, *extra):
        out = run_cli("predict", "--model", "rhythm-cnn3", "--fs", fs, "--json", tmp_path / name, *extra, check=0).stdout
        return json.loads(out)["probabilities"]

    assert pred("down.npy", "--invert") == pred("up.npy")
    run_cli("report", tmp_path / "down.npy", "--fs", fs, "--invert", "--out", tmp_path / "r.html", check=0)
    assert "column 0 (inverted)" in (tmp_path / "r.html").read_text()


def test_lead_all_weighs_every_lead_and_leaves_a_lead_off_out(tmp_path):
    """`--lead all`: the readable leads' geometric mean decides each window. Two copies of one
    lead decide as that lead alone does; a flat second lead (lead-off) changes nothing; a second
    lead that is real ECG is used, and the beats come from the most readable lead."""
    x, fs, _ = read_signal(DATA / "mitdb" / "203")
    x = x[: int(300 * fs)].astype(np.float32)
    np.save(tmp_path / "one.npy", x)
    np.save(tmp_path / "twice.npy", np.stack([x, x], 1))
    np.save(tmp_path / "off.npy", np.stack([np.zeros_like(x), x], 1))  # lead 0 off: beats must come from lead 1
    lm = load_model("rhythm-cnn3-int8")
    one = monitor(tmp_path / "one.npy", lm, fs=fs)
    twice = monitor(tmp_path / "twice.npy", lm, fs=fs, lead="all")
    off = monitor(tmp_path / "off.npy", lm, fs=fs, lead="ALL")
    assert twice.lead == "column 0+column 1" and off.beat_lead == 1 and twice.beat_lead == 0
    for r in (twice, off):
        np.testing.assert_allclose(r.probs, one.probs, atol=1e-5)
        assert r.labels == one.labels and np.array_equal(r.beats, one.beats) and r.summary == one.summary
    r = json.loads(run_cli("monitor", DATA / "mitdb" / "203.hea", "--lead", "all", "--json", check=0).stdout)
    assert r["lead"] == "MLII+V1" and r["af_burden"] > 0.9
    run_cli("report", tmp_path / "off.npy", "--fs", fs, "--lead", "all", "--out", tmp_path / "r.html", check=0)
    assert "column 0+column 1" in (tmp_path / "r.html").read_text()


def test_lead_all_takes_the_signals_in_volts_and_says_what_it_left_out(tmp_path):
    import pyedflib

    x, fs, _ = read_signal(DATA / "mitdb" / "203")
    x = x[: int(60 * fs)].astype(np.float64)
    path = tmp_path / "patch.edf"
    f = pyedflib.EdfWriter(str(path), 3, file_type=pyedflib.FILETYPE_EDFPLUS)
    heads = [{"label": "ECG", "dimension": "mV", "sample_frequency": fs, "physical_min": -10, "physical_max": 10,
              "digital_min": -32768, "digital_max": 32767},
             {"label": "Accel", "dimension": "g", "sample_frequency": fs, "physical_min": -4, "physical_max": 4,
              "digital_min": -32768, "digital_max": 32767},
             {"label": "ECG2", "dimension": "uV", "sample_frequency": fs, "physical_min": -10000, "physical_max": 10000,
              "digital_min": -32768, "digital_max": 32767}]
    f.setSignalHeaders(heads)
    f.writeSamples([x, np.zeros_like(x), 1000 * x])
    f.close()
    proc = run_cli("monitor", path, "--lead", "all", "--json", check=0)
    r = json.loads(proc.stdout)
    assert r["lead"] == "ECG+ECG2"
    assert "Accel" in proc.stderr and "not in mV, uV or V" in proc.stderr and str(path) in proc.stderr
    assert_one_line_error(run_cli("monitor", tmp_path / "none.hea", "--lead", "all"), "none.hea", "not found")
    np.save(tmp_path / "s.npy", np.zeros((1000, 2)))
    assert_one_line_error(run_cli("monitor", tmp_path / "s.npy", "--lead", "all"), "s.npy", "--fs")
    # A second lead whose signal file is missing is an error naming it, not a quiet single lead.
    base = copy_record(DATA / "mitdb" / "203", tmp_path)
    hea = base.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[2] = lines[2].replace("203.dat", "203b.dat", 1)
    hea.write_text("\n".join(lines) + "\n")
    assert_one_line_error(run_cli("monitor", hea, "--lead", "all"), "203b.dat", "not found")
