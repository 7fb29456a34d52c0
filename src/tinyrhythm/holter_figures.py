"""The Holter pictures of a recording's report: summary table, heart-rate trend with AF
shaded, RR tachogram, Poincaré plot (RR_n against RR_n+1, AF and non-AF coloured: AF's
irregularity is the cloud, sinus rhythm the comet), hourly AF burden."""

from __future__ import annotations

import html

import numpy as np

from .figures import COLOURS, plt, png, shade
from .monitor.episodes import AF_LABELS

NON_AF = "#3f51b5"


def _time_axis(result) -> tuple[float, str]:
    return (3600.0, "h") if result.duration_s >= 2 * 3600 else (60.0, "min")


def _fmt(v, unit: str = "", digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}{unit}"


def summary_rows(result) -> list[list[str]]:
    """[figure, value, when] rows of the Holter summary (monitor.holter)."""
    h, s = result.holter(), result.summary

    def when(t, c):
        if t is None:
            return ""
        hh, mm, ss = int(t // 3600), int(t % 3600 // 60), int(t % 60)
        return f"{hh:02d}:{mm:02d}:{ss:02d} from start" + (f" ({c})" if c else "")

    hr, af, p = h["heart_rate"] or {}, h["af_ventricular_rate"] or {}, h["pauses"]
    return [
        ["AF burden (of analysed time)", f"{s['af_burden']:.1%}", ""],
        ["longest AF/flutter episode", f"{h['longest_af_episode_s']:.0f} s", ""],
        ["heart rate, minimum (minute mean)", _fmt(hr.get("min_bpm"), " bpm"), when(hr.get("min_time_s"), hr.get("min_clock"))],
        ["heart rate, mean", _fmt(hr.get("mean_bpm"), " bpm"), ""],
        ["heart rate, maximum (minute mean)", _fmt(hr.get("max_bpm"), " bpm"), when(hr.get("max_time_s"), hr.get("max_clock"))],
        ["ventricular rate in AF, mean / max", f"{_fmt(af.get('mean_bpm'), ' bpm')} / {_fmt(af.get('max_bpm'), ' bpm')}", ""],
        [f"pauses (RR > {p['threshold_s']:g} s)", str(p["count"]),
         f"longest {p['longest_s']:.2f} s at " + when(p["longest_time_s"], p["longest_clock"]) if p["count"] else ""],
        ["beats detected", str(h["beats"]), ""],
        ["analysed / noise / unreadable", f"{s['analysed_s'] / 3600:.2f} h / {s['noise_fraction']:.1%} / "
         f"{s['unreadable_fraction']:.1%}", ""],
    ]


def summary_table(result) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in summary_rows(result))
    return f'<table class="holter"><tr><th>figure</th><th>value</th><th>when</th></tr>{rows}</table>'


def heart_rate_trend(result) -> str:
    r = result.rr
    scale, unit = _time_axis(result)
    fig, ax = plt().subplots(figsize=(11, 2.6))
    shade(ax, [e for e in result.episodes if e.label in AF_LABELS], 0, 1, alpha=0.2, scale=scale)
    v = r["valid"]
    if v.any():
        t, bpm = r["time_s"][v], 60.0 / r["rr_s"][v]
        minute = (t // 60).astype(int)
        n = np.bincount(minute)
        ok = n > 0
        mean = np.bincount(minute, weights=bpm)[ok] / n[ok]
        ax.plot((np.flatnonzero(ok) * 60 + 30) / scale, mean, color="black", lw=0.9, label="minute mean")
    ax.set_ylabel("heart rate (bpm)")
    ax.set_xlabel(f"time ({unit}); AF and flutter shaded")
    ax.set_xlim(0, result.duration_s / scale)
    fig.tight_layout()
    return png(fig)


def tachogram(result) -> str:
    r = result.rr
    scale, unit = _time_axis(result)
    fig, ax = plt().subplots(figsize=(11, 2.6))
    v = r["valid"]
    for mask, colour, label in ((v & ~r["af"], NON_AF, "not AF"), (v & r["af"], COLOURS["AFIB"], "AF / flutter")):
        ax.plot(r["time_s"][mask] / scale, r["rr_s"][mask], ".", ms=1.5, color=colour, label=label)
    ax.set_ylabel("RR (s)")
    ax.set_xlabel(f"time ({unit})")
    ax.set_xlim(0, result.duration_s / scale)
    ax.legend(fontsize=8, markerscale=6, loc="upper right")
    fig.tight_layout()
    return png(fig)


def poincare(result) -> str:
    r = result.rr
    both = r["valid"][:-1] & r["valid"][1:]
    x, y = r["rr_s"][:-1][both], r["rr_s"][1:][both]
    af = (r["af"][:-1] & r["af"][1:])[both]
    fig, ax = plt().subplots(figsize=(4.6, 4.4))
    for mask, colour, label in ((~af, NON_AF, "not AF"), (af, COLOURS["AFIB"], "AF / flutter")):
        ax.plot(x[mask], y[mask], ".", ms=2, alpha=0.5, color=colour, label=f"{label} ({int(mask.sum())})")
    hi = float(np.percentile(np.concatenate([x, y]), 99.5)) * 1.1 if len(x) else 2.0
    ax.plot([0, hi], [0, hi], color="#999", lw=0.6)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("RR$_n$ (s)")
    ax.set_ylabel("RR$_{n+1}$ (s)")
    ax.legend(fontsize=8, markerscale=5)
    fig.tight_layout()
    return png(fig)


def hourly_bars(result) -> str:
    rows = result.holter()["hourly"]
    fig, ax = plt().subplots(figsize=(11, 2.4))
    burden = [np.nan if r["af_burden"] is None else 100 * r["af_burden"] for r in rows]
    ax.bar([r["hour"] for r in rows], burden, width=0.8, color=COLOURS["AFIB"])
    ax.set_ylim(0, 100)
    ax.set_ylabel("AF burden %")
    clocks = [r["start_clock"] for r in rows]
    ax.set_xticks([r["hour"] for r in rows],
                  [c[-8:-3] if c else str(r["hour"]) for r, c in zip(rows, clocks)], fontsize=7)
    ax.set_xlabel("hour (clock time where the file gives a start)" if any(clocks) else "hour from start")
    fig.tight_layout()
    return png(fig)
