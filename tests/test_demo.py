"""The fresh-machine path: `make demo` / `tinyrhythm demo` on the sample recording, `make test`."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import wfdb

from conftest import run_cli
from tinyrhythm import samples

ROOT = Path(__file__).resolve().parents[1]


def test_demo_command_writes_summary_annotations_and_report(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", out, check=0)
    name = samples.DEFAULT
    for suffix in (".tr", "_episodes.csv", "_windows.csv", "_monitor.json", "_report.html"):
        assert (out / f"{name}{suffix}").is_file(), suffix
    assert f"report: {(out / f'{name}_report.html').resolve()}" in proc.stdout
    assert "AF burden" in proc.stdout and "vs reference:" in proc.stdout
    summary = json.loads((out / f"{name}_monitor.json").read_text())
    # The sample's reference: 149 s of AF or flutter in 360 s, one 107 s episode at 189-296 s.
    assert 0.15 < summary["af_burden"] < 0.5
    af = [e for e in summary["episodes"] if e["label"] in ("AFIB", "AFL")]
    assert any(e["start_s"] < 296 and e["end_s"] > 189 for e in af)
    assert summary["evaluation"]["false_af_min_per_hour"] < 5
    assert summary["evaluation"]["af_f1_duration"] > 0.6
    ann = wfdb.rdann(str(out / name), "tr")
    assert "(AFIB" in ann.aux_note or "(AFL" in ann.aux_note
    page = (out / f"{name}_report.html").read_text()
    assert "Rhythm and AF burden over time" in page and "Against the reference annotations" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_sample_is_real_small_and_attributed():
    assert samples.names() == ["mitdb222_13m"]
    rec = wfdb.rdrecord(str(samples.path()))
    assert rec.fs == 360 and rec.sig_len == 6 * 60 * 360 and rec.sig_name == ["MLII", "V1"]
    assert np.isfinite(rec.p_signal).all() and rec.p_signal[:, 0].std() > 0.05
    # the same samples as MITDB record 222 at 13:00-19:00
    from conftest import DATA

    orig = wfdb.rdrecord(str(DATA / "mitdb" / "222"), sampfrom=13 * 60 * 360, sampto=19 * 60 * 360, physical=False)
    assert np.array_equal(wfdb.rdrecord(str(samples.path()), physical=False).d_signal, orig.d_signal)
    size = sum(samples.path().with_suffix(s).stat().st_size for s in (".hea", ".dat", ".atr"))
    assert size < 1_000_000
    assert not list((ROOT / "src" / "tinyrhythm" / "samples").glob("*.dat"))  # no ECG in the repository
    text = samples.attribution()
    for needle in ("MIT-BIH Arrhythmia Database", "ODC-By 1.0", "record 222", "Moody GB", "physionet.org/content/mitdb"):
        assert needle in text
    with pytest.raises(Exception, match="no sample record"):
        samples.path("nope")


def test_sample_path_for_the_shell_and_help_examples():
    proc = subprocess.run([sys.executable, "-m", "tinyrhythm.samples"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(samples.path())
    help_text = run_cli("monitor", "--help", check=0).stdout
    assert "python -m tinyrhythm.samples" in help_text
    # a WFDB record name without extension works for predict too, as in the examples
    pred = run_cli("predict", "--model", "rhythm-cnn3-int8", samples.path(), "--json", check=0)
    assert json.loads(pred.stdout)["record"] == "mitdb222_13m"


@pytest.mark.slow
def test_wheel_carries_the_licence_but_no_ecg(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("tinyrhythm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("ATTRIBUTION.md", "__main__.py", "__init__.py"):
        assert f"tinyrhythm/samples/{f}" in names, f
    assert not [n for n in names if n.endswith((".dat", ".atr", ".hea"))]  # the sample is cut on first use
    # The C generator's kernel templates and the zoo travel with the package.
    kernels = {p.name for p in (ROOT / "src" / "tinyrhythm" / "export" / "c_kernels").glob("*.c")}
    assert len(kernels) == 10 and {f"tinyrhythm/export/c_kernels/{k}" for k in kernels} <= names
    assert "tinyrhythm/zoo/cards/rhythm-cnn3-int8.json" in names and "tinyrhythm/zoo/weights/rhythm-cnn3-int8.onnx" in names


def test_sample_downloaded_from_physionet_when_no_mitdb_is_at_hand(tmp_path, monkeypatch):
    """Without MITDB under TINYRHYTHM_DATA the sample comes from PhysioNet (here a local mirror of it):
    the three record files, checked against SHA256SUMS.txt, cut to the same bytes."""
    import hashlib
    import http.server
    import threading

    from conftest import DATA

    files = {f"/mitdb/1.0.0/222.{e}": (DATA / "mitdb" / f"222.{e}").read_bytes() for e in ("hea", "dat", "atr")}
    files["/mitdb/1.0.0/SHA256SUMS.txt"] = "".join(
        f"{hashlib.sha256(b).hexdigest()} {k.rsplit('/', 1)[1]}\n" for k, b in files.items()).encode()
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            asked.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TINYRHYTHM_DATA", str(tmp_path / "no-data"))
        monkeypatch.setenv("TINYRHYTHM_SAMPLES", str(tmp_path / "cache"))
        url = f"http://127.0.0.1:{server.server_address[1]}/mitdb/1.0.0"
        p = samples.path(base_url=url)
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(asked) == sorted(files)
    assert p == tmp_path / "cache" / "mitdb222_13m"
    assert sorted(x.name for x in (tmp_path / "cache").iterdir()) == [f"mitdb222_13m.{e}" for e in ("atr", "dat", "hea")]
    assert samples.path(base_url="http://127.0.0.1:9/unused") == p  # cached: no second fetch


def test_make_installs_torch_pinned_first_and_test_runs_the_readme_command(tmp_path):
    env = {**os.environ, "MAKEFLAGS": ""}
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), f"VENV={tmp_path / 'venv'}", "demo"], capture_output=True,
                         text=True, env=env, check=True).stdout
    lines = dry.splitlines()
    torch_line = next(i for i, l in enumerate(lines) if "torch==2.13.0" in l)
    pkg_line = next(i for i, l in enumerate(lines) if "install --quiet -e ." in l)
    assert torch_line < pkg_line and "tinyrhythm demo --out demo" in lines[-1]
    test = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), f"VENV={tmp_path / 'venv'}", "test"], capture_output=True,
                          text=True, env=env, check=True).stdout.splitlines()
    assert test[-1].endswith("python -m pytest -q")
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
