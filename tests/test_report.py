"""`tinyrhythm report`: a self-contained HTML page, rendered by a real browser (headless Chromium)."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import CINC, assert_one_line_error, run_cli
from tinyrhythm.datasets.concat import cinc_episode_recording

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTIONS = ("summary", "timeline", "heart-rate", "rr", "hourly", "strips", "episodes", "confusion", "pareto")


def render(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    # The flags keep Chromium off the (closed) network and out of any user profile.
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={tmp / 'chromium-profile'}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def record_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    rec = cinc_episode_recording(tmp, "test", minutes=15, seed=5, root=CINC)
    study = tmp / "study"
    study.mkdir()
    shutil.copyfile(ROOT / "docs" / "compression-pareto.png", study / "pareto.png")  # the real study's figure
    out = tmp / "r" / "report.html"
    proc = run_cli("report", rec, "--reference", "atr", "--study", study, "--out", out, check=0)
    assert str(out) in proc.stdout
    return out


def test_report_is_self_contained_with_all_sections(record_report):
    page = record_report.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    # Nothing fetched from anywhere: every image is inline, no scripts, no external links.
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    # timeline, heart rate, tachogram, Poincaré, hourly burden, strips, confusion, Pareto
    assert page.count('src="data:image/png;base64,') == 8
    assert "episode_sensitivity" in page and "AF burden" in page
    assert "network + 30 s RR context" in page  # the default model's card carries the RR context
    for figure in ("heart rate, minimum (minute mean)", "ventricular rate in AF", "pauses (RR &gt; 2 s)",
                   "longest AF/flutter episode", "Poincaré plot"):
        assert figure in page, figure


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run installs Debian's chromium)")
def test_report_pdf_prints_the_page(tmp_path):
    from tinyrhythm import samples

    out = tmp_path / "r" / "sample.html"
    proc = run_cli("report", samples.path(), "--reference", "atr", "--out", out, "--pdf", check=0)
    pdf = out.with_suffix(".pdf")
    assert f"wrote {pdf}" in proc.stdout
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.count(b"/Type /Page") >= 2 or data.count(b"/Type/Page") >= 2
    assert len(data) > 50_000 and not list(out.parent.glob("*.tmp"))


def test_report_pdf_without_chromium_is_one_line(tmp_path):
    from tinyrhythm import samples

    proc = run_cli("report", samples.path(), "--out", tmp_path / "r.html", "--pdf", env={"PATH": "/nonexistent"})
    assert_one_line_error(proc, "Chromium")
    assert (tmp_path / "r.html").is_file() and not (tmp_path / "r.pdf").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(record_report, tmp_path):
    dom = render(record_report, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom.stdout
    shot = tmp_path / "shot.png"
    proc = render(record_report, tmp_path, "--window-size=1200,3000", f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    import matplotlib.image

    img = matplotlib.image.imread(shot)[..., :3]
    assert img.shape[:2] == (3000, 1200)
    assert img.std() > 0.1  # not a blank page
    not_white = (img < 0.95).any(-1).mean()
    assert not_white > 0.1, not_white
    # The rhythm shading is drawn: AF red and normal green are both on the page.
    red = ((img[..., 0] > 0.8) & (img[..., 1] < 0.35) & (img[..., 2] < 0.35)).sum()
    green = ((img[..., 1] > 0.6) & (img[..., 0] < 0.45) & (img[..., 2] < 0.45)).sum()
    assert red > 500 and green > 500, (red, green)


def test_run_report_and_bad_targets(trained_run, tmp_path):
    run, _ = trained_run
    out = tmp_path / "run.html"
    run_cli("report", run, "--out", out, check=0)
    page = out.read_text()
    assert '<section id="confusion">' in page and "macro F1" in page
    assert_one_line_error(run_cli("report", tmp_path, "--out", tmp_path / "x.html"), str(tmp_path), "neither a run folder")
    assert_one_line_error(run_cli("report", run, "--study", tmp_path, "--out", tmp_path / "y.html"),
                          "pareto.png missing")
    assert not (tmp_path / "y.html").exists()
    np.save(tmp_path / "s.npy", np.zeros(10))
    assert_one_line_error(run_cli("report", tmp_path / "s.npy", "--out", tmp_path / "z.html"), "--fs")

