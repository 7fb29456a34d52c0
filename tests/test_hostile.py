"""A corpus of hostile and broken inputs, each through the CLI as a user would give it.

Every case must end with exit code 2 and exactly one stderr line, `tinyrhythm: error: `,
naming the file (or the setting) and the reason: no traceback, no warning line, and
nothing created beside the inputs. The cases run in parallel subprocesses (a module
fixture); each is then its own test.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from conftest import DATA, run_cli, run_inprocess, zoo_run_folder

MODEL = "rhythm-cnn3-int8"
CASES: dict[str, tuple] = {}  # id -> (builder(tmp) -> argv, fragments that the error line must hold)


def case(name: str, *fragments: str):
    def deco(fn):
        CASES[name] = (fn, fragments)
        return fn

    return deco


def _npy(tmp: Path, name: str, arr) -> Path:
    p = tmp / name
    np.save(p, arr, allow_pickle=True)
    return p


def _hea(tmp: Path, name: str, header: str, dat: bytes | None = b"\x00\x01" * 2000) -> Path:
    (tmp / f"{name}.hea").write_text(header)
    if dat is not None:
        (tmp / f"{name}.dat").write_bytes(dat)
    return tmp / f"{name}.hea"


def _good_record(tmp: Path, name: str = "rec", fs: float = 250, n: int = 5000) -> Path:
    t = np.arange(n) / fs
    sig = (np.sin(2 * np.pi * 1.2 * t) ** 63 * 1.5 * 200).astype(np.int16)
    wfdb.wrsamp(name, fs=fs, units=["mV"], sig_name=["ecg"], d_signal=sig.reshape(-1, 1), fmt=["16"], adc_gain=[200.0],
                baseline=[0], write_dir=str(tmp))
    return tmp / f"{name}.hea"


# --- signal files: .npy ------------------------------------------------------------------
for _name, _arr, _why in [
    ("npy-string", np.array(["a", "b", "c"] * 1000), "dtype"),
    ("npy-structured", np.zeros(3000, dtype=[("a", "f4"), ("b", "i4")]), "dtype"),
    ("npy-complex", np.ones(3000, np.complex64), "dtype"),
    ("npy-bool", np.ones(3000, bool), "dtype"),
    ("npy-empty", np.zeros(0, np.float32), "empty"),
    ("npy-3d", np.zeros((10, 10, 10), np.float32), "shape"),
    ("npy-all-nan", np.full(3000, np.nan, np.float32), "NaN"),
    ("npy-inf", np.r_[np.zeros(1000), np.inf, np.zeros(2000)].astype(np.float64), "NaN/Inf"),
    ("npy-flat", np.zeros(3000, np.float32), "flat"),
    ("npy-huge-values", np.full(3000, 1e30, np.float64) * np.sin(np.arange(3000)), "implausible"),
    ("npy-object", np.array([{"a": 1}] * 10, dtype=object), "dtype"),
]:
    def _mk(tmp, _n=_name, _a=_arr):
        return ["predict", "--model", MODEL, "--fs", "250", _npy(tmp, f"{_n}.npy", _a)]

    case(_name, f"{_name}.npy", _why)(_mk)

    def _mk_mon(tmp, _n=_name, _a=_arr):
        return ["monitor", _npy(tmp, f"{_n}.npy", _a), "--fs", "250"]

    if _name not in ("npy-all-nan", "npy-flat", "npy-inf"):  # a monitor marks those unreadable instead
        case(f"monitor-{_name}", f"{_name}.npy", _why)(_mk_mon)


@case("npy-corrupt-header", "bad.npy", "unreadable")
def _(tmp):
    (tmp / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\xff\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10" + b" " * 200)
    return ["predict", "--model", MODEL, "--fs", "250", tmp / "bad.npy"]


@case("npy-truncated", "trunc.npy")
def _(tmp):
    p = _npy(tmp, "trunc.npy", np.zeros(100000, np.float32))
    p.write_bytes(p.read_bytes()[:1000])
    return ["monitor", p, "--fs", "250"]


@case("npy-not-numpy", "junk.npy")
def _(tmp):
    (tmp / "junk.npy").write_bytes(os.urandom(5000))
    return ["monitor", tmp / "junk.npy", "--fs", "250"]


# --- signal files: .csv -------------------------------------------------------------------
for _name, _text, _why in [
    ("csv-binary", None, "unreadable"),
    ("csv-empty", "", "empty"),
    ("csv-words", "hello\nworld\nthis is not ecg\n", "unreadable"),
    ("csv-overflow", "\n".join(["1e40", "-1e40"] * 2000), "implausible"),
    ("csv-ragged", "1,2\n3\n4,5,6\n" * 500, "unreadable"),
    ("csv-nan", "\n".join(["nan"] * 3000), "NaN"),
    ("csv-header-only", "ecg\n", "empty"),
]:
    def _mk(tmp, _n=_name, _t=_text):
        p = tmp / f"{_n}.csv"
        p.write_bytes(os.urandom(4000) if _t is None else _t.encode())
        return ["predict", "--model", MODEL, "--fs", "250", p]

    case(_name, f"{_name}.csv", _why)(_mk)


# --- sampling rates given on the command line -----------------------------------------------
for _fs in ("0", "-250", "nan", "inf", "0.001", "1e9"):
    def _mk(tmp, _f=_fs):
        return ["predict", "--model", MODEL, "--fs", _f, _npy(tmp, "x.npy", np.sin(np.arange(5000) / 7).astype(np.float32))]

    case(f"cli-fs-{_fs}", "x.npy", "sampling rate")(_mk)

    def _mk_mon(tmp, _f=_fs):
        return ["monitor", _npy(tmp, "x.npy", np.sin(np.arange(5000) / 7).astype(np.float32)), "--fs", _f]

    case(f"monitor-fs-{_fs}", "x.npy", "sampling rate")(_mk_mon)


# --- WFDB headers --------------------------------------------------------------------------
HEADERS = {
    "hea-no-signal-lines": ("r 1 250 2000\n", "signal"),
    "hea-nul-bytes": ("r 1 250 2000\x00\x00\nr.dat 16 200 16 0 0 0 0 ecg\n", "r.hea"),
    "hea-huge-count": ("r 1 250 100000000000\nr.dat 16 200 16 0 0 0 0 ecg\n", "samples"),
    "hea-fs-tiny": ("r 1 0.001 2000\nr.dat 16 200 16 0 0 0 0 ecg\n", "sampling rate"),
    "hea-fs-huge": ("r 1 1000000000 2000\nr.dat 16 200 16 0 0 0 0 ecg\n", "sampling rate"),
    "hea-fs-negative": ("r 1 -250 2000\nr.dat 16 200 16 0 0 0 0 ecg\n", "r.hea"),
    "hea-gain-zero": ("r 1 250 2000\nr.dat 16 0 16 0 0 0 0 ecg\n", "gain"),
    "hea-units": ("r 1 250 2000\nr.dat 16 200/furlong 16 0 0 0 0 ecg\n", "units"),
    "hea-format": ("r 1 250 2000\nr.dat 999 200 16 0 0 0 0 ecg\n", "r.hea"),
    "hea-binary": (None, "r.hea"),
    "hea-zero-signals": ("r 0 250 2000\n", "r.hea"),
    "hea-more-signals-than-lines": ("r 3 250 2000\nr.dat 16 200 16 0 0 0 0 ecg\n", "r.hea"),
    "hea-missing-dat": ("r 1 250 2000\nother.dat 16 200 16 0 0 0 0 ecg\n", "other.dat"),
    "hea-dat-path-escape": ("r 1 250 2000\n../../../etc/passwd 16 200 16 0 0 0 0 ecg\n", "r.hea"),
    "hea-negative-count": ("r 1 250 -5\nr.dat 16 200 16 0 0 0 0 ecg\n", "r.hea"),
}
for _name, (_text, _why) in HEADERS.items():
    for _cmd in ("predict", "monitor"):
        def _mk(tmp, _t=_text, _c=_cmd):
            hea = tmp / "r.hea"
            if _t is None:
                hea.write_bytes(os.urandom(600))
            else:
                hea.write_text(_t)
            (tmp / "r.dat").write_bytes(b"\x10\x00" * 2000)
            return ["predict", "--model", MODEL, hea] if _c == "predict" else ["monitor", hea]

        case(f"{_cmd}-{_name}", _why)(_mk)


@case("dat-empty", "r.dat")
def _(tmp):
    hea = _good_record(tmp, "r")
    (tmp / "r.dat").write_bytes(b"")
    return ["monitor", hea]


@case("lead-out-of-range", "rec.hea", "lead")
def _(tmp):
    return ["monitor", _good_record(tmp), "--lead", "7"]


@case("lead-unknown-name", "rec.hea", "V9")
def _(tmp):
    return ["predict", "--model", MODEL, _good_record(tmp), "--lead", "V9"]


# --- CinC .mat ---------------------------------------------------------------------------------
def _mat(tmp: Path, name: str, payload: bytes, n: int = 3000) -> Path:
    (tmp / f"{name}.hea").write_text(f"{name} 1 300 {n} \n{name}.mat 16+24 1000/mV 16 0 0 0 0 ECG\n")
    (tmp / f"{name}.mat").write_bytes(payload)
    return tmp / f"{name}.hea"


@case("mat-garbage", "m.mat")
def _(tmp):
    return ["predict", "--model", MODEL, _mat(tmp, "m", os.urandom(3000))]


@case("mat-truncated", "m.mat")
def _(tmp):
    src = sorted((DATA / "cinc2017" / "training2017").glob("A0000*.mat"))[0]
    hea = (src.with_suffix(".hea")).read_text().replace(src.stem, "m")
    (tmp / "m.hea").write_text(hea)
    (tmp / "m.mat").write_bytes(src.read_bytes()[:100])
    return ["predict", "--model", MODEL, tmp / "m.hea"]


@case("mat-without-val", "m.mat", "'val'")
def _(tmp):
    import scipy.io

    (tmp / "m.hea").write_text("m 1 300 9000\nm.mat 16+24 1000/mV 16 0 0 0 0 ECG\n")
    scipy.io.savemat(tmp / "m.mat", {"other": np.zeros((1, 9000))}, format="4")
    return ["predict", "--model", MODEL, tmp / "m.hea"]


@case("mat-wrong-shape", "m.mat", "shape")
def _(tmp):
    import scipy.io

    (tmp / "m.hea").write_text("m 1 300 9000\nm.mat 16+24 1000/mV 16 0 0 0 0 ECG\n")
    scipy.io.savemat(tmp / "m.mat", {"val": np.zeros((3, 9000), np.int16)}, format="4")
    return ["monitor", tmp / "m.hea"]


@case("cinc-reference-binary", "REFERENCE.csv")
def _(tmp):
    root = tmp / "data" / "cinc2017" / "training2017"
    root.mkdir(parents=True)
    for n in ("A00001", "A00003"):
        for ext in (".hea", ".mat"):
            shutil.copyfile(DATA / "cinc2017" / "training2017" / f"{n}{ext}", root / f"{n}{ext}")
    (root / "REFERENCE.csv").write_bytes(os.urandom(300))
    return {"argv": ["data", "summary", "cinc2017"], "env": {"TINYRHYTHM_DATA": str(tmp / "data")}}


# --- EDF ----------------------------------------------------------------------------------------
@case("edf-garbage", "g.edf")
def _(tmp):
    (tmp / "g.edf").write_bytes(b"0       " + os.urandom(2000))
    return ["monitor", tmp / "g.edf"]


@case("edf-empty", "e.edf")
def _(tmp):
    (tmp / "e.edf").write_bytes(b"")
    return ["predict", "--model", MODEL, tmp / "e.edf"]


# --- paths ----------------------------------------------------------------------------------------
@case("missing-file", "nope.hea")
def _(tmp):
    return ["monitor", tmp / "nope.hea"]


@case("unsupported-extension", "notes.txt", "unsupported")
def _(tmp):
    (tmp / "notes.txt").write_text("hello")
    return ["predict", "--model", MODEL, tmp / "notes.txt"]


@case("empty-folder", "empty", "no records")
def _(tmp):
    (tmp / "empty").mkdir()
    return ["predict", "--model", MODEL, tmp / "empty"]


@case("monitor-folder", "dir", "folder")
def _(tmp):
    (tmp / "dir").mkdir()
    return ["monitor", tmp / "dir"]


@case("monitor-out-is-a-file", "taken", "not a folder")
def _(tmp):
    (tmp / "taken").write_text("x")
    return ["monitor", _good_record(tmp), "--out", tmp / "taken"]


@case("monitor-ann-ext-path", "ann-ext")
def _(tmp):
    return ["monitor", _good_record(tmp), "--out", tmp / "o", "--ann-ext", "../x"]


@case("report-out-under-a-file", "taken")
def _(tmp):
    (tmp / "taken").write_text("x")
    return ["report", _good_record(tmp), "--out", tmp / "taken" / "r.html"]


@case("report-out-is-a-folder", "folder")
def _(tmp):
    (tmp / "outdir").mkdir()
    return ["report", _good_record(tmp), "--out", tmp / "outdir"]


# --- training configs ----------------------------------------------------------------------------
BAD_CONFIGS = {
    "epochs-negative": ({"epochs": -1}, "epochs"),
    "epochs-zero": ({"epochs": 0}, "epochs"),
    "epochs-float": ({"epochs": 1.5}, "epochs"),
    "epochs-string": ({"epochs": "ten"}, "epochs"),
    "batch-zero": ({"batch_size": 0}, "batch_size"),
    "lr-negative": ({"lr": -0.1}, "lr"),
    "lr-nan": ({"lr": float("nan")}, "lr"),
    "samples-zero": ({"samples_per_epoch": 0}, "samples_per_epoch"),
    "dropout-two": ({"dropout": 2.0}, "dropout"),
    "augment-type": ({"augment": {"noise_prob": "high"}}, "noise_prob"),
    "augment-range": ({"augment": {"snr_db": [24, 0, 3]}}, "snr_db"),
    "augment-not-object": ({"augment": [1, 2]}, "augment"),
    "stretch-faster": ({"augment": {"stretch": [0.8, 1.5]}}, "augment.stretch"),
    "lowpass-zero-hz": ({"augment": {"lowpass_hz": [0, 20]}}, "augment.lowpass_hz"),
    "lead-mix-past-half-turn": ({"augment": {"lead_mix_deg": 270}}, "augment.lead_mix_deg"),
    "slow-af-weight-negative": ({"slow_af_weight": -2}, "slow_af_weight"),
    "unknown-key": ({"epohcs": 3}, "epohcs"),
    "model-unknown": ({"model": "resnet9000"}, "resnet9000"),
    "task-unknown": ({"task": "astrology"}, "astrology"),
    "fs-zero": ({"fs": 0}, "fs"),
    "threads-zero": ({"threads": 0}, "threads"),
    "schedule-unknown": ({"schedule": "sometimes"}, "schedule"),
    "datasets-not-list": ({"datasets": "mitdb"}, "datasets"),
    "dataset-weights-type": ({"dataset_weights": {"mitdb": "lots"}}, "dataset_weights"),
}
for _name, (_cfg, _why) in BAD_CONFIGS.items():
    def _mk(tmp, _c=_cfg):
        (tmp / "cfg.json").write_text(json.dumps({"task": "cinc2017", **_c}))
        return ["train", "--config", tmp / "cfg.json", "--out", tmp / "run"]

    case(f"train-{_name}", _why)(_mk)

for _name, _bytes in [("malformed", b'{"epochs": 3,'), ("list", b"[1, 2, 3]"), ("binary", None), ("empty", b"")]:
    def _mk(tmp, _b=_bytes):
        (tmp / "cfg.json").write_bytes(os.urandom(300) if _b is None else _b)
        return ["train", "--config", tmp / "cfg.json", "--out", tmp / "run"]

    case(f"train-config-{_name}", "cfg.json")(_mk)


# --- run folders given as --model ----------------------------------------------------------------
def _run_folder(tmp: Path) -> Path:
    return zoo_run_folder(tmp / "myrun")


RUN_BREAKS = {
    "config-malformed": (lambda r: (r / "config.json").write_text("{nope"), "config.json"),
    "config-list": (lambda r: (r / "config.json").write_text("[1]"), "config.json"),
    "config-binary": (lambda r: (r / "config.json").write_bytes(os.urandom(200)), "config.json"),
    "config-no-classes": (lambda r: _edit(r, classes=None), "classes"),
    "config-fs-zero": (lambda r: _edit(r, fs=0), "fs"),
    "config-fs-nan": (lambda r: _edit(r, fs="NaN"), "fs"),
    "config-length-negative": (lambda r: _edit(r, input_length=-3), "input_length"),
    "model-empty": (lambda r: (r / "model.pt").write_bytes(b""), "model.pt"),
    "model-missing": (lambda r: (r / "model.pt").unlink(), "model.pt"),
    "model-bitflip": (lambda r: _flip(r / "model.pt"), "model.pt"),
    "model-garbage": (lambda r: (r / "model.pt").write_bytes(os.urandom(5000)), "model.pt"),
}


def _edit(run: Path, **kv) -> None:
    cfg = json.loads((run / "config.json").read_text())
    for k, v in kv.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (run / "config.json").write_text(json.dumps(cfg).replace('"NaN"', "NaN"))


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) - 2000] ^= 0x10  # inside the last tensor's data
    p.write_bytes(bytes(b))


for _name, (_break, _why) in RUN_BREAKS.items():
    def _mk(tmp, _b=_break):
        run = _run_folder(tmp)
        _b(run)
        return ["predict", "--model", run, _good_record(tmp)]

    case(f"run-{_name}", _why)(_mk)


@case("zoo-unknown-name", "rhythm-cnn99")
def _(tmp):
    return ["predict", "--model", "rhythm-cnn99", _good_record(tmp)]


# --- stores --------------------------------------------------------------------------------------
@case("store-manifest-malformed", "manifest.json")
def _(tmp):
    (tmp / "store").mkdir()
    (tmp / "store" / "manifest.json").write_text("{")
    return ["data", "summary", tmp / "store"]


@case("store-windows-missing", "windows.npy")
def _(tmp):
    s = tmp / "store"
    (s / "shard-0000-of-0001").mkdir(parents=True)
    (s / "manifest.json").write_text(json.dumps({"classes": ["a"], "shards": [{"name": "shard-0000-of-0001", "windows": 5}],
                                                 "fs": 62.5, "window_length": 513}))
    return ["data", "summary", s]


def _run(item):
    name, tmp = item
    builder, _ = CASES[name]
    tmp.mkdir(parents=True, exist_ok=True)
    argv, env = builder(tmp), {"TQDM_DISABLE": "1"}
    if isinstance(argv, dict):  # a case that needs its own environment (a data root)
        argv, env = argv["argv"], {**env, **argv["env"]}
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    proc = run_inprocess(*argv, env=env)
    after = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    return name, proc, before, after


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case through cli.main() in this process, one after another (stdout/stderr capture is
    process-wide); the few that start workers run as subprocesses (conftest.run_inprocess)."""
    root = tmp_path_factory.mktemp("hostile")
    return {n: (p, b, a) for n, p, b, a in map(_run, [(n, root / n) for n in CASES])}


def test_corpus_is_large():
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input(outcomes, name):
    proc, before, after = outcomes[name]
    err = proc.stderr.strip()
    assert proc.returncode == 2, (name, proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("tinyrhythm: error: "), err
    for frag in CASES[name][1]:
        assert frag in err, (frag, err)
    assert after == before, (name, sorted(set(after) - set(before)))


def test_any_real_sampling_rate_and_names_with_spaces_work(tmp_path):
    """What the checks must not refuse: 299.99 Hz resamples, a record name may hold spaces."""
    t = np.arange(int(60 * 299.99)) / 299.99
    x = (np.exp(-((t % 0.8) - 0.4) ** 2 / 2e-4) * 1.2).astype(np.float32)  # a 75 bpm spike train
    np.save(tmp_path / "my rec.npy", x)
    out = tmp_path / "out dir"
    proc = run_cli("monitor", tmp_path / "my rec.npy", "--fs", "299.99", "--out", out, "--json", check=0)
    assert json.loads(proc.stdout)["fs"] == 299.99 and (out / "my_rec_monitor.json").is_file() and (out / "my_rec.tr").is_file()
    run_cli("predict", "--model", MODEL, tmp_path / "my rec.npy", "--fs", "299.99", check=0)


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_never_leaves_neither(tmp_path, monkeypatch, exchange):
    from tinyrhythm import paths

    if not exchange:
        monkeypatch.setattr(paths, "_exchange", lambda a, b: False)
    out, work = tmp_path / "export", tmp_path / "export.partial"
    out.mkdir()
    (out / "model.onnx").write_text("old")
    work.mkdir()
    (work / "model.onnx").write_text("new")
    seen = []
    real_replace = os.replace

    def watching(a, b):  # at every step of the swap, `out` or its .old twin holds a complete export
        seen.append((out / "model.onnx").is_file() or (tmp_path / "export.old" / "model.onnx").is_file())
        real_replace(a, b)
        seen.append((out / "model.onnx").is_file() or (tmp_path / "export.old" / "model.onnx").is_file())

    monkeypatch.setattr(paths.os, "replace", watching)
    paths.replace_dir(work, out)
    assert (out / "model.onnx").read_text() == "new" and all(seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
