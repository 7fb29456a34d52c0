"""Cross-dataset evaluation of a rhythm3 model on the test patients of every source.

    python scripts/cross_dataset.py MODEL [--store DIR] [--out results.json] [--stress] [--beats neurokit|c]

1. Window level, per dataset, on the store's test split: macro F1, per-class F1 (AF first).
2. Long records (MITDB, CPSC 2021, AFTDB, AFPDB test patients, lead 0): `monitor` on the
   whole record against the reference rhythm (the reader's zones), pooled over records:
   per-second AF F1, episode sensitivity/PPV, mean |AF-burden error|, false-AF minutes per
   hour of non-AF rhythm.
3. The issue's window-level AF pool (MITDB + AFTDB test windows) with each window labelled by
   `monitor` on its whole record: AF F1 after the RR context and the smoothing.
4. --stress: the EC57 noise stress test, MITDB (and AFTDB) test records with NSTDB 'em'
   and 'ma' noise added at SNR 24, 18, 12, 6, 0, -6 dB (noise scaled to the record's signal
   power), AF sensitivity/PPV per SNR (per second, pooled), plus the clean records.
Nothing here is used to choose a model: selection happens on validation data in training.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score

from tinyrhythm.datasets import DATASETS, load_noise, open_dataset
from tinyrhythm.datasets.nstdb import FS as NSTDB_FS
from tinyrhythm.runtime import load_model
from tinyrhythm.monitor.analyse import MonitorConfig, monitor
from tinyrhythm.monitor.episodes import AFIB, class_rhythms
from tinyrhythm.monitor.evaluate import evaluate_episodes, reference_episodes
from tinyrhythm.evaluate.scoring import dataset_reports, predict_proba
from tinyrhythm.windows.resample import resample
from tinyrhythm.datasets.split import assign_split
from tinyrhythm.datasets.wfdb_rhythm import WfdbRhythmDatabase
from tinyrhythm.windows.store import WindowStore

LONG = ("mitdb", "cpsc2021", "aftdb", "afpdb")
SNRS = (24, 18, 12, 6, 0, -6)


def rhythm_store() -> WindowStore:
    """The store `configs/rhythm.json` builds: every source's windows (built in the cache on first use)."""
    from tinyrhythm.train.config import TrainConfig
    from tinyrhythm.windows.cache import ensure_store

    return ensure_store(TrainConfig.from_file(Path(__file__).parents[1] / "configs" / "rhythm.json").store_config(),
                        quiet=True)


def window_level(lm, store: WindowStore) -> dict:
    idx = store.indices("test")
    pred = predict_proba(lm.model, store, idx, "cpu").argmax(1)
    # The target pools the Holter AF sources.
    return dataset_reports(store, idx, pred, {"mitdb+cpsc2021+aftdb": ("mitdb", "cpsc2021", "aftdb")})


def monitor_windows(lm, store: WindowStore, results: dict, datasets=("mitdb", "aftdb")) -> dict:
    """AF F1 of the test windows of the issue's target pool (CPSC 2021 has no test patient) with
    each window labelled as `monitor` labelled its centre on the whole record (`results`, by
    (dataset, record) from long_records): what a clinician reads, at window granularity, after
    the RR context and the smoothing."""
    ds, names = store.dataset_index()
    idx, keys, rec, starts = store.indices("test"), store.record_keys(), store.record_names(), store.starts()
    af_class = class_rhythms(lm.task, list(lm.classes)).index(AFIB)
    y, af = [], []
    for name in datasets:
        sel = idx[np.array(names)[ds[idx]] == name]
        base = np.array([rec[keys[i]].split(":")[0] for i in sel])
        for (dataset, record), res in results.items():
            w = sel[base == record]
            if dataset != name or not len(w):
                continue
            k = np.searchsorted(res.bounds, (starts[w] + store.window_length / 2) / store.fs, "right") - 1
            af.append(np.array(res.labels)[np.clip(k, 0, len(res.labels) - 1)] == AFIB)
            y.append(store.labels[w] == af_class)
    y, af = np.concatenate(y), np.concatenate(af)
    return {"pool": "+".join(datasets), "windows": int(len(y)), "af_windows": int(y.sum()),
            "af_f1": round(float(f1_score(y, af)), 4), "af_recall": round(float(af[y].mean()), 4),
            "af_precision": round(float(y[af].mean()), 4) if af.any() else None}


def pooled(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("af_tp_s", "af_fp_s", "af_fn_s"))
    ref_eps = sum(r["reference_af_episodes"] for r in rows)
    det_eps = sum(r["detected_af_episodes"] for r in rows)
    hit = sum((r["episode_sensitivity"] or 0) * r["reference_af_episodes"] for r in rows)
    true_det = sum((r["episode_ppv"] or 0) * r["detected_af_episodes"] for r in rows)
    non_af_h = sum(r["non_af_h"] for r in rows)
    errs = [abs(r["af_burden_error"]) for r in rows if r["af_burden_error"] is not None]
    return {
        "records": len(rows), "hours": round(sum(r["reference_rhythm_s"] for r in rows) / 3600, 2),
        "af_f1_per_second": round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else None,
        "af_sensitivity": round(tp / (tp + fn), 4) if tp + fn else None,
        "af_ppv": round(tp / (tp + fp), 4) if tp + fp else None,
        "episode_sensitivity": round(hit / ref_eps, 4) if ref_eps else None,
        "episode_ppv": round(true_det / det_eps, 4) if det_eps else None,
        "mean_abs_burden_error": round(float(np.mean(errs)), 4) if errs else None,
        "false_af_min_per_hour": round(fp / 60 / non_af_h, 2) if non_af_h else None,
    }


def score_record(lm, signal: np.ndarray, fs: float, zones, tmp: Path, cfg: MonitorConfig | None = None):
    """(episode figures against the reference rhythm, the MonitorResult) of one record."""
    path = tmp / "rec.npy"
    np.save(path, signal.astype(np.float32), allow_pickle=False)
    res = monitor(path, lm, fs=fs, cfg=cfg)
    return episode_figures(res, zones, fs), res


def episode_figures(res, zones, fs: float) -> dict:
    """A MonitorResult's episode figures against the reference rhythm zones, with its non-AF hours (for `pooled`)."""
    ev = evaluate_episodes(res, reference_episodes(zones, fs))
    ev["non_af_h"] = (ev["reference_rhythm_s"] - ev["af_tp_s"] - ev["af_fn_s"]) / 3600
    return ev


def test_records(name: str, split: str = "test"):
    """Every record of a dataset's split (lead 0 of a multi-lead database)."""
    ds = open_dataset(name, lead=0 if issubclass(DATASETS[name], WfdbRhythmDatabase) else None)
    for patient in ds.patients():
        if assign_split(patient) == split:
            yield from ds.records(patient)


def long_records(lm, tmp: Path, split: str = "test", cfg: MonitorConfig | None = None,
                 results: dict | None = None) -> dict:
    """Pooled figures per dataset; each record's MonitorResult goes into `results` (by (dataset, record)) when given."""
    out = {}
    for name in LONG:
        rows = []
        for r in test_records(name, split):
            ev, res = score_record(lm, r.signal, r.fs, r.zones, tmp, cfg)
            rows.append(ev)
            if results is not None:
                results[name, r.record_id.split(":")[0]] = res
        if rows:
            out[name] = pooled(rows)
    return out


def stress(lm, tmp: Path) -> dict:
    noise = load_noise()
    # MITDB's test records hold one AF patient (217, paced): AFTDB's test excerpts (all AF)
    # join them so that AF sensitivity is measured on more than one patient.
    recs = list(test_records("mitdb")) + list(test_records("aftdb"))
    out = {"clean": pooled([score_record(lm, r.signal, r.fs, r.zones, tmp)[0] for r in recs])}
    for kind in ("em", "ma"):
        # resampled once per rate, not once per record and SNR
        at_fs = {fs: resample(noise[kind][:, 0], NSTDB_FS, fs) for fs in {r.fs for r in recs}}
        for snr in SNRS:
            rows = []
            for r in recs:
                nz = at_fs[r.fs]
                nz = np.resize(nz, len(r.signal)) - nz.mean()
                gain = np.sqrt(np.var(r.signal) / (np.var(nz) * 10 ** (snr / 10)))
                rows.append(score_record(lm, r.signal + gain * nz, r.fs, r.zones, tmp)[0])
            out[f"{kind}_{snr}"] = pooled(rows)
    return out


def stress_plot(res: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for kind, style in (("em", "-"), ("ma", "--")):
        for key, colour, label in (("af_sensitivity", "tab:red", "AF Se"), ("af_ppv", "tab:blue", "AF PPV")):
            ys = [res[f"{kind}_{s}"][key] for s in SNRS]
            ax.plot(SNRS, [np.nan if v is None else v for v in ys], style, color=colour, marker="o",
                    label=f"{label}, {kind} noise")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("per-second AF figure")
    ax.set_ylim(0, 1.02)
    ax.invert_xaxis()
    ax.set_title(f"Noise stress test (EC57 SNRs), MITDB + AFTDB test records: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--store", help="rhythm3 window store (default: the one configs/rhythm.json builds)")
    ap.add_argument("--stress", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", default=None, help="PNG of the noise stress test (with --stress)")
    ap.add_argument("--beats", choices=("neurokit", "c"), default="neurokit",
                    help="the monitor's R peaks: its NeuroKit2 detectors, or the C export's tr_beats.c (a device's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    lm = load_model(a.model)
    store = WindowStore(a.store) if a.store else rhythm_store()
    result = {"model": a.model, "beats": a.beats, "window": window_level(lm, store)}
    with tempfile.TemporaryDirectory() as d:
        cfg = MonitorConfig(beat_detector=a.beats)
        results: dict = {}
        result["long"] = long_records(lm, Path(d), cfg=cfg, results=results)
        result["window_after_monitor"] = monitor_windows(lm, store, results)
        if a.stress:
            result["stress"] = stress(lm, Path(d))
            if a.plot:
                stress_plot(result["stress"], a.plot, a.model)
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
