"""The one-pass engine: agreement with window-by-window decisions on real records, chunking,
fallbacks, and the many-recordings monitor with a corrupt record among good ones."""

import csv
import json
import shutil

import numpy as np
import pytest

from conftest import DATA, ICENTIA_P0, copy_record, run_cli
from tinyrhythm.datasets.stream import open_stream
from tinyrhythm.runtime import load_model
from tinyrhythm.monitor import MonitorConfig, monitor
from tinyrhythm.monitor.batch import output_names
from tinyrhythm.onepass import OnePassClassifier, _Conditioning
from tinyrhythm.streaming import batch_decisions
from tinyrhythm.windows.resample import resample

MITDB = DATA / "mitdb"


@pytest.fixture(scope="module")
def int8():
    return load_model("rhythm-cnn3-int8")


@pytest.fixture(scope="module")
def float_model():
    return load_model("rhythm-cnn3")


def _model_rate(path, lm):
    s = open_stream(path)
    return resample(s.read(0, s.declared_samples), s.fs, lm.fs).astype(np.float32)


def _push(lm, x, chunk):
    oc = OnePassClassifier(lm, 128)
    out = []
    for i in range(0, len(x), chunk):
        out += oc.push(x[i:i + chunk])
    out += oc.finish()
    return np.array([s for s, _ in out]), np.stack([p for _, p in out])


@pytest.mark.parametrize("name", ["int8", "float_model"])
def test_one_pass_follows_window_decisions_on_real_records(name, request):
    """Measured on all 43 shared MITDB records and 7 Icentia11k segments by
    scripts/onepass_agreement.py (README "Monitoring"); these records are the hard ones (AF)."""
    lm = request.getfixturevalue(name)
    agree, n = 0, 0
    for rec in (MITDB / "203.hea", MITDB / "222.hea", ICENTIA_P0 / "p00000_s15.hea"):
        x = _model_rate(rec, lm)
        ref = batch_decisions(lm, x, 128)
        starts, probs = _push(lm, x, 37_500)
        assert list(starts) == [s for s, _ in ref]  # the same windows, in order
        a = np.stack([p for _, p in ref]).argmax(1) == probs.argmax(1)
        assert a.mean() >= 0.95, (rec.name, a.mean())
        agree, n = agree + a.sum(), n + len(a)
        w = monitor(rec, lm, cfg=MonitorConfig(engine="windows", beats=False))
        o = monitor(rec, lm, cfg=MonitorConfig(engine="onepass", beats=False))
        assert np.mean(np.array(w.labels) == np.array(o.labels)) >= 0.99
        assert abs(w.summary["af_burden"] - o.summary["af_burden"]) <= 0.005
    assert agree / n >= 0.975


@pytest.mark.parametrize("name,exact", [("int8", True), ("float_model", False)])
def test_chunk_sizes_change_nothing(name, exact, request):
    lm = request.getfixturevalue(name)
    x = _model_rate(MITDB / "222.hea", lm)[: 62_500]
    s0, p0 = _push(lm, x, len(x))
    for chunk in (37_500, 4_999, 513, 128, 61):
        s, p = _push(lm, x, chunk)
        assert (s == s0).all()
        if exact:  # integer arithmetic after the same float conditioning: bit for bit
            np.testing.assert_array_equal(p, p0)
        else:
            np.testing.assert_allclose(p, p0, atol=1e-5)


def test_monitor_engine_and_fallbacks(int8, tmp_path):
    rec = MITDB / "100.hea"
    # A hop that is no multiple of the trunk's stride (62 samples) falls back, and says so.
    r = monitor(rec, int8, cfg=MonitorConfig(hop_s=1.0, beats=False))
    assert any("windows engine used" in n for n in r.notes)
    r = monitor(rec, int8, cfg=MonitorConfig(beats=False, rr_context=False))  # no beats, no RR context: no note
    assert r.engine == "onepass" and r.to_json()["engine"] == "onepass" and not r.notes
    # "auto" follows the card: rhythm-cnn1's one-pass decisions agree too little with its windows.
    assert monitor(rec, "rhythm-cnn1", cfg=MonitorConfig(beats=False)).engine == "windows"
    assert monitor(rec, "rhythm-cnn1", cfg=MonitorConfig(beats=False, engine="onepass")).engine == "onepass"
    # A stream shorter than one window: that stream zero-padded, one decision.
    x = _model_rate(rec, int8)[:300]
    oc = OnePassClassifier(int8, 128)
    assert oc.push(x) == [] and oc.finish() == []
    (start, p), = oc.padded()
    assert start == 0 and p.shape == (3,) and abs(p.sum() - 1) < 1e-5


def test_conditioning_matches_the_window_conditioning_inside_a_window():
    """Away from the scale's reach the continuous conditioning is the model's own, up to the uV rounding."""
    import torch

    from tinyrhythm.models.cnn import InputConditioning

    x = _model_rate(MITDB / "203.hea", load_model("rhythm-cnn3"))[:4000] + 5.0  # a 5 mV offset removed too
    got = _Conditioning(25, 2, 0.005, 513)(x)
    seg = x[1000:1513]
    want = InputConditioning(25, 0.005, 2)(torch.from_numpy(seg)[None, None])[0, 0].numpy()
    mid = slice(200, 313)  # where the moving scale's window is the segment itself, give or take 56 samples
    np.testing.assert_allclose(got[1000:1513][mid], want[mid], rtol=0.05, atol=0.05)
    flat = _Conditioning(25, 2, 0.005, 513)(np.full(2000, 3.0, np.float32))
    assert not flat.any()  # a flat line stays flat (any offset)


def test_output_names_are_unique():
    from pathlib import Path

    paths = [Path("a/p00/s00.hea"), Path("a/p01/s00.hea"), Path("b/x y.hea")]
    assert output_names(paths) == ["a_p00_s00", "a_p01_s00", "x_y"]


def test_monitor_folder_with_a_corrupt_record(tmp_path):
    folder = tmp_path / "recs"
    for r in ("100", "203"):
        copy_record(MITDB / r, folder)
    bad = copy_record(MITDB / "101", folder)
    (folder / "101.hea").write_text("101 1 360 650000\nthis is not a signal line\n")
    out = tmp_path / "out"
    proc = run_cli("monitor", folder, "--out", out, "--jobs", "2", "--model", "rhythm-cnn3-int8")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("tinyrhythm: error:")] and "101" in proc.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["record"] for r in rows] == ["100", "101", "203"]
    assert rows[1]["error"] and not rows[0]["error"] and not rows[2]["error"]
    assert float(rows[2]["af_burden"]) > 0.5 and int(rows[2]["af_episodes"]) >= 1
    assert float(rows[2]["longest_af_episode_s"]) > 60 and float(rows[0]["af_burden"]) < 0.02
    lines = [json.loads(x) for x in (out / "summary.jsonl").read_text().splitlines()]
    assert [x["record"] for x in lines] == ["100", "101", "203"] and lines[1]["af_burden"] is None
    # Each good record's usual outputs, as a single-record run writes them.
    for r in ("100", "203"):
        one = json.loads((out / f"{r}_monitor.json").read_text())
        assert one["af_burden"] == float(next(x for x in rows if x["record"] == r)["af_burden"])
        assert (out / f"{r}.tr").is_file() and (out / f"{r}_episodes.csv").is_file()
    assert not (out / "101_monitor.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    # --json: one line per recording; the same numbers with one job.
    shutil.rmtree(out)
    proc = run_cli("monitor", folder / "100.hea", folder / "203.hea", "--json", "--model", "rhythm-cnn3-int8", check=0)
    lines2 = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["af_burden"] for x in lines2] == [lines[0]["af_burden"], lines[2]["af_burden"]]
    assert bad.name == "101"


@pytest.mark.parametrize("name", ["rhythm-cnn3-int8", "cnn3-int8"])
def test_c_onepass_stream_is_bit_exact_with_python(name, tmp_path):
    """tr_onepass.c, pushed in random chunks, gives the Python one-pass scores bit for bit on
    real ECG (a conditioned and an unconditioned int8 model), at a quarter of the window's MACs."""
    from tinyrhythm.export.c_onepass import generate_onepass, run_onepass, scores_from_logits
    from tinyrhythm.onepass import logits

    if not shutil.which("gcc"):
        pytest.skip("no C compiler")
    lm = load_model(name)
    x = _model_rate(MITDB / "203.hea", lm)[: 37_500]  # 10 minutes with AF
    info = generate_onepass(lm.model.path, tmp_path, lm.input_length, 128)
    assert info["macs_per_decision"] * 3.9 < info["window_macs"]
    for seed in (1, 7):
        starts, scores, _ = run_onepass(tmp_path, x, seed)
        py_starts, py_logits = logits(lm, x, 128)
        assert len(starts) >= len(py_starts) - 6 and (starts == py_starts[: len(starts)]).all()
        py = scores_from_logits(py_logits[: len(starts)], info["output_scale"], info["output_zero_point"])
        np.testing.assert_array_equal(scores, py)
    # The decisions are those of the monitor's one-pass engine (softmax of the same scores).
    probs = OnePassClassifier(lm, 128)
    d = probs.push(x) + probs.finish()
    assert (np.stack([p for _, p in d])[: len(scores)].argmax(1) == scores.argmax(1)).all()


def test_monitor_many_bad_options_are_one_line(tmp_path):
    from conftest import assert_one_line_error

    assert_one_line_error(run_cli("monitor", MITDB / "100.hea", MITDB / "203.hea", "--jobs", "0"), "--jobs")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("monitor", tmp_path / "empty", "--jobs", "2"), "empty", "no records")


@pytest.mark.parametrize("name", ["rhythm-cnn3-int8", "cnn3-int8"])
def test_phase_folded_trunk_gives_the_plain_graphs_numbers(name):
    """The int8 trunk folded to wide, short convolutions (runtime.fold) returns exactly what
    the plain graph returns, on a real conditioned record, for every fold."""
    import onnx

    from tinyrhythm.onepass import _backend
    from tinyrhythm.runtime.fold import fold
    from tinyrhythm.runtime.ort import session_from_bytes

    lm = load_model(name)
    b = _backend(lm)
    assert b.fold > 1 and b.folded_sess is not None  # the monitor runs the folded graph
    x = np.ascontiguousarray(b.conditioning(_model_rate(MITDB / "203.hea", lm)[:40_960]))
    plain = b.trunk_sess.run(None, {b.start: x[None, None]})[0][0]
    np.testing.assert_array_equal(b.trunk(x), plain)
    np.testing.assert_array_equal(b.trunk(x[:-3]), b.trunk_sess.run(None, {b.start: x[None, None, :-3]})[0][0])
    g = onnx.shape_inference.infer_shapes(onnx.load_from_string(lm.model.model_bytes))
    trunk = onnx.utils.Extractor(g).extract_model([b.start], [b.feat])
    for p0 in (4, 8, 32):
        m, out_fold, _ = fold(trunk, p0)
        y = session_from_bytes(m.SerializeToString(), name).run(None, {b.start: np.ascontiguousarray(x.reshape(-1, p0).T[None])})[0][0]
        c = y.shape[0] // out_fold
        np.testing.assert_array_equal(y.reshape(c, out_fold, -1).transpose(0, 2, 1).reshape(c, -1), plain)


def test_fold_refuses_graphs_it_cannot_fold():
    import onnx

    from tinyrhythm.runtime.fold import Unfoldable, fold

    model = load_model("rhythm-cnn3-int8").model
    g = onnx.load_from_string(model.model_bytes)
    with pytest.raises(Unfoldable):  # the float conditioning ops (AveragePool, ReduceMean) do not fold
        fold(g, 8)
