"""Figures shared by the HTML reports: matplotlib off-screen, PNGs inlined, rhythm colours."""

from __future__ import annotations

import base64
import io

COLOURS = {"N": "#4caf50", "AFIB": "#e53935", "AFL": "#fb8c00", "OTHER": "#8e24aa", "NOISE": "#9e9e9e",
           "UNREADABLE": "#424242"}


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt().close(fig)
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def shade(ax, episodes, y0, y1, alpha=0.25, t0=None, t1=None, scale=1.0):
    for e in episodes:
        a, b = e.start_s, e.end_s
        if t0 is not None and (b <= t0 or a >= t1):
            continue
        if t0 is not None:
            a, b = max(a, t0), min(b, t1)
        ax.axvspan(a / scale, b / scale, ymin=y0, ymax=y1, color=COLOURS.get(e.label, "#999"), alpha=alpha, lw=0)
