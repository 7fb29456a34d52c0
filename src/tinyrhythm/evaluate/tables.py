"""The README's result tables, as Markdown, from run folders: `tinyrhythm runs table`.

Three kinds, chosen from what the folders hold: `training` (runs grouped by model and input
rate; several seeds as mean ± sample std), `rhythm` (per-dataset window and long-record
figures from each run's cross_dataset.json, leave-one-dataset-out rows and the noise stress
test), `compression` (a finished study's results.csv). Every figure is read from files the
runs wrote; nothing is measured here.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DataError, TinyRhythmError
from ..models import describe
from ..runtime.card import read_json

def _read(path: Path) -> dict:
    return read_json(path, path.name)


KINDS = ("auto", "training", "rhythm", "compression")
RHYTHM_DATASETS = ("mitdb", "aftdb", "afpdb", "cinc2017", "nstdb", "mitdb+cpsc2021+aftdb", "all")
HOLTER = ("aftdb", "afpdb", "cpsc2021", "icentia11k")
MODEL_ORDER = ["cnn1", "cnn2", "cnn3", "cnn3-gap", "cnn4", "cnn5", "teacher"]


def _mean_std(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _f(v, nd: int = 3) -> str:
    return "" if v is None else f"{v:.{nd}f}"


def training_table(paths: list[Path]) -> str:
    """Runs (or folders of runs) grouped by model and input rate."""
    groups = defaultdict(list)
    for p in paths:
        for m in sorted([p / "metrics.json"] if (p / "metrics.json").is_file() else p.glob("*/metrics.json")):
            cfg = _read(m.parent / "config.json")
            groups[(cfg["model"]["name"], cfg["fs"])].append((cfg, _read(m)))
    if not groups:
        raise TinyRhythmError(f"no finished runs (metrics.json) in {', '.join(map(str, paths))}")
    order = sorted(groups, key=lambda k: (MODEL_ORDER.index(k[0]) if k[0] in MODEL_ORDER else 99, k[0], k[1]))
    lines = ["| model | input | params (table) | MACs/window | float32 KB | val macro F1 | test macro F1 | test CinC score "
             "| test AF F1 | train time (1 thread) | seeds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in order:
        rows = groups[key]
        name, fs = key
        cfg0, m0 = rows[0]
        kb = describe(name, len(cfg0["classes"]), cfg0["input_length"])["float32_bytes"] / 1024
        cinc = [r[1]["test"].get("cinc_score") for r in rows]
        lines.append(f"| {name} | {cfg0['input_length']} @ {fs:g} Hz | {m0['params_table']:,} | {m0['macs']:,} | {kb:.1f} "
                     f"| {_mean_std([r[1]['val']['macro_f1'] for r in rows])} "
                     f"| {_mean_std([r[1]['test']['macro_f1'] for r in rows])} "
                     f"| {_mean_std(cinc) if None not in cinc else ''} "
                     f"| {_mean_std([r[1]['test']['af_f1'] for r in rows])} "
                     f"| {np.mean([r[1]['train_seconds'] for r in rows]) / 60:.0f} min | {len(rows)} |")
    classes = list(rows[0][0]["classes"])
    lines += ["", "| model | input | " + " | ".join(f"test F1 {c}" for c in classes) + " | test accuracy |",
              "|---|---|" + "---|" * (len(classes) + 1)]
    for key in order:
        rows = groups[key]
        per = [_mean_std([r[1]["test"]["per_class"][c]["f1"] for r in rows]) if c in rows[0][1]["test"]["per_class"]
               else "" for c in classes]
        lines.append(f"| {key[0]} | {rows[0][0]['input_length']} @ {key[1]:g} Hz | {' | '.join(per)} "
                     f"| {_mean_std([r[1]['test']['accuracy'] for r in rows])} |")
    return "\n".join(lines)


def rhythm_tables(paths: list[Path], lodo: dict[str, Path] | None = None) -> str:
    """Per-dataset window rows, long-record rows, leave-one-dataset-out rows and the stress test."""
    crosses = {p.name: _read(p / "cross_dataset.json") for p in paths}
    out = ["| model | test patients of | AF F1 (windows) | normal F1 | noise F1 | windows |", "|---|---|---|---|---|---|"]
    for name, c in crosses.items():
        for ds in RHYTHM_DATASETS:
            r = c["window"].get(ds)
            if not r:
                continue
            pc = r["per_class"]
            cell = lambda k: f"{pc[k]['f1']:.3f} ({pc[k]['support']:,})" if pc[k]["support"] else "–"  # noqa: E731
            out.append(f"| {name} | {ds} | {cell('arrhythmia')} | {cell('normal')} | {cell('noise')} | {r['n']:,} |")
    out += ["", "| model | long records | records | hours | per-second AF F1 | episode Se | episode PPV "
                "| mean abs AF-burden error | false AF min/h |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in crosses.items():
        for ds, r in c.get("long", {}).items():
            out.append(f"| {name} | {ds} | {r['records']} | {r['hours']} | {_f(r['af_f1_per_second'])} | "
                       f"{_f(r['episode_sensitivity'])} | {_f(r['episode_ppv'])} | {_f(r['mean_abs_burden_error'])} | "
                       f"{_f(r['false_af_min_per_hour'], 2)} |")
    if lodo:
        out += ["", "| held out | trained on | tested on (test patients) | AF F1 | normal F1 | noise F1 "
                    "| same cell, all datasets in training (rhythm-cnn3) |", "|---|---|---|---|---|---|---|"]
        ref = crosses.get("rhythm-cnn3")
        for held, run in lodo.items():
            c, cfg = _read(run / "cross_dataset.json"), _read(run / "config.json")["train"]
            for ds in HOLTER if held == "holter" else (held,):
                r = c["window"].get(ds)
                if not r:
                    continue
                cell = lambda p, k: f"{p[k]['f1']:.3f}" if p[k]["support"] else "–"  # noqa: E731
                base = ref["window"].get(ds) if ref else None
                b = (f"AF {cell(base['per_class'], 'arrhythmia')}, normal {cell(base['per_class'], 'normal')}, "
                     f"noise {cell(base['per_class'], 'noise')}") if base else ""
                pc = r["per_class"]
                out.append(f"| {held} | {', '.join(cfg['datasets'])} | {ds} | {cell(pc, 'arrhythmia')} | "
                           f"{cell(pc, 'normal')} | {cell(pc, 'noise')} | {b} |")
    stressed = [(n, c["stress"]) for n, c in crosses.items() if c.get("stress")]
    if stressed:
        name, stress = stressed[0]
        out += ["", f"Noise stress test ({name}):", "", "| noise | SNR dB | AF Se (per second) | AF PPV | false AF min/h |",
                "|---|---|---|---|---|"]
        for key, r in sorted(stress.items(), key=lambda kv: kv[0] != "clean"):  # the clean row first
            kind, snr = ("none", "–") if key == "clean" else key.split("_")
            out.append(f"| {kind} | {snr} | {_f(r['af_sensitivity'])} | {_f(r['af_ppv'])} | "
                       f"{_f(r['false_af_min_per_hour'], 2)} |")
    return "\n".join(out)


def _cell(v: str, kind: str = "") -> str:
    if v in ("", None):
        return ""
    x = float(v)
    return {"int": f"{int(x):,}", "delta": f"{x:+.3f}", "ratio": f"{x:.1f}x"}.get(kind, f"{x:.3f}")


def compression_table(study: Path, latency=None) -> str:
    """A finished study's results.csv; `latency(cell_folder, parent)` re-times each cell when given."""
    path = study / "results.csv"
    if not path.is_file():
        raise DataError(path, "missing: not a finished compression study")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = ["| cell | kind | method | nonzero params | bytes | vs float32 CNN5 | MACs | ms/window | val macro F1 "
           "| test macro F1 | test CinC | test AF F1 | CinC vs parent | SQNR dB | argmax agreement |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = f"{latency(study / r['name'], r['parent']):.3f}" if latency else _cell(r["latency_ms"])
        agree = f"{float(r['argmax_agreement']):.1%}" if r["argmax_agreement"] else ""
        out.append(f"| {r['name']} | {r['kind']} | {r['method']} | {_cell(r['nonzero_params'], 'int')} "
                   f"| {_cell(r['bytes'], 'int')} | {_cell(r['ratio_vs_cnn5_fp32'], 'ratio')} | {_cell(r['macs'], 'int')} "
                   f"| {ms} | {_cell(r['val_macro_f1'])} | {_cell(r['test_macro_f1'])} | {_cell(r['test_cinc'])} "
                   f"| {_cell(r['test_af_f1'])} | {_cell(r['delta_cinc_vs_parent'], 'delta')} | {r['sqnr_db']} | {agree} |")
    return "\n".join(out)


def runs_table(paths: list[str], kind: str = "auto", lodo: dict[str, str] | None = None) -> str:
    """The table `kind` makes of these folders; `auto`: compression for a study folder
    (results.csv), rhythm where every run has cross_dataset.json, else training."""
    if kind not in KINDS:
        raise TinyRhythmError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    ps = [Path(p) for p in paths]
    for p in ps:
        if not p.is_dir():
            raise DataError(p, "not a folder of runs")
    if kind == "auto":
        if len(ps) == 1 and (ps[0] / "results.csv").is_file():
            kind = "compression"
        elif all((p / "cross_dataset.json").is_file() for p in ps):
            kind = "rhythm"
        else:
            kind = "training"
    if kind == "compression":
        return "\n\n".join(compression_table(p) for p in ps)
    if kind == "rhythm":
        return rhythm_tables(ps, {k: Path(v) for k, v in (lodo or {}).items()})
    return training_table(ps)
