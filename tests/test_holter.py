"""The Holter summary (beats, heart rate, RR, pauses, hourly AF burden) and EDF input."""

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from conftest import DATA, assert_one_line_error, run_cli
from tinyrhythm import samples
from tinyrhythm.monitor import monitor
from tinyrhythm.windows.beats import detect_beats
from tinyrhythm.monitor.episodes import Episode
from tinyrhythm.monitor.holter import clock, holter_summary, rr_intervals

MITDB = DATA / "mitdb"
BEATS = set("NLRBAaJSVrFejnE/fQ?")


def _score(record: str) -> tuple[int, int, int]:
    """(true positives, reference beats, detections) of detect_beats on lead 0, 150 ms tolerance."""
    from importlib import util

    spec = util.spec_from_file_location("beat_detection", Path(__file__).resolve().parents[1] / "scripts" / "beat_detection.py")
    bd = util.module_from_spec(spec)
    spec.loader.exec_module(bd)
    rec = wfdb.rdrecord(str(MITDB / record), channels=[0])
    ann = wfdb.rdann(str(MITDB / record), "atr")
    ex = bd.excluded(ann, rec.sig_len)
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEATS])
    ref = ref[~ex[ref]]
    det = detect_beats(rec.p_signal[:, 0], rec.fs)
    det = det[~ex[det]]
    return bd.match(ref, det, int(0.15 * rec.fs)), len(ref), len(det)


@pytest.mark.parametrize("record", ["100", "105", "119", "210"])  # sinus, noisy, bigeminy, AF
def test_beats_match_mitdb_reference(record):
    tp, n_ref, n_det = _score(record)
    assert tp / n_ref >= 0.98 and tp / n_det >= 0.98, (record, tp, n_ref, n_det)


@pytest.mark.slow
def test_beats_meet_the_target_on_every_shared_mitdb_record():
    tp = ref = det = 0
    for p in sorted(MITDB.glob("*.hea")):
        a, b, c = _score(p.stem)
        tp, ref, det = tp + a, ref + b, det + c
    assert tp / ref >= 0.99 and tp / det >= 0.99, (tp, ref, det)


def test_beats_of_flat_short_or_empty_input_are_none():
    assert len(detect_beats(np.zeros(3600), 360.0)) == 0
    assert len(detect_beats(np.ones(100), 360.0)) == 0
    assert len(detect_beats(np.full(7200, np.nan), 360.0)) == 0


class _Result:  # the fields holter_summary reads, for exact arithmetic checks
    def __init__(self, beats_s, episodes, duration_s, fs=100.0, start_time=None):
        self.fs, self.duration_s, self.start_time = fs, duration_s, start_time
        self.beats = np.round(np.asarray(beats_s) * fs).astype(np.int64)
        self.episodes = [Episode(*e) for e in episodes]


def test_rr_pauses_rates_and_exclusions_exactly():
    # 0-120 s sinus at 60 bpm, a 3 s pause at 60-63 s; 120-180 s noise; 180-300 s AF at 120 bpm
    sinus = [t for t in np.arange(0.0, 120.0, 1.0) if not 60 < t < 63]
    af = list(np.arange(180.0, 300.0, 0.5))
    r = _Result(sinus + list(np.arange(121.0, 180.0, 0.37)) + af,
                [("N", 0, 120), ("NOISE", 120, 180), ("AFIB", 180, 300)], 300.0, start_time="2026-01-05T23:58:00")
    rr = rr_intervals(r)
    assert not rr["valid"][(rr["time_s"] > 120) & (rr["time_s"] < 180.1)].any()  # in and across noise
    h = holter_summary(r)
    assert h["pauses"]["count"] == 1 and h["pauses"]["longest_s"] == 3.0 and h["pauses"]["longest_time_s"] == 60.0
    assert h["pauses"]["longest_clock"] == "2026-01-05T23:59:00"
    assert h["heart_rate"]["max_bpm"] == 120.0 and h["heart_rate"]["max_clock"].startswith("2026-01-06T00:0")
    assert h["heart_rate"]["min_bpm"] < 60 and h["heart_rate"]["minutes"] == 4  # the noise minute has no rate
    assert h["af_ventricular_rate"] == {"mean_bpm": 120.0, "max_bpm": 120.0}
    assert h["longest_af_episode_s"] == 120.0
    (hour,) = h["hourly"]
    assert hour["analysed_s"] == 240.0 and hour["af_burden"] == 0.5


def test_clock_with_and_without_a_date():
    assert clock("2026-01-05T23:30:00", 3600) == "2026-01-06T00:30:00"
    assert clock("23:30:00", 3600) == "00:30:00"
    assert clock(None, 10) is None


def test_monitor_summary_on_a_real_af_record():
    r = monitor(MITDB / "203", "rhythm-cnn3-int8")
    h = r.to_json()
    ann = wfdb.rdann(str(MITDB / "203"), "atr")
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEATS]) / 360.0
    true_rate = 60.0 / np.diff(ref).mean()
    assert abs(h["heart_rate"]["mean_bpm"] - true_rate) < 8, (h["heart_rate"], true_rate)
    assert h["af_ventricular_rate"]["mean_bpm"] > 60 and h["longest_af_episode_s"] > 60
    assert h["beats"] > 0.95 * len(ref)
    assert sum(x["analysed_s"] for x in h["hourly"]) == pytest.approx(r.summary["analysed_s"], abs=1)
    # the existing keys stay as they were
    for k in ("af_burden", "noise_fraction", "episodes", "time_s", "analysed_s"):
        assert k in h


def _write_edf(path: Path, start: dt.datetime) -> None:
    """An EDF+ file of the packaged sample with the WFDB digital values unchanged (exact mV)."""
    import pyedflib

    rec = wfdb.rdrecord(str(samples.path()), physical=False)
    f = pyedflib.EdfWriter(str(path), rec.n_sig, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        headers = []
        for k in range(rec.n_sig):
            lo, hi = 0, 4095
            headers.append({"label": rec.sig_name[k], "dimension": "mV", "sample_frequency": rec.fs,
                            "physical_min": (lo - rec.baseline[k]) / rec.adc_gain[k],
                            "physical_max": (hi - rec.baseline[k]) / rec.adc_gain[k],
                            "digital_min": lo, "digital_max": hi, "transducer": "", "prefilter": ""})
        f.setSignalHeaders(headers)
        f.setStartdatetime(start)
        f.writeSamples([rec.d_signal[:, k].astype(np.int32) for k in range(rec.n_sig)], digital=True)
    finally:
        f.close()


def test_edf_gives_the_same_burden_and_episodes_as_wfdb(tmp_path):
    edf = tmp_path / "sample.edf"
    _write_edf(edf, dt.datetime(2026, 1, 5, 23, 58, 0))
    a = monitor(samples.path(), "rhythm-cnn3-int8")
    b = monitor(edf, "rhythm-cnn3-int8", lead="MLII")
    assert b.fs == a.fs and b.duration_s == a.duration_s and b.lead == "MLII"
    assert b.summary["af_burden"] == pytest.approx(a.summary["af_burden"], abs=1e-9)
    assert [e.to_dict() for e in b.episodes] == [e.to_dict() for e in a.episodes]
    assert np.array_equal(a.beats, b.beats)
    assert b.start_time == "2026-01-05T23:58:00"
    assert b.to_json()["hourly"][0]["start_clock"] == "2026-01-05T23:58:00"
    # the other lead by its label, and predict on EDF as on WFDB
    assert monitor(edf, "rhythm-cnn3-int8", lead="V1").lead == "V1"
    pe = json.loads(run_cli("predict", "--model", "rhythm-cnn3-int8", edf, "--json", check=0).stdout)
    pw = json.loads(run_cli("predict", "--model", "rhythm-cnn3-int8", samples.path(), "--json", check=0).stdout)
    assert pe["probabilities"] == pw["probabilities"]


def test_monitor_cli_on_edf_writes_rr_csv_and_report(tmp_path):
    edf = tmp_path / "sample.edf"
    _write_edf(edf, dt.datetime(2026, 1, 5, 8, 0, 0))
    proc = run_cli("monitor", edf, "--out", tmp_path / "out", "--json", check=0)
    obj = json.loads(proc.stdout)
    assert obj["start_time"] == "2026-01-05T08:00:00" and obj["heart_rate"]["min_clock"].startswith("2026-01-05T08:0")
    rows = list(csv.DictReader(open(tmp_path / "out" / "sample_rr.csv")))
    assert len(rows) == obj["beats"] - 1 and {"time_s", "rr_s", "af", "valid"} <= set(rows[0])
    rr = np.array([float(r["rr_s"]) for r in rows])
    assert 0.3 < np.median(rr) < 1.5
    run_cli("report", edf, "--out", tmp_path / "r.html", check=0)
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_bad_edf_input_is_one_line(tmp_path):
    edf = tmp_path / "sample.edf"
    _write_edf(edf, dt.datetime(2026, 1, 5, 8, 0, 0))
    proc = run_cli("monitor", edf, "--lead", "V5")
    assert_one_line_error(proc, "sample.edf", "V5")
    broken = tmp_path / "broken.edf"
    broken.write_bytes(edf.read_bytes()[:300])
    assert_one_line_error(run_cli("monitor", broken), "broken.edf")
    assert_one_line_error(run_cli("predict", "--model", "rhythm-cnn3-int8", broken), "broken.edf")
    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"\x00" * 4096)
    assert_one_line_error(run_cli("monitor", junk), "junk.edf")
