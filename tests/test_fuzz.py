"""Property-based fuzzing of the readers an untrusted file reaches first (hypothesis).

Whatever the bytes, a reader either returns a signal or raises TinyRhythmError (one line
in the CLI): never another exception, never a warning. Budgets keep the whole module
to a few seconds per reader.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyrhythm.datasets import safe_pickle
from tinyrhythm.datasets.files import read_any
from tinyrhythm.datasets.stream import open_stream
from tinyrhythm.errors import TinyRhythmError

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _survives(fn) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be a stray stderr line in the CLI
        try:
            fn()
        except TinyRhythmError:
            pass


def _both(path: Path, fs=None) -> None:
    _survives(lambda: read_any(path, fs))
    _survives(lambda: open_stream(path, fs).read(0, 4096))


TOKENS = st.sampled_from(["r", "1", "2", "0", "-1", "250", "360.5", "1e9", "nan", "16", "212", "999", "200", "0(0)/mV",
                          "200/uV", "r.dat", "../x.dat", "/etc/passwd", "~", "#", "\t", "16+24", "10000000000", "x"])
LINE = st.lists(TOKENS, min_size=0, max_size=9).map(" ".join)


@FUZZ
@given(lines=st.lists(LINE, min_size=0, max_size=4), data=st.binary(max_size=600))
def test_header_reader(tmp_path, lines, data):
    (tmp_path / "r.hea").write_text("\n".join(lines) + "\n")
    (tmp_path / "r.dat").write_bytes(data)
    _both(tmp_path / "r.hea")


@FUZZ
@given(raw=st.binary(max_size=400))
def test_header_reader_raw_bytes(tmp_path, raw):
    (tmp_path / "r.hea").write_bytes(raw)
    (tmp_path / "r.dat").write_bytes(b"\x00\x01" * 300)
    _both(tmp_path / "r.hea")


DTYPES = st.sampled_from(["<f4", "<f8", "<i2", "<i4", "<u1", ">f8", "<c8", "|b1", "<U3", "<M8[s]", "<f2"])


SHAPES = st.one_of(st.just([]), st.tuples(st.integers(0, 20_000)), st.tuples(st.integers(0, 5_000), st.integers(0, 3)),
                   st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12))).map(list)  # <= 20k values


@FUZZ
@given(dtype=DTYPES, shape=SHAPES, seed=st.integers(0, 2**31),
       cut=st.integers(0, 3000), fs=st.sampled_from([250.0, 0.0, 49.0, 1e6, float("nan")]))
def test_npy_reader(tmp_path, dtype, shape, seed, cut, fs):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    arr = (rng.standard_normal(max(n, 1)) * 10).astype(np.float64)
    arr = np.resize(arr, shape) if shape else arr[0]
    buf = io.BytesIO()
    np.save(buf, arr.astype(dtype) if dtype[1] not in "UM" else arr.astype(str if dtype[1] == "U" else "<M8[s]"))
    data = buf.getvalue()
    (tmp_path / "x.npy").write_bytes(data if cut == 0 else data[: max(1, len(data) - cut)])
    _both(tmp_path / "x.npy", fs)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-+eEnaif \n\t;x")), max_size=2000))
def test_csv_reader(tmp_path, text):
    (tmp_path / "x.csv").write_text(text)
    _both(tmp_path / "x.csv", 250.0)


PLAIN = st.recursive(st.none() | st.integers() | st.floats() | st.binary(max_size=30) | st.text(max_size=10),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                     max_leaves=30)


@FUZZ
@given(obj=PLAIN, protocol=st.integers(2, 5), cut=st.integers(0, 40), flip=st.integers(0, 10_000))
def test_pickle_reader(tmp_path, obj, protocol, cut, flip):
    data = bytearray(pickle.dumps(obj, protocol=protocol))
    if flip < len(data) and flip % 3 == 0:
        data[flip] ^= 0x5A
    data = bytes(data[: max(1, len(data) - cut)])
    (tmp_path / "x.pkl").write_bytes(data)
    _survives(lambda: safe_pickle.load(tmp_path / "x.pkl"))


def test_pickle_that_asks_for_10_gb_is_refused_before_allocating(tmp_path):
    (tmp_path / "bomb.pkl").write_bytes(b"\x80\x04\x8e" + (10**10).to_bytes(8, "little") + b"abc")
    with pytest.raises(TinyRhythmError, match="asks for more than"):
        safe_pickle.load(tmp_path / "bomb.pkl")


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(TinyRhythmError, match="refused to load"):
        safe_pickle.load(tmp_path / "evil.pkl")


def test_pickle_naming_an_unknown_codec_is_one_error(tmp_path):
    # Found by test_pickle_reader: a flipped byte in protocol 2's `_codecs.encode(..., 'latin1')`.
    data = pickle.dumps(b"abc\xff", protocol=2).replace(b"latin1", b"latink")
    (tmp_path / "x.pkl").write_bytes(data)
    with pytest.raises(TinyRhythmError, match="unreadable or truncated pickle"):
        safe_pickle.load(tmp_path / "x.pkl")
