"""One self-contained HTML report (inline PNGs, no network) of a recording or a training run.

A recording: the monitor runs over it; the report shows the rhythm and AF-burden
timeline, ECG strips shaded by predicted (and reference) rhythm, the episode table and,
given reference annotations, the evaluation and a confusion matrix. A run folder: its
validation/test metrics, confusion matrices and training curve. Either report takes a
compression study folder for the Pareto plot.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np

from . import holter_figures as hf
from .datasets.stream import open_stream
from .errors import DataError, TinyRhythmError
from .evaluate.plots import confusion_figure
from .figures import COLOURS, plt as _plt, png as _png, shade as _shade
from .monitor import MonitorConfig, monitor
from .monitor.evaluate import evaluate_episodes, read_reference
from .paths import check_output_file, write_atomic
from .zoo import DEFAULT_RHYTHM_MODEL

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}img{max-width:100%}.legend span{display:inline-block;padding:.1em .5em;margin-right:.4em;color:#fff}
.note{color:#666;font-size:.9em}"""


def _img_file(path: Path) -> str:
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _confusion_fig(cm, classes, title):
    return _png(confusion_figure(cm, classes, title, ylabel="reference"))


def _timeline(result, reference) -> str:
    plt = _plt()
    hours = result.duration_s >= 2 * 3600
    scale, unit = (3600.0, "h") if hours else (60.0, "min")
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    _shade(ax1, result.episodes, 0.5 if reference else 0.0, 1.0, alpha=0.9, scale=scale)
    if reference:
        _shade(ax1, reference, 0.0, 0.45, alpha=0.9, scale=scale)
        ax1.set_yticks([0.25, 0.75], ["reference", "predicted"])
    else:
        ax1.set_yticks([0.5], ["predicted"])
    ax1.set_ylim(0, 1)
    # AF burden in consecutive bins: share of analysed time in AF or flutter.
    bin_s = 3600.0 if hours else 300.0
    edges = np.arange(0, result.duration_s + bin_s, bin_s)
    t = (result.bounds[:-1] + result.bounds[1:]) / 2
    labels = np.array(result.labels)
    idx = np.digitize(t, edges) - 1
    burden = []
    for i in range(len(edges) - 1):
        sel = labels[idx == i]
        read = sel[~np.isin(sel, ["NOISE", "UNREADABLE"])]
        burden.append(np.isin(read, ["AFIB", "AFL"]).mean() if len(read) else np.nan)
    ax2.step(edges[:-1] / scale, np.array(burden) * 100, where="post", color=COLOURS["AFIB"])
    ax2.set_ylim(-2, 102)
    ax2.set_ylabel(f"AF burden %\nper {bin_s / 60:g} min")
    ax2.set_xlabel(f"time ({unit})")
    ax2.set_xlim(0, result.duration_s / scale)
    fig.tight_layout()
    return _png(fig)


def _strip_times(result, n: int = 6, seconds: float = 10.0) -> list[float]:
    """Strip starts: the start of each different kind of episode first, then evenly spread."""
    picks, seen = [], set()
    for e in sorted(result.episodes, key=lambda e: (e.label in seen, -e.duration_s)):
        if e.label not in seen:
            seen.add(e.label)
            picks.append(min(max(0.0, e.start_s + min(30.0, e.duration_s / 2)), max(0.0, result.duration_s - seconds)))
    for t in np.linspace(0, max(0.0, result.duration_s - seconds), n):
        if len(picks) >= n:
            break
        if all(abs(t - p) > seconds for p in picks):
            picks.append(float(t))
    return sorted(picks[:n])


def _strips(result, reference, stream, seconds: float = 10.0) -> str:
    plt = _plt()
    times = _strip_times(result, seconds=seconds)
    fig, axes = plt.subplots(len(times), 1, figsize=(11, 1.7 * len(times)), squeeze=False)
    for ax, t0 in zip(axes[:, 0], times):
        a, b = int(t0 * stream.fs), int((t0 + seconds) * stream.fs)
        x = stream.read(a, b)
        tt = np.arange(a, a + len(x)) / stream.fs
        _shade(ax, result.episodes, 0.12 if reference else 0.0, 1.0, t0=t0, t1=t0 + seconds)
        if reference:
            _shade(ax, reference, 0.0, 0.1, alpha=0.8, t0=t0, t1=t0 + seconds)
        ax.plot(tt, x, color="black", lw=0.6)
        ax.set_xlim(t0, t0 + seconds)
        lab = next((e.label for e in result.episodes if e.start_s <= t0 + seconds / 2 < e.end_s), "")
        h, m, s = int(t0 // 3600), int(t0 % 3600 // 60), t0 % 60
        ax.set_title(f"{h:02d}:{m:02d}:{s:04.1f}  predicted {lab}", fontsize=8, loc="left")
        ax.set_ylabel("mV", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def _legend() -> str:
    return '<p class="legend">' + "".join(f'<span style="background:{c}">{k}</span>' for k, c in COLOURS.items()) + "</p>"


def _page(title: str, sections: list[tuple[str, str, str]]) -> str:
    body = "".join(f'<section id="{sid}"><h2>{html.escape(h)}</h2>{content}</section>' for sid, h, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def _pareto_section(study: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    if not study:
        return []
    png = Path(study) / "pareto.png"
    if not png.is_file():
        raise DataError(study, "not a compression study folder (pareto.png missing; run `tinyrhythm study` first)")
    md = Path(study) / "results.md"
    table = f"<pre>{html.escape(md.read_text())}</pre>" if md.is_file() else ""
    return [("pareto", "Compression study: accuracy against size", _img_file(png) + table)]


def record_report(path, model: str, reference: str | None = None, study=None, fs=None, lead=None, cfg=None,
                  result=None) -> str:
    """The page of one recording; `result`: its MonitorResult when the caller already has it."""
    if result is None:
        result = monitor(path, model, fs=fs, lead=lead, cfg=cfg)
    ref = read_reference(result, reference) if reference else None
    # The strips show what was analysed: with every lead weighed, the lead the beats came from.
    stream = open_stream(path, fs, result.beat_lead, result.config.invert)
    s = result.summary
    # What decided: the reader of a report should know whether the beats were weighed in.
    decided = "network + 30 s RR context" if result.rr_context else "network"
    summary = _table([[result.record, f"{result.duration_s / 3600:.2f} h", f"{result.fs:g} Hz", result.lead or "",
                       result.model, decided, f"{s['af_burden']:.1%}", f"{s['noise_fraction']:.1%}",
                       f"{s['unreadable_fraction']:.1%}"]],
                     ["record", "duration", "rate", "lead", "model", "decided by", "AF burden", "noise", "unreadable"])
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in result.notes)
    holter = result.beats is not None
    sections = [
        ("summary", "Summary", summary + (hf.summary_table(result) if holter else "") + notes
         + '<p class="note">AF burden: share of the analysed time (not noise, not unreadable) in AF or flutter. '
         "Heart rates are minute means of the RR intervals outside noise. Not a medical device.</p>"),
        ("timeline", "Rhythm and AF burden over time", _legend() + _timeline(result, ref)),
    ]
    if holter:
        sections += [
            ("heart-rate", "Heart rate", hf.heart_rate_trend(result)),
            ("rr", "RR intervals", hf.tachogram(result) + hf.poincare(result)
             + '<p class="note">Poincaré plot: each RR interval against the next. Sinus rhythm gathers near the '
             "diagonal (ectopic beats off it in pairs); AF scatters widely.</p>"),
            ("hourly", "AF burden per hour", hf.hourly_bars(result)),
        ]
    sections += [
        ("strips", "ECG strips", _legend() + '<p class="note">Background: predicted rhythm'
         + ("; thin bar at the bottom: reference" if ref else "") + ".</p>" + _strips(result, ref, stream)),
        ("episodes", "Episodes", _table([[e.label, f"{e.start_s:.1f}", f"{e.end_s:.1f}", f"{e.duration_s:.1f}"]
                                         for e in result.episodes], ["label", "start s", "end s", "duration s"])),
    ]
    if ref is not None:
        ev = evaluate_episodes(result, ref)
        rows = [[k, "" if v is None else v] for k, v in ev.items() if k != "confusion"]
        cm = ev["confusion"]
        sections.append(("confusion", "Against the reference annotations", _table(rows, ["figure", "value"])
                         + _confusion_fig(cm["matrix"], cm["classes"], f"{result.record}: decisions per segment")))
    else:
        sections.append(("confusion", "Confusion matrix", '<p class="note">No reference annotations given '
                         "(--reference EXT): nothing to compare with.</p>"))
    sections += _pareto_section(study)
    return _page(f"tinyrhythm: {result.record}", sections)


def run_report(run: Path, study=None) -> str:
    mpath = run / "metrics.json"
    if not mpath.is_file():
        raise DataError(run, "run folder has no metrics.json (training did not finish)")
    m = json.loads(mpath.read_text())
    sections = []
    rows = []
    for split in ("val", "test"):
        r = m.get(split)
        if not r:
            continue
        pcf = r.get("per_class", {})
        rows.append([split, r.get("n"), f"{r.get('macro_f1', float('nan')):.3f}", f"{r.get('cinc_score', float('nan')):.3f}",
                     *[f"{pcf[c]['f1']:.3f}" for c in r["classes"]]])
    classes = (m.get("test") or m.get("val") or {}).get("classes", [])
    sections.append(("summary", "Summary", _table([[m.get("model"), m.get("task"), m.get("params_table"), m.get("macs"),
                                                   m.get("epochs_run")]], ["model", "task", "params", "MACs", "epochs"])
                     + _table(rows, ["split", "n", "macro F1", "CinC score", *[f"F1 {c}" for c in classes]])))
    figs = "".join(_confusion_fig(m[s]["confusion_matrix"], m[s]["classes"], f"{run.name} {s} ({m[s].get('level', '')}s)")
                   for s in ("val", "test") if m.get(s))
    sections.append(("confusion", "Confusion matrices", figs))
    hpath = run / "history.json"
    if hpath.is_file():
        plt = _plt()
        h = json.loads(hpath.read_text())
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.plot([e["epoch"] for e in h], [e["val_macro_f1"] for e in h], label="val macro F1")
        ax.plot([e["epoch"] for e in h], [e["val_cinc_score"] for e in h], label="val CinC score")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        fig.tight_layout()
        sections.append(("timeline", "Training", _png(fig)))
    sections += _pareto_section(study)
    return _page(f"tinyrhythm run: {run.name}", sections)


def report(target: str | os.PathLike, out: str | os.PathLike, model: str = DEFAULT_RHYTHM_MODEL, reference: str | None = None,
           study=None, fs=None, lead=None, invert: bool = False, rr_context: bool = True) -> Path:
    check_output_file(out)  # before the work, not after it
    p = Path(target)
    if p.is_dir() and (p / "config.json").is_file():
        page = run_report(p, study)
    elif p.is_dir():
        raise DataError(p, "neither a run folder (config.json) nor a recording")
    else:
        page = record_report(p, model, reference, study, fs, lead, cfg=MonitorConfig(invert=invert, rr_context=rr_context))
    return write_page(page, out)


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def print_pdf(page: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Print an HTML report to PDF with headless Chromium (the page as a browser shows it)."""
    import shutil
    import subprocess
    import tempfile

    page = Path(page)
    out = Path(out) if out else page.with_suffix(".pdf")
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        raise TinyRhythmError("--pdf needs Chromium on PATH (Debian: apt-get install chromium); the HTML report was written")
    tmp = out.with_name(out.name + ".tmp")
    with tempfile.TemporaryDirectory(prefix="tinyrhythm-chromium-") as profile:
        # No network, no user profile: a report page needs neither.
        proc = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
                               f"--print-to-pdf={tmp}", page.resolve().as_uri()], capture_output=True, text=True,
                              timeout=300)
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise TinyRhythmError(f"{out}: Chromium could not print the report (exit {proc.returncode})")
    os.replace(tmp, out)
    return out


def write_page(page: str, out: str | os.PathLike) -> Path:
    """Write an HTML page atomically: a reader never sees half a report."""
    out = check_output_file(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, page)
