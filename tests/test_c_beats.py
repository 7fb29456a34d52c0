"""The streaming R-peak detector in C (export/c_beats) that feeds the RR context on a device."""

import subprocess

import numpy as np
import wfdb

from tinyrhythm.export.c_beats import run_beats, write_beats

from conftest import DATA

BEATS = set("NLRBAaJSVrFejnE/fQ?")


def _score(record: str, seconds: int, tmp_path, chunk: int = 4096):
    rec = wfdb.rdrecord(str(DATA / "mitdb" / record), channels=[0], sampto=360 * seconds)
    ann = wfdb.rdann(str(DATA / "mitdb" / record), "atr", sampto=360 * seconds)
    ref = np.array([s for s, sym in zip(ann.sample, ann.symbol) if sym in BEATS])
    det = run_beats(tmp_path, rec.p_signal[:, 0], rec.fs, chunk)
    hit = np.abs(det[:, None] - ref[None, :]) <= 0.15 * rec.fs  # within 150 ms, as EC57 scores
    return det, hit.any(0).mean(), hit.any(1).mean()


def test_c_detector_finds_the_reference_beats_of_real_records(tmp_path):
    """Ten minutes of MITDB 100 (sinus) and 203 (AF with multiform ventricular ectopy, the hardest
    record for detectors): sensitivity and positive predictivity against the cardiologists' beats.
    All 43 records: `scripts/beat_detection.py --methods c` (README)."""
    write_beats(tmp_path)
    # 203 with NeuroKit2's detectors as the monitor combines them: 0.964 / 0.987
    for record, se_floor, ppv_floor in (("100", 0.995, 0.995), ("203", 0.95, 0.99)):
        det, se, ppv = _score(record, 600, tmp_path)
        assert se >= se_floor and ppv >= ppv_floor, (record, se, ppv)
        assert (np.diff(det) > 0).all()


def test_c_detector_does_not_depend_on_how_samples_arrive(tmp_path):
    """The same beats with samples pushed 4,096 at a time, one at a time or in random chunks."""
    write_beats(tmp_path)
    rec = wfdb.rdrecord(str(DATA / "mitdb" / "203"), channels=[0], sampto=360 * 120)
    x = rec.p_signal[:, 0]
    ref = run_beats(tmp_path, x, rec.fs, 4096)
    assert len(ref) > 150
    np.testing.assert_array_equal(run_beats(tmp_path, x, rec.fs, 0), ref)
    np.testing.assert_array_equal(run_beats(tmp_path, x, rec.fs, 1), ref)


def test_c_detector_rides_out_a_lead_off_and_any_rate(tmp_path):
    """NaN, infinities and a flat stretch give no beats there and do not poison the filters; the
    same record at 128 Hz finds the same beats (to a sample at that rate)."""
    from tinyrhythm.windows.resample import resample

    write_beats(tmp_path)
    rec = wfdb.rdrecord(str(DATA / "mitdb" / "100"), channels=[0], sampto=360 * 120)
    x = rec.p_signal[:, 0].copy()
    x[360 * 40: 360 * 50] = np.nan
    x[360 * 50: 360 * 52] = np.inf
    x[360 * 52: 360 * 60] = 0.0
    det = run_beats(tmp_path, x, rec.fs)
    assert not ((det > 360 * 41) & (det < 360 * 60)).any()
    after = det[det > 360 * 63]
    assert len(after) > 60 and np.all(np.abs(np.diff(after) / 360 - 0.8) < 0.25)  # ~75 bpm again
    clean = run_beats(tmp_path, rec.p_signal[:, 0], rec.fs)
    low = run_beats(tmp_path, resample(rec.p_signal[:, 0], rec.fs, 128.0), 128.0)
    near = np.abs(low[:, None] / 128.0 - clean[None, :] / 360.0).min(1) <= 0.05
    assert abs(len(low) - len(clean)) <= 2 and near.mean() > 0.99


def test_c_detector_refuses_what_it_cannot_do(tmp_path):
    write_beats(tmp_path)
    (tmp_path / "t.c").write_text('''#include "tr_beats.h"
int main(void) {
  tr_beats_t s; float x[4] = {0}; uint32_t b[4];
  if (tr_beats_init(0, 250.0f) != TR_BEATS_ERR_NULL) return 1;
  if (tr_beats_init(&s, 10.0f) != TR_BEATS_ERR_FS || tr_beats_init(&s, 5000.0f) != TR_BEATS_ERR_FS) return 2;
  if (tr_beats_init(&s, 250.0f) != 0) return 3;
  if (tr_beats_push(&s, 0, 4, b, 4) != TR_BEATS_ERR_NULL || tr_beats_push(&s, x, 4, 0, 4) != TR_BEATS_ERR_NULL) return 4;
  if (tr_beats_push(&s, x, 4, b, 4) != 0) return 5;
  return sizeof(tr_beats_t) <= 2304 ? 0 : 6;  /* the caller's state: about 2.2 KB */
}
''')
    build = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(tmp_path / "t.c"),
                            str(tmp_path / "tr_beats.c"), "-lm", "-o", str(tmp_path / "t")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert subprocess.run([tmp_path / "t"]).returncode == 0


def test_monitor_with_the_c_detector_previews_a_device(tmp_path):
    """`MonitorConfig(beat_detector="c")`: the monitor's beats, heart rate and RR context from
    tr_beats.c; on MITDB 203 (AF) the same AF burden to within a few points and nearly the same
    beats; a rate the C detector does not take, or an unknown detector, is one clear error."""
    import pytest

    from tinyrhythm.errors import TinyRhythmError
    from tinyrhythm.monitor.analyse import MonitorConfig, monitor

    nk = monitor(DATA / "mitdb" / "203.hea", "rhythm-cnn3-int8")
    c = monitor(DATA / "mitdb" / "203.hea", "rhythm-cnn3-int8", cfg=MonitorConfig(beat_detector="c"))
    assert c.rr_context and abs(len(c.beats) - len(nk.beats)) < 0.05 * len(nk.beats)
    assert abs(c.summary["af_burden"] - nk.summary["af_burden"]) < 0.05, (c.summary, nk.summary)
    with pytest.raises(TinyRhythmError, match="beat_detector must be one of"):
        monitor(DATA / "mitdb" / "100.hea", "rhythm-cnn3-int8", cfg=MonitorConfig(beat_detector="pan"))
    np.save(tmp_path / "fast.npy", np.zeros(2000 * 30, np.float32))
    with pytest.raises(TinyRhythmError, match="fast.npy: the C beat detector takes 50-1000 Hz, got 2000 Hz"):
        monitor(tmp_path / "fast.npy", "rhythm-cnn3-int8", fs=2000, cfg=MonitorConfig(beat_detector="c"))
