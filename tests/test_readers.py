import gzip
import pickle
from collections import Counter

import numpy as np
import pytest
import wfdb

from tinyrhythm.datasets import Cinc2017, Icentia11k, Icentia11kOriginal, Mitdb, load_noise, open_dataset
from tinyrhythm.datasets.icentia11k import GAIN, SEGMENT_LENGTH, read_original_labels
from tinyrhythm.datasets.safe_pickle import UnsafePickleError, load as safe_load
from tinyrhythm.datasets.wfdb_io import read_annotations
from tinyrhythm.errors import DataError

from conftest import ICENTIA_P0, ORIGINAL, run_cli

SEGMENTS = ["s00", "s15", "s19", "s20", "s39", "s48"]


def test_icentia_wfdb_record():
    rec = Icentia11k().read(ICENTIA_P0 / "p00000_s20.hea")
    assert rec.fs == 250 and rec.signal.dtype == np.float32 and len(rec.signal) == SEGMENT_LENGTH
    assert rec.patient_id == "icentia11k/00000" and rec.record_id == "p00000_s20"
    digital = wfdb.rdrecord(str(ICENTIA_P0 / "p00000_s20"), physical=False).d_signal[:, 0]
    np.testing.assert_allclose(rec.signal, digital / GAIN, rtol=1e-6)  # mV
    assert Counter(rec.beat_symbols.tolist()) == {"N": 5835, "Q": 1249}
    assert len(rec.zones) == 68 and {z.label for z in rec.zones} == {"N"}
    assert rec.zones[0].start == 84 and rec.zones[0].end == 6304
    # every Q beat lies outside all zones; every N beat inside one
    inside = np.zeros(len(rec.signal), bool)
    for z in rec.zones:
        inside[z.start : z.end + 1] = True
    assert not inside[rec.beats[rec.beat_symbols == "Q"]].any()
    assert inside[rec.beats[rec.beat_symbols == "N"]].all()


def test_one_beat_zone_and_mitbih_style_notes(tmp_path):
    sig = (np.sin(np.arange(5000) / 20) * 100).astype(np.int16).reshape(-1, 1)
    wfdb.wrsamp("rec", fs=250, units=["mV"], sig_name=["ecg"], d_signal=sig, fmt=["16"], adc_gain=[100], baseline=[0],
                write_dir=str(tmp_path))
    samples = np.array([10, 10, 200, 400, 400, 600, 900, 1500, 2000])
    symbols = ["+", "N", "N", "+", "N", "+", "+", "+", "N"]
    aux = ["(N)", "", "", "(AFIB", "", ")", "(AFL", "(SVTA", ""]
    wfdb.wrann("rec", "atr", samples, symbol=symbols, aux_note=aux, write_dir=str(tmp_path))
    zones, beats, syms = read_annotations(tmp_path / "rec", "atr", 5000)
    assert [(z.start, z.end, z.label) for z in zones] == [
        (10, 10, "N"), (400, 600, "AFIB"), (900, 1499, "AFL"), (1500, 4999, "OTHER")]
    assert zones[-1].note == "(SVTA"
    assert beats.tolist() == [10, 200, 400, 2000] and syms.tolist() == ["N"] * 4


@pytest.fixture(scope="module")
def patient0_signal_file(tmp_path_factory):
    """Patient 0's original-release signal file rebuilt from the shared WFDB segments."""
    path = tmp_path_factory.mktemp("orig") / "00000_batched.pkl.gz"
    n_segments = len(read_original_labels(ORIGINAL / "00000_batched_lbls.pkl.gz"))
    arr = np.zeros((n_segments, SEGMENT_LENGTH), np.float32)
    for s in SEGMENTS:
        d = wfdb.rdrecord(str(ICENTIA_P0 / f"p00000_{s}"), physical=False).d_signal[:, 0]
        arr[int(s[1:])] = d / GAIN
    with gzip.open(path, "wb", compresslevel=1) as f:
        pickle.dump(arr, f, protocol=2)  # the original release's protocol
    (path.parent / "00000_batched_lbls.pkl.gz").symlink_to(ORIGINAL / "00000_batched_lbls.pkl.gz")
    return path


def test_original_release_matches_wfdb(patient0_signal_file):
    orig = Icentia11kOriginal(patient0_signal_file.parent)
    assert orig.patients() == ["icentia11k/00000"]
    segs = [int(s[1:]) for s in SEGMENTS]
    wf = {r.record_id: r for r in Icentia11k().records("icentia11k/00000")}
    seen = 0
    for rec in orig.records("icentia11k/00000", segments=segs):
        ref = wf[rec.record_id]
        assert rec.zones == ref.zones
        np.testing.assert_array_equal(rec.beats, ref.beats)
        np.testing.assert_array_equal(rec.beat_symbols, ref.beat_symbols)
        np.testing.assert_allclose(rec.signal, ref.signal, rtol=1e-6, atol=1e-7)
        seen += 1
    assert seen == 6


def test_original_labels_find_af_and_flutter():
    def zones(pid):
        return Counter(z.label for zs, _, _ in read_original_labels(ORIGINAL / f"{pid}_batched_lbls.pkl.gz") for z in zs)

    z10, z16, z20 = zones("00010"), zones("00016"), zones("00020")
    assert z10["AFL"] > 0 and z10["AFIB"] == 0
    assert z16["AFIB"] > 0 and z20["AFIB"] > 0
    assert z16["N"] > 0 and z20["N"] > 0
    # flutter zones of patient 10 cover real time, not single beats only
    segs = read_original_labels(ORIGINAL / "00010_batched_lbls.pkl.gz")
    afl_s = sum(z.end - z.start for zs, _, _ in segs for z in zs if z.label == "AFL") / 250
    assert afl_s > 3600


def test_original_reader_without_signal_file_is_clear(tmp_path):
    (tmp_path / "00016_batched_lbls.pkl.gz").symlink_to(ORIGINAL / "00016_batched_lbls.pkl.gz")
    ds = Icentia11kOriginal(tmp_path)
    with pytest.raises(DataError, match="signal file not found"):
        next(ds.records("icentia11k/00016"))


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "00001_batched_lbls.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump([{"btype": [_Evil()], "rtype": []}], f, protocol=2)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        safe_load(path)
    assert not (tmp_path / "pwned").exists()
    proc = run_cli("data", "show", path)
    assert proc.returncode == 2 and "refused to load" in proc.stderr and not (tmp_path / "pwned").exists()


def test_restricted_unpickler_admits_plain_data(tmp_path):
    obj = [{"a": np.arange(5, dtype=np.int32), "b": (1, 2.5, "x")}, np.float32(3.0)]
    path = tmp_path / "ok.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    out = safe_load(path)
    np.testing.assert_array_equal(out[0]["a"], obj[0]["a"])
    assert out[0]["b"] == (1, 2.5, "x") and out[1] == 3.0


def test_cinc2017():
    ds = Cinc2017()
    assert ds.num_records() == 6822 and len(ds.patients()) == 6822
    assert ds.record_labels() == {"N": 4040, "A": 590, "O": 1965, "~": 227}
    rec = ds.read("A00004")
    assert rec.fs == 300 and rec.label == "A" and rec.zones[0].label == "AFIB"
    assert rec.signal.dtype == np.float32 and len(rec.signal) > 2700
    assert abs(float(rec.signal[0])) < 5  # mV, not ADC units


def test_mitdb_lead_choice():
    a = next(Mitdb().records("mitdb/100"))
    b = next(Mitdb(lead="V5").records("mitdb/100"))
    c = next(open_dataset("mitdb", lead=1).records("mitdb/100"))
    assert a.lead == "MLII" and b.lead == "V5" and c.lead == "V5"
    assert a.fs == 360 and not np.allclose(a.signal, b.signal)
    assert [(z.start, z.end, z.label) for z in a.zones] == [(18, 649999, "N")]
    assert Counter(a.beat_symbols.tolist()) == {"N": 2239, "A": 33, "V": 1}
    with pytest.raises(DataError, match="no lead named 'V1'"):
        next(Mitdb(lead="V1").records("mitdb/100"))


def test_nstdb():
    noise = load_noise()
    assert set(noise) == {"bw", "em", "ma"}
    assert all(x.shape == (650000, 2) and x.dtype == np.float32 for x in noise.values())


def test_cli_summary_cinc_and_icentia():
    import json

    out = json.loads(run_cli("data", "summary", "cinc2017", "--json", check=0).stdout)
    assert out["records"] == 6822 and out["patients"] == 6822
    assert out["record_labels"] == {"N": 4040, "A": 590, "O": 1965, "~": 227}
    out = json.loads(run_cli("data", "summary", "icentia11k", "--json", check=0).stdout)
    assert out["patients"] == 2 and out["records"] == 7  # patient 0 (6 segments) and 1001 (1)
    assert out["windows"]["N"] > 2000 and out["windows"]["NOISE"] > 50
