"""The downloader against a local mirror on 127.0.0.1 serving the shared data; no internet."""

import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import wfdb

from tinyrhythm.datasets import Cinc2017, Icentia11k, Mitdb, load_noise
from tinyrhythm.datasets.download import download

from conftest import CINC, DATA, ICENTIA_P0, assert_one_line_error, run_cli


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Mirror:
    """PhysioNet-shaped URL tree -> local files, with Range support and request counting."""

    def __init__(self):
        self.files: dict[str, Path] = {}
        self.requests: list[tuple[str, str | None]] = []

    def add_project(self, slug: str, version: str, files: dict[str, Path], bad_hash: str | None = None):
        base = f"/{slug}/{version}"
        lines = []
        for rel, src in files.items():
            self.files[f"{base}/{rel}"] = src
            digest = "0" * 64 if rel == bad_hash else _sha(src)
            lines.append(f"{digest} {rel}")
        sums = Path(self.tmp) / f"{slug}-SHA256SUMS.txt"
        sums.write_text("\n".join(lines) + "\n")
        self.files[f"{base}/SHA256SUMS.txt"] = sums


@pytest.fixture
def mirror(tmp_path):
    m = Mirror()
    m.tmp = tmp_path

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            m.requests.append((self.path, rng))
            src = m.files.get(self.path)
            if src is None:
                self.send_error(404)
                return
            data = src.read_bytes()
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if rng else 200)
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    m.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield m
    server.shutdown()
    server.server_close()


def _icentia_files():
    return {f"p00/p00000/{p.name}": p for p in sorted(ICENTIA_P0.iterdir())}


def test_icentia_subset_download_resume_and_read(mirror, tmp_path):
    files = _icentia_files()
    other = {"p01/p01234/p01234_s00.hea": ICENTIA_P0 / "p00000_s00.hea"}  # another patient, not asked for
    mirror.add_project("icentia11k-continuous-ecg", "1.0", {**files, **other})
    out = tmp_path / "data"
    # a partial file from an earlier, interrupted download
    dat = out / "icentia11k/wfdb/p00/p00000/p00000_s20.dat"
    dat.parent.mkdir(parents=True)
    Path(str(dat) + ".part").write_bytes((ICENTIA_P0 / "p00000_s20.dat").read_bytes()[:500_000])
    proc = run_cli("data", "download", "icentia11k", "--patients", "0", "--out", out, "--base-url", mirror.url,
                   "--quiet", "--json", check=0)
    result = json.loads(proc.stdout)
    assert result["files"] == 18 and result["resumed"] == 1 and result["downloaded"] == 17
    assert ("/icentia11k-continuous-ecg/1.0/p00/p00000/p00000_s20.dat", "bytes=500000-") in mirror.requests
    assert not any("p01234" in p for p, _ in mirror.requests)
    for rel, src in files.items():
        assert _sha(out / "icentia11k/wfdb" / rel) == _sha(src)
    assert not list(out.rglob("*.part"))
    assert Icentia11k(out / "icentia11k/wfdb").patients() == ["icentia11k/00000"]
    # a second run finds everything in place and fetches no file again
    n = len(mirror.requests)
    again = download("icentia11k", out, base_url=mirror.url, patients={0}, quiet=True)
    assert again["present"] == 18 and len(mirror.requests) == n + 1  # only SHA256SUMS.txt


def test_checksum_mismatch_is_discarded(mirror, tmp_path):
    files = {f"{n}": DATA / "mitdb" / n for n in ("100.hea", "100.dat", "100.atr")}
    mirror.add_project("mitdb", "1.0.0", files, bad_hash="100.dat")
    out = tmp_path / "data"
    proc = run_cli("data", "download", "mitdb", "--out", out, "--base-url", mirror.url, "--quiet")
    assert_one_line_error(proc, "100.dat", "SHA-256 mismatch")
    assert not (out / "mitdb/100.dat").exists() and not (out / "mitdb/100.dat.part").exists()


@pytest.mark.parametrize("evil", ["../../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "a\\..\\evil.txt"])
def test_checksum_list_cannot_write_outside_out(mirror, tmp_path, evil):
    files = {"100.hea": DATA / "mitdb" / "100.hea", evil: DATA / "mitdb" / "100.hea"}  # with a matching hash
    mirror.add_project("mitdb", "1.0.0", files)
    out = tmp_path / "deep" / "data"
    proc = run_cli("data", "download", "mitdb", "--out", out, "--base-url", mirror.url, "--quiet")
    assert_one_line_error(proc, "SHA256SUMS.txt", "leave the download folder")
    assert [p for p, _ in mirror.requests] == ["/mitdb/1.0.0/SHA256SUMS.txt"]  # nothing fetched
    assert not list(tmp_path.rglob("evil.txt")) and not out.exists()


def test_symlink_out_of_the_download_folder_is_refused(mirror, tmp_path):
    files = {"sub/100.hea": DATA / "mitdb" / "100.hea"}
    mirror.add_project("mitdb", "1.0.0", files)
    out = tmp_path / "data"
    (out / "mitdb").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (out / "mitdb" / "sub").symlink_to(tmp_path / "elsewhere")
    proc = run_cli("data", "download", "mitdb", "--out", out, "--base-url", mirror.url, "--quiet")
    assert_one_line_error(proc, "outside the download folder")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_holter_af_sets_download_and_read(mirror, tmp_path):
    from tinyrhythm.datasets import open_dataset

    aftdb = {f"learning-set/{n}.{e}": DATA / "aftdb" / "learning-set" / f"{n}.{e}" for n in ("n01", "s01")
             for e in ("hea", "dat", "qrs")}
    mirror.add_project("aftdb", "1.0.0", aftdb)
    afpdb = {f"{n}.{e}": DATA / "afpdb" / f"{n}.{e}" for n in ("n01", "n02") for e in ("hea", "dat", "qrs")}
    afpdb["t01.hea"] = DATA / "afpdb" / "n01.hea"  # an unlabelled test record: not fetched
    mirror.add_project("afpdb", "1.0.0", afpdb)
    out = tmp_path / "data"
    assert download("aftdb", out, base_url=mirror.url, quiet=True)["downloaded"] == 6
    assert download("afpdb", out, base_url=mirror.url, quiet=True)["files"] == 6
    assert not (out / "afpdb" / "t01.hea").exists()
    ds = open_dataset("aftdb", out / "aftdb")
    rec = next(ds.records(ds.patients()[0]))
    assert rec.fs == 128 and rec.zones[0].label == "AFIB"


def test_mitdb_download(mirror, tmp_path):
    files = {n: DATA / "mitdb" / n for n in ("100.hea", "100.dat", "100.atr")}
    mirror.add_project("mitdb", "1.0.0", files)
    download("mitdb", tmp_path, base_url=mirror.url, quiet=True)
    rec = next(Mitdb(tmp_path / "mitdb").records("mitdb/100"))
    assert rec.fs == 360 and rec.zones[0].label == "N"


def test_cinc2017_download_unpacks_with_v3_labels(mirror, tmp_path):
    names = [l.split(",")[0] for l in (CINC / "REFERENCE.csv").read_text().splitlines()[:6]]
    zpath = tmp_path / "training2017.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for n in names:
            for ext in (".hea", ".mat"):
                z.write(CINC / f"{n}{ext}", f"training2017/{n}{ext}")
        z.writestr("training2017/RECORDS", "\n".join(names) + "\n")
        z.writestr("training2017/REFERENCE.csv", "\n".join(f"{n},N" for n in names) + "\n")  # old labels
    v3 = tmp_path / "REFERENCE-v3.csv"
    v3.write_text("\n".join((CINC / "REFERENCE.csv").read_text().splitlines()[:6]) + "\n")
    mirror.add_project("challenge-2017", "1.0.0", {"training2017.zip": zpath, "REFERENCE-v3.csv": v3,
                                                   "sample2017.zip": v3})
    out = tmp_path / "data"
    download("cinc2017", out, base_url=mirror.url, quiet=True)
    ds = Cinc2017(out / "cinc2017/training2017")
    assert ds.num_records() == 6
    ref = {l.split(",")[0]: l.split(",")[1] for l in v3.read_text().split()}
    assert ds.labels == ref
    assert not any("sample2017" in p for p, _ in mirror.requests)


def test_nstdb_download_converts_to_h5(mirror, tmp_path):
    noise = load_noise()
    files = {}
    for name in ("bw", "em", "ma"):
        wfdb.wrsamp(name, fs=360, units=["mV", "mV"], sig_name=["noise1", "noise2"], p_signal=noise[name][:36000].astype(np.float64),
                    fmt=["212", "212"], write_dir=str(tmp_path))
        for ext in (".hea", ".dat"):
            files[f"{name}{ext}"] = tmp_path / f"{name}{ext}"
    mirror.add_project("nstdb", "1.0.0", files)
    out = tmp_path / "data"
    download("nstdb", out, base_url=mirror.url, quiet=True)
    got = load_noise(out / "nstdb" / "nstdb.h5")
    for name in ("bw", "em", "ma"):
        assert got[name].shape == (36000, 2)
        np.testing.assert_allclose(got[name], noise[name][:36000], atol=0.02)


def test_unreachable_mirror(tmp_path):
    proc = run_cli("data", "download", "mitdb", "--out", tmp_path, "--base-url", "http://127.0.0.1:9", "--quiet")
    assert_one_line_error(proc, "127.0.0.1:9", "cannot connect")
