"""`tinyrhythm study CONFIG`: a grid of compression runs from one file, a results table and a Pareto plot.

A study file (JSON) lists cells, or grids that expand into cells:

    {"out": "runs/study", "reference": "cnn5",
     "cells": [{"name": "cnn3", "kind": "baseline", "model": "cnn3"},
               {"name": "cnn3-kd-T4-a0.5-s0", "kind": "distill", "teacher": "cnn5", "student": "cnn3",
                "temperature": 4, "alpha": 0.5, "seed": 0, "config": "configs/cinc2017.json"}],
     "grids": [{"kind": "prune", "parent": ["cnn3"], "method": ["magnitude"], "scope": ["layer", "global"],
                "sparsity": [0.5, 0.9], "name": "{parent}-{method}-{scope}-{sparsity}"}]}

A parent written "@name" is the run folder of the cell called name, which is how pipelines
(distill -> prune -> QAT -> int8) are written. A cell whose folder holds metrics.json is
finished and is not run again, so a killed study resumes where it stopped.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
import json
import os
import sys
from pathlib import Path

import torch

from ..errors import TinyRhythmError
from ..evaluate.scoring import score_split
from ..models import count_macs, describe, from_config
from ..runtime import load_model
from ..train import TrainConfig, train
from ..train.config import training_store
from ..paths import write_atomic, write_json_atomic
from .prune import PruneConfig, prune
from .quantize import QuantizeConfig, quantize, torch_latency_ms

KINDS = ("baseline", "distill", "prune", "quantize")


def load_study(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        study = json.loads(path.read_text())
    except FileNotFoundError:
        raise TinyRhythmError(f"{path}: study file not found") from None
    except json.JSONDecodeError as exc:
        raise TinyRhythmError(f"{path}: not valid JSON ({exc})") from None
    cells = list(study.get("cells", []))
    for grid in study.get("grids", []):
        grid = dict(grid)
        pattern = grid.pop("name")
        keys = list(grid)
        values = [v if isinstance(v, list) else [v] for v in grid.values()]
        for combo in itertools.product(*values):
            cell = dict(zip(keys, combo))
            cell["name"] = pattern.format(**{k: str(v).lstrip("@") for k, v in cell.items()})
            cells.append(cell)
    names = [c.get("name") for c in cells]
    for c in cells:
        if c.get("kind") not in KINDS:
            raise TinyRhythmError(f"{path}: cell {c.get('name')!r} has unknown kind {c.get('kind')!r} (known: {', '.join(KINDS)})")
        if not c.get("name"):
            raise TinyRhythmError(f"{path}: every cell needs a name")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise TinyRhythmError(f"{path}: duplicate cell names: {', '.join(sorted(dupes))}")
    study["cells"] = cells
    study.setdefault("out", "runs/study")
    return study


def _resolve(ref: str, out: Path) -> str:
    return str(out / ref[1:]) if ref.startswith("@") else ref


def run_cell(cell: dict, out: Path, store: str | None, quiet: bool) -> None:
    folder = out / cell["name"]
    kind = cell["kind"]
    opts = {k: v for k, v in cell.items() if k not in ("name", "kind", "parent", "model", "store")}
    cell_store = cell.get("store", store)
    if kind == "baseline":
        _baseline(_resolve(cell["model"], out), folder, cell_store)
    elif kind == "distill":
        tcfg = TrainConfig.from_file(opts.pop("config")) if "config" in opts else TrainConfig()
        tcfg.model, tcfg.teacher = opts.pop("student"), _resolve(opts.pop("teacher"), out)
        tcfg.kd_temperature = float(opts.pop("temperature", tcfg.kd_temperature))
        tcfg.kd_alpha = float(opts.pop("alpha", tcfg.kd_alpha))
        for k, v in opts.items():
            if not hasattr(tcfg, k):
                raise TinyRhythmError(f"cell {cell['name']}: unknown setting {k!r}")
            setattr(tcfg, k, v)
        if cell_store:
            tcfg.store = cell_store
        resume = (folder / "checkpoint.pt").is_file()
        train(tcfg, folder, resume=resume, quiet=quiet)
    elif kind == "prune":
        prune(_resolve(cell["parent"], out), folder, PruneConfig(**opts), store=cell_store, quiet=quiet, force=True)
    elif kind == "quantize":
        quantize(_resolve(cell["parent"], out), folder, QuantizeConfig(**opts), store=cell_store, quiet=quiet, force=True)


def _baseline(model: str, folder: Path, store: str | None) -> None:
    """Metrics of an uncompressed float model, in the same form as the compressed cells."""
    lm = load_model(model)
    ws = training_store(lm, store)
    cpu = torch.device("cpu")
    params = sum(p.numel() for p in lm.model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "metrics.json", {
        "parent": model, "method": "float32", "params": params, "nonzero_params": params, "dense_bytes": 4 * params,
        "macs": count_macs(lm.model), "latency_ms": round(torch_latency_ms(lm.model, lm.input_length), 4),
        "val": score_split(lm.model, ws, "val", cpu), "test": score_split(lm.model, ws, "test", cpu)})


def cell_row(cell: dict, out: Path, reference_bytes: int) -> dict | None:
    path = out / cell["name"] / "metrics.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    kind = cell["kind"]
    if kind == "quantize":
        nbytes, nonzero = m["weight_bytes"], None
    elif kind == "prune":
        nbytes = m["sparse_bytes"] if m["method"] != "channel" else m["dense_bytes"]
        nonzero = m["nonzero_params"]
    elif kind == "distill":
        cfg = json.loads((out / cell["name"] / "config.json").read_text())
        model = from_config(cfg["model"])
        nonzero = sum(p.numel() for p in model.parameters())
        nbytes = 4 * nonzero
        m.setdefault("latency_ms", None)
    else:
        nbytes, nonzero = m["dense_bytes"], m["nonzero_params"]
    test, val = m["test"], m["val"]
    parent_test = m.get("parent_test")
    row = {
        "name": cell["name"], "kind": kind, "method": m.get("method") or (f"kd T={cell.get('temperature')} a={cell.get('alpha')}" if kind == "distill" else ""),
        "parent": cell.get("parent") or cell.get("teacher") or cell.get("model", ""),
        "nonzero_params": nonzero, "bytes": nbytes, "ratio_vs_cnn5_fp32": round(reference_bytes / nbytes, 2) if nbytes else None,
        "macs": m.get("macs") if kind != "prune" or m["method"] == "channel" else m.get("sparse_macs"),
        "latency_ms": m.get("latency_ms"),
        "val_macro_f1": val["macro_f1"], "test_macro_f1": test["macro_f1"],
        "test_cinc": test.get("cinc_score"), "test_af_f1": test.get("af_f1"),
        "delta_cinc_vs_parent": round(test["cinc_score"] - parent_test["cinc_score"], 4) if parent_test and "cinc_score" in test else None,
        "sqnr_db": (m.get("fidelity_val") or {}).get("sqnr_db"),
        "argmax_agreement": (m.get("fidelity_val") or {}).get("argmax_agreement"),
    }
    return row


def results(study: dict) -> list[dict]:
    out = Path(study["out"])
    ref = describe(study.get("reference", "cnn5"), num_classes=int(study.get("num_classes", 4)))["float32_bytes"]
    rows = [cell_row(c, out, ref) for c in study["cells"]]
    return [r for r in rows if r]


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_tables(rows: list[dict], out: Path) -> None:
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    _write_text(out / "results.csv", buf.getvalue())
    cols = list(rows[0])
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    _write_text(out / "results.md", "\n".join(md) + "\n")


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


def pareto_png(rows: list[dict], path: Path) -> None:
    """Bytes against test macro F1 and CinC score; the Pareto front (no cell both smaller and better) joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    colors = {"baseline": "black", "distill": "tab:blue", "prune": "tab:green", "quantize": "tab:red"}
    for ax, key, label in ((axes[0], "test_macro_f1", "test macro F1"), (axes[1], "test_cinc", "test CinC score")):
        pts = [(r["bytes"], r[key], r) for r in rows if r["bytes"] and r[key] is not None]
        for b, v, r in pts:
            ax.scatter(b, v, color=colors[r["kind"]], s=25)
            ax.annotate(r["name"], (b, v), fontsize=6, alpha=0.7)
        front, best = [], -1.0
        for b, v, _ in sorted(pts, key=lambda p: (p[0], -p[1])):
            if v > best:
                front.append((b, v))
                best = v
        if front:
            ax.step(*zip(*front), where="post", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("weight bytes (log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for kind, c in colors.items():
        axes[0].scatter([], [], color=c, label=kind)
    axes[0].legend(loc="lower right")
    fig.suptitle("Compression study: size against quality (CinC 2017 test split)")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def run_study(path: str | os.PathLike, only: list[str] | None = None, quiet: bool = False, dry_run: bool = False) -> list[dict]:
    study = load_study(path)
    out = Path(study["out"])
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "study.json", study)
    for cell in study["cells"]:
        if only and not any(fnmatch.fnmatchcase(cell["name"], pat) for pat in only):
            continue
        if (out / cell["name"] / "metrics.json").is_file():
            continue
        waiting = [r[1:] for r in (cell.get("parent"), cell.get("teacher"), cell.get("model"))
                   if isinstance(r, str) and r.startswith("@") and not (out / r[1:] / "metrics.json").is_file()]
        if waiting:  # a pipeline step whose parent has not run (yet): the next run of the study picks it up
            print(f"study: skipping {cell['name']}: waiting for {', '.join(waiting)}", file=sys.stderr)
            continue
        if dry_run:
            print(f"would run {cell['name']}", file=sys.stderr)
            continue
        if not quiet:
            print(f"study: running {cell['name']}", file=sys.stderr, flush=True)
        run_cell(cell, out, study.get("store"), quiet)
    rows = results(study)
    write_tables(rows, out)
    if rows:
        pareto_png(rows, out / "pareto.png")
    return rows
