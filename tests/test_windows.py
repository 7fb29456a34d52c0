import numpy as np
import pytest

from tinyrhythm.datasets import Cinc2017, Icentia11k, Record, Zone
from tinyrhythm.datasets.record import NOISE, NSR, RHYTHM_LABELS
from tinyrhythm.errors import TinyRhythmError
from tinyrhythm.tasks import TASKS, get_task
from tinyrhythm.windows import WindowConfig, make_windows, resample

from conftest import ICENTIA_P0


def _counts(labels):
    return {RHYTHM_LABELS[k]: int((labels == k).sum()) for k in range(len(RHYTHM_LABELS)) if (labels == k).any()}


@pytest.mark.parametrize("fs,length,seconds", [(250, 513, 2.052), (62.5, 513, 8.208)])
def test_study_window_shapes(fs, length, seconds):
    rec = Icentia11k().read(ICENTIA_P0 / "p00000_s15.hea")
    cfg = WindowConfig(fs=fs, length=length, hop=length)
    w, labels, starts = make_windows(rec, cfg, unzoned_noise=True)
    assert w.shape[1] == 513 and w.dtype == np.float32 and abs(cfg.seconds - seconds) < 1e-3
    assert len(w) == (int(len(rec.signal) * fs / 250) - length) // length + 1
    # first window = the resampled signal's first samples
    np.testing.assert_allclose(w[0], resample(rec.signal, 250, fs)[:length], atol=1e-6)
    assert np.all(np.diff(starts) == length)


@pytest.mark.parametrize("fs", [250, 62.5])
def test_noise_rule_on_noisy_and_clean_segments(fs):
    """Noise = windows outside every rhythm zone, dominated by undefined (Q) beats."""
    cfg = WindowConfig(fs=fs, length=513, hop=513)
    noise = {}
    for s in ("s15", "s48", "s20", "s39"):
        rec = Icentia11k().read(ICENTIA_P0 / f"p00000_{s}.hea")
        _, labels, starts = make_windows(rec, cfg, unzoned_noise=True)
        c = _counts(labels)
        noise[s] = c.get(NOISE, 0)
        assert c[NSR] > 0.6 * len(labels)
        # each noise window: mostly unzoned, and its beats mostly Q
        scale = rec.fs / fs
        for st in starts[labels == RHYTHM_LABELS.index(NOISE)]:
            a, b = int(st * scale), int((st + 513) * scale)
            in_win = (rec.beats >= a) & (rec.beats < b)
            if in_win.any():
                assert (rec.beat_symbols[in_win] == "Q").mean() >= 0.5
    assert noise["s15"] == 0 and noise["s48"] == 0
    assert noise["s20"] >= 30 and noise["s39"] >= 30


def _synthetic(zones, n=25000, fs=250.0, beats=None, symbols=None):
    rng = np.random.default_rng(0)
    return Record("r", "test/1", "test", fs, rng.normal(size=n).astype(np.float32), zones=zones,
                  beats=np.asarray(beats if beats is not None else [], dtype=np.int64),
                  beat_symbols=np.asarray(symbols if symbols is not None else [], dtype="<U1"))


def test_purity_rule_at_a_rhythm_change():
    rec = _synthetic([Zone(0, 9999, "N"), Zone(10000, 24999, "AFIB")])
    cfg = WindowConfig(fs=250, length=1000, hop=500, purity=0.9)
    _, labels, starts = make_windows(rec, cfg)
    lab = {int(s): (RHYTHM_LABELS[k] if k >= 0 else None) for s, k in zip(starts, labels)}
    assert lab[0] == "N" and lab[9000] == "N" and lab[10000] == "AFIB"
    assert lab[9500] is None  # 50/50 straddles the change: left out
    cfg8 = WindowConfig(fs=250, length=1000, hop=100, purity=0.8)
    _, labels, starts = make_windows(rec, cfg8)
    lab = {int(s): (RHYTHM_LABELS[k] if k >= 0 else None) for s, k in zip(starts, labels)}
    assert lab[9200] == "N" and lab[9300] is None and lab[9800] == "AFIB"


def test_unzoned_noise_needs_q_beats_and_the_dataset_flag():
    beats = np.arange(10500, 12000, 200)
    rec_q = _synthetic([Zone(0, 9999, "N")], beats=beats, symbols=["Q"] * len(beats))
    rec_n = _synthetic([Zone(0, 9999, "N")], beats=beats, symbols=["N"] * len(beats))
    cfg = WindowConfig(fs=250, length=1000, hop=1000)
    noise = RHYTHM_LABELS.index(NOISE)
    assert (make_windows(rec_q, cfg, unzoned_noise=True)[1][10:12] == noise).all()
    assert (make_windows(rec_n, cfg, unzoned_noise=True)[1][10:12] == -1).all()
    assert (make_windows(rec_q, cfg, unzoned_noise=False)[1][10:] == -1).all()


def test_cinc_record_gives_several_windows_with_its_label():
    ds = Cinc2017()
    rec = ds.read("A00004")
    cfg = WindowConfig(fs=62.5, length=513, hop=256)
    w, labels, _ = make_windows(rec, cfg)
    n = int(np.ceil(len(rec.signal) * 62.5 / 300))
    assert len(w) == (n - 513) // 256 + 1 >= 2
    assert set(labels.tolist()) == {RHYTHM_LABELS.index("AFIB")}
    assert get_task("cinc2017").class_index("AFIB") == 1


def test_short_records_pad_or_skip():
    rec = _synthetic([Zone(0, 1999, "N")], n=2000, fs=250)
    w, labels, _ = make_windows(rec, WindowConfig(fs=250, length=3000, hop=3000, short="pad"))
    assert w.shape == (1, 3000) and labels[0] == 0
    np.testing.assert_array_equal(w[0, 2000:], 0)
    assert len(make_windows(rec, WindowConfig(fs=250, length=3000, short="skip"))[0]) == 0
    assert len(make_windows(rec, WindowConfig(fs=250, length=5000, short="pad"))[0]) == 0  # < half a window


def test_resample_keeps_the_signal():
    t = np.arange(3000) / 300.0
    x = np.sin(2 * np.pi * 1.2 * t).astype(np.float32)
    y = resample(x, 300, 62.5)
    assert len(y) == 625 and y.dtype == np.float32
    np.testing.assert_allclose(y[20:-20], np.sin(2 * np.pi * 1.2 * np.arange(625) / 62.5)[20:-20], atol=0.02)
    with pytest.raises(TinyRhythmError):
        resample(x, 300, 0)


def test_tasks_are_label_maps():
    assert TASKS["study3"].classes == ("normal", "arrhythmia", "noise")
    s3 = get_task("study3")
    assert s3.class_index("AFIB") == s3.class_index("AFL") == 1 and s3.class_index("OTHER") == -1
    i4 = get_task("icentia4")
    assert [i4.class_index(x) for x in ("NOISE", "N", "AFIB", "AFL")] == [0, 1, 2, 3]
    assert get_task("cinc2017").classes == ("N", "A", "O", "~")
    for t in TASKS.values():
        assert set(t.label_map) <= set(RHYTHM_LABELS) and set(t.label_map.values()) == set(t.classes)
    with pytest.raises(TinyRhythmError):
        get_task("nope")


def test_window_config_rejects_nonsense():
    for bad in (dict(length=0), dict(purity=0.3), dict(short="wrap"), dict(fs=-1)):
        with pytest.raises(TinyRhythmError):
            WindowConfig(**bad)
