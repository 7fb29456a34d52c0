"""RR context in the monitor: features from real beats, the fusion the cards carry, the CLI switch, damaged cards."""

import json

import numpy as np
import pytest

from conftest import CINC, DATA, assert_one_line_error, run_cli, zoo_run_folder
from tinyrhythm import zoo
from tinyrhythm.datasets.wfdb_io import read_signal
from tinyrhythm.errors import DataError
from tinyrhythm.inference import predict_signals, record_windows
from tinyrhythm.monitor import MonitorConfig, monitor
from tinyrhythm.runtime import ModelCard, load_model
from tinyrhythm.runtime.rr_context import FEATURES, RRContext, context_features, relative_changes
from tinyrhythm.windows.beats import detect_beats

RHYTHM = ("rhythm-cnn1", "rhythm-cnn3", "rhythm-cnn3-int8", "rhythm-cnn5")


def rr_features(beat_s: np.ndarray) -> np.ndarray:
    """The features of one context as written down, against which the vectorised path is checked."""
    if len(beat_s) < 5:
        return np.zeros(len(FEATURES), np.float32)
    rr = np.diff(beat_s)
    d = relative_changes(rr)
    return np.array([np.median(d), np.mean(d > 0.1), np.log(60 / rr.mean()), 1.0], np.float32)


def test_features_of_a_regular_and_a_too_short_context():
    beats = np.arange(0, 30, 0.8)  # 75 bpm, perfectly regular
    f = context_features(beats, np.array([15.0]), 15.0)[0]
    assert f[0] == pytest.approx(0, abs=1e-9) and f[1] == 0 and f[2] == pytest.approx(np.log(75)) and f[3] == 1
    assert not context_features(beats[:4], np.array([1.0]), 15.0).any()  # four beats: no context, not a rate of zero
    centres = np.array([1.0, 15.0, 29.0, 100.0])
    many = context_features(beats, centres, 15.0)
    for c, row in zip(centres, many):
        np.testing.assert_array_equal(row, rr_features(beats[(beats >= c - 15) & (beats <= c + 15)]))
    assert not many[3].any()  # past the last beat


def test_real_af_is_irregular_and_real_sinus_rhythm_is_not():
    """On beats found as the monitor finds them: AFTDB n01 (AF) and MITDB 100 (sinus rhythm)."""
    med = {}
    for name, path in (("af", DATA / "aftdb" / "learning-set" / "n01"), ("sinus", DATA / "mitdb" / "100")):
        x, fs, _ = read_signal(path)
        x = x[: int(300 * fs)]
        t = detect_beats(x, fs) / fs
        med[name] = context_features(t, np.arange(15, t[-1] - 15, 2.0), 15.0)[:, 0]
    assert np.median(med["af"]) > 0.1 and np.median(med["sinus"]) < 0.05, med
    assert (med["af"] > 0.05).mean() > 0.9 and (med["sinus"] < 0.05).mean() > 0.9


@pytest.mark.parametrize("name", RHYTHM)
def test_rhythm_cards_carry_a_fusion_fitted_on_validation(name):
    card = zoo.cards()[name]["rr_context"]
    assert card["features"] == list(FEATURES) and "validation" in card["fitted_on"]
    fusion = load_model(name).card.rr_fusion
    assert isinstance(fusion, RRContext) and fusion.coef.shape == (3, 3 + len(FEATURES))
    # Confident network probabilities stay as they are whatever the beats say; irregular beats raise AF.
    p = np.array([[0.98, 0.01, 0.01], [0.4, 0.4, 0.2]], np.float32)
    regular, irregular = np.array([[0, 0, np.log(75), 1]] * 2), np.array([[0.25, 0.9, np.log(110), 1]] * 2)
    assert fusion.probabilities(p, regular)[0].argmax() == 0
    assert fusion.probabilities(p, irregular)[1, 1] > fusion.probabilities(p, regular)[1, 1]


def test_monitor_weighs_the_window_probabilities_with_the_beats_around_them(tmp_path):
    """The default monitor's probabilities are the card's fusion of the network's own (rr_context
    off) and the beats it found; the CLI says which it used and --no-rr-context turns it off."""
    x, fs, _ = read_signal(DATA / "mitdb" / "203")  # AF and flutter throughout
    np.save(tmp_path / "r.npy", x[: int(240 * fs)])
    lm = load_model("rhythm-cnn3-int8")
    on = monitor(tmp_path / "r.npy", lm, fs=fs)
    off = monitor(tmp_path / "r.npy", lm, fs=fs, cfg=MonitorConfig(rr_context=False))
    assert on.rr_context and not off.rr_context and len(on.beats) > 200
    np.testing.assert_array_equal(on.beats, off.beats)
    centres = (np.arange(len(off.probs)) * 128 + lm.input_length / 2) / lm.fs
    expected = lm.card.rr_fusion.apply(off.probs, on.beats / fs, centres)
    np.testing.assert_allclose(on.probs, expected, atol=1e-6)
    assert not np.allclose(on.probs, off.probs, atol=1e-3)
    cli_on = json.loads(run_cli("monitor", tmp_path / "r.npy", "--fs", fs, "--json", check=0).stdout)
    cli_off = json.loads(run_cli("monitor", tmp_path / "r.npy", "--fs", fs, "--json", "--no-rr-context", check=0).stdout)
    assert cli_on["rr_context"] and cli_on["config"]["rr_context"]
    assert not cli_off["rr_context"] and not cli_off["config"]["rr_context"]
    assert cli_on["af_burden"] == pytest.approx(on.summary["af_burden"], abs=1e-4)
    assert cli_off["af_burden"] == pytest.approx(off.summary["af_burden"], abs=1e-4)
    # Without beats there is no context: the network's probabilities, and a note that says so.
    nobeats = monitor(tmp_path / "r.npy", lm, fs=fs, cfg=MonitorConfig(beats=False))
    assert not nobeats.rr_context and any("RR context" in n for n in nobeats.notes)
    np.testing.assert_allclose(nobeats.probs, off.probs, atol=1e-6)


@pytest.mark.parametrize("damage, word", [
    ({"coef": [[1.0, 2.0]]}, "coef"),
    ({"offsets": [0.0, float("nan"), 0.0]}, "offsets"),
    ({"intercept": "zero"}, "intercept"),
    ({"features": ["rate"]}, "features"),
    ({"context_s": 0}, "context_s"),
    ({"record_offsets": [0.0, 1.0]}, "record_offsets"),
])
def test_a_damaged_rr_context_is_one_line_naming_the_card(tmp_path, damage, word):
    run = zoo_run_folder(tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    cfg["rr_context"] = {**zoo.cards()["rhythm-cnn3"]["rr_context"], **damage}
    (run / "config.json").write_text(json.dumps(cfg))  # NaN as JSON allows it
    with pytest.raises(DataError, match=word):
        ModelCard.from_run(run)
    proc = run_cli("monitor", DATA / "mitdb" / "100.hea", "--model", run)
    assert_one_line_error(proc, "config.json")


def test_predict_decides_a_short_strip_by_its_fused_windows_and_record_offsets():
    """`predict` with a rhythm model: each window of a CinC strip weighed with the beats around it,
    the mean decided with the card's record offsets; --no-rr-context gives the plain mean; the CinC
    models, whose cards have no fusion, say so."""
    from tinyrhythm.datasets.wfdb_io import read_signal as read

    lm = load_model("rhythm-cnn3-int8")
    fusion = lm.card.rr_fusion
    assert fusion.record_offsets is not None
    names = ["A00001", "A00004", "A00005"]  # normal, AF, AF
    out = [json.loads(line) for line in run_cli("predict", "--model", "rhythm-cnn3-int8", "--json",
                                                *[CINC / f"{n}.hea" for n in names], check=0).stdout.splitlines()]
    plain = [json.loads(line) for line in run_cli("predict", "--model", "rhythm-cnn3-int8", "--json", "--no-rr-context",
                                                  *[CINC / f"{n}.hea" for n in names], check=0).stdout.splitlines()]
    for name, o, q in zip(names, out, plain):
        x, fs, _ = read(CINC / name)
        wins = record_windows(x, fs, lm.fs, lm.input_length)
        centres = (np.arange(len(wins)) * (lm.input_length // 2) + lm.input_length / 2) / lm.fs
        want = fusion.record_probabilities(lm.predict_proba(wins), context_features(detect_beats(x, fs) / fs, centres, 15.0))
        got = np.array([o["probabilities"][c] for c in lm.classes])
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert o["label"] == lm.classes[int(want.argmax())] and o["rr_context"] and not q["rr_context"]
        np.testing.assert_allclose([q["probabilities"][c] for c in lm.classes],
                                   predict_signals(lm, [(x, fs)], rr_context=False)[0], atol=1e-4)
    assert out[1]["label"] == "arrhythmia"  # A00004: AF
    cinc = json.loads(run_cli("predict", "--model", "cnn3", "--json", CINC / "A00001.hea", check=0).stdout)
    assert cinc["rr_context"] is False
