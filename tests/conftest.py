import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(os.environ.get("TINYRHYTHM_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
ICENTIA_P0 = DATA / "icentia11k" / "wfdb" / "p00" / "p00000"
ORIGINAL = DATA / "icentia11k" / "original"
CINC = DATA / "cinc2017" / "training2017"
os.environ["TINYRHYTHM_DATA"] = str(DATA)  # module-scoped fixtures run before monkeypatch


@pytest.fixture(autouse=True)
def _data_env(monkeypatch):
    if not DATA.is_dir():
        pytest.fail(f"real data not found at {DATA}: set TINYRHYTHM_DATA")
    monkeypatch.setenv("TINYRHYTHM_DATA", str(DATA))


def run_cli(*args, env=None, check=None):
    """Run the installed console command as a user would."""
    e = dict(os.environ)
    e.setdefault("TINYRHYTHM_DATA", str(DATA))
    if env:
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    exe = shutil.which("tinyrhythm", path=str(Path(sys.executable).parent)) or "tinyrhythm"
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=e, timeout=600)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


# Commands that start worker processes run as a real subprocess even in-process mode: a fork
# of the test process (torch's threads included) is not what a user runs. `train` starts them
# only once its config is valid, so a refused config stays in-process (see _WouldTrain).
_SPAWNING = ("--jobs", "--workers")


class _WouldTrain(BaseException):
    """Raised in place of training by an in-process `train` whose config was accepted."""


def run_inprocess(*args, env=None, check=None):
    """`tinyrhythm ARGS` through cli.main() in this interpreter (the error-contract tests: no
    2.5 s interpreter start per call), with stdout/stderr captured, the environment patched for
    the call, and an escaped exception turned into exit code 1 and its traceback on stderr, as a
    subprocess would show it. The same CompletedProcess as run_cli."""
    import contextlib
    import io
    import traceback

    argv = [str(a) for a in args]
    if any(a in _SPAWNING for a in argv):
        return run_cli(*args, env=env, check=check)
    import torch

    from tinyrhythm import cli, train

    def would_train(*_, **__):
        raise _WouldTrain

    saved = dict(os.environ)
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    real_train = train.train
    try:
        os.environ.setdefault("TINYRHYTHM_DATA", str(DATA))
        for k, v in (env or {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        train.train = would_train
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(argv)
            except SystemExit as exc:  # argparse's usage errors
                rc = exc.code if isinstance(exc.code, int) else 2
            except Exception:
                traceback.print_exc()
                rc = 1
    except _WouldTrain:  # the config passed: train for real, in its own process
        rc = None
    finally:
        train.train = real_train
        os.environ.clear()
        os.environ.update(saved)
        torch.set_num_threads(threads)
    if rc is None:
        return run_cli(*args, env=env, check=check)
    proc = subprocess.CompletedProcess(["tinyrhythm", *argv], rc, out.getvalue(), err.getvalue())
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("tinyrhythm: error: "), err
    for frag in fragments:
        assert frag in err, (frag, err)


def copy_record(src_base: Path, dst_dir: Path, exts=(".hea", ".dat", ".atr")) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for ext in exts:
        src = src_base.with_name(src_base.name + ext)
        if src.exists():
            dst = dst_dir / src.name
            shutil.copyfile(src, dst)
            dst.chmod(0o644)
    return dst_dir / src_base.name


@pytest.fixture(scope="session")
def small_store(tmp_path_factory):
    """CinC 2017 windows of 400 patients (62.5 Hz x 513, hop 128): the zoo models' window format."""
    from tinyrhythm.windows.labelling import WindowConfig
    from tinyrhythm.windows.build import build_store
    from tinyrhythm.windows.schema import BuildConfig

    out = tmp_path_factory.mktemp("store") / "cinc"
    build_store(out, BuildConfig(["cinc2017"], "cinc2017", WindowConfig(fs=62.5, hop=128), max_patients=400),
                workers=2, quiet=True)
    return out


def train_tiny(store, out, *extra, check=0):
    return run_cli("train", "--model", "cnn1", "--task", "cinc2017", "--store", store, "--epochs", "2",
                   "--samples-per-epoch", "256", "--batch-size", "64", "--threads", "1", "--out", out, "--quiet", *extra,
                   check=check)


@pytest.fixture(scope="session")
def trained_run(small_store, tmp_path_factory):
    """(run folder, train --json output) of a two-epoch CNN1 on the small store."""
    import json

    out = tmp_path_factory.mktemp("run") / "run"
    proc = train_tiny(small_store, out, "--json")
    return out, json.loads(proc.stdout)


def zoo_run_folder(run: Path, name: str = "rhythm-cnn3") -> Path:
    """A valid run folder, as `train` leaves one: a zoo model's weights with its card as the run's
    config.json and its prior correction in metrics.json (as training records it)."""
    import json

    from tinyrhythm import zoo
    from tinyrhythm.checkpoint import record_hash

    card = zoo.cards()[name]
    run.mkdir(parents=True)
    shutil.copyfile(zoo.WEIGHTS_DIR / card["weights"], run / "model.pt")
    cfg = {"model": {"name": card["architecture"], **card["model_config"]}, "task": {"name": card["task"]},
           "classes": card["labels"], "fs": card["fs"], "input_length": card["input_length"], "train": card["train"]}
    (run / "config.json").write_text(json.dumps(cfg))
    if card.get("prior_correction"):
        (run / "metrics.json").write_text(json.dumps({"prior_correction": card["prior_correction"]}))
    record_hash(run / "model.pt")
    return run
