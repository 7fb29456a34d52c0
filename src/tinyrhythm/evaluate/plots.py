"""Figures: confusion matrix as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..paths import write_atomic


def confusion_figure(cm: list[list[int]], classes: list[str], title: str = "", ylabel: str = "true"):
    """A matplotlib figure of the matrix: counts and row-normalised shares per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5), dpi=120)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel(ylabel)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def confusion_png(cm: list[list[int]], classes: list[str], path: str | os.PathLike, title: str = "") -> Path:
    import matplotlib.pyplot as plt

    fig = confusion_figure(cm, classes, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
