"""Every lead of a Holter weighed together (`monitor --lead all`), against its first lead alone.

    python scripts/all_leads.py MODEL [MODEL ...] [--split val|test|both]
    python scripts/all_leads.py MODEL [MODEL ...] --refit [--shifts 0 0.5 1]

A two-lead Holter records one rhythm twice. Per model and split: (1) the two-lead windows of
`scripts/rr_context.py`'s datasets (MITDB, AFTDB, AFPDB; each window with the same moment in the
record's other lead, `WindowStore.lead_partners`), decided from one lead or from the normalised
geometric mean of both (`monitor.analyse.fuse_leads`), by the network alone and by the card's
RR-context fusion (the beats of lead 0, with the monitor's AF shift): AF F1 and the share of
non-AF windows called AF, per dataset. (2) `monitor` as a user runs it on every MITDB, AFTDB,
AFPDB and CPSC 2021 record of the split, `--lead 0` against `--lead all`, pooled per dataset as
`scripts/cross_dataset.py` pools them, and on the test split the issue's window pool (MITDB + AFTDB
test windows labelled as `monitor` labels their centres, `cross_dataset.monitor_windows`).
--refit fits the RR context again on two-lead probabilities (`scripts/rr_context.py`'s fit, out of
fold, on its validation windows with each two-lead window's probabilities the geometric mean of
its two leads') against the same fit on one lead, then runs `monitor --lead all` with that fit in
place of the card's at each AF shift on the validation and test records of MITDB, AFTDB and AFPDB.
Validation rows choose; used for the README's "Every lead of a Holter".
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from cross_dataset import episode_figures, monitor_windows, pooled, test_records  # scripts/ is on the path of a script run from it
from rr_context import fit, holter_pool, line, out_of_fold, split_features
from sklearn.metrics import f1_score

from tinyrhythm.evaluate.scoring import predict_proba
from tinyrhythm.monitor import monitor
from tinyrhythm.monitor.analyse import fuse_leads
from tinyrhythm.runtime import load_model
from tinyrhythm.runtime.rr_context import RRContext, model_inputs
from tinyrhythm.train.config import training_store

LONG = ("mitdb", "aftdb", "afpdb", "cpsc2021")


def both_leads(lm, ws, idx: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which windows of idx have a partner lead, idx's probabilities with those windows' replaced by
    the geometric mean of both leads', as `monitor --lead all` weighs them)."""
    part = ws.lead_partners()[idx]
    two = part >= 0
    out = probs.copy()
    out[two] = fuse_leads([probs[two], predict_proba(lm.model, ws, part[two], "cpu")], [np.zeros(two.sum())] * 2, 0.5)
    return two, out


def window_rows(lm, ws, split: str) -> list[dict]:
    """AF F1 and non-AF windows called AF (%) per dataset, one lead against both, network and card fusion."""
    idx, feats, groups, _ = split_features(ws, split)
    two = ws.lead_partners()[idx] >= 0
    idx, feats, groups = idx[two], feats[two], groups[two]
    p_one = predict_proba(lm.model, ws, idx, "cpu")
    p_both = both_leads(lm, ws, idx, p_one)[1]
    y = ws.labels[idx].astype(int)
    ds = np.array([g.split("/")[0] for g in groups.astype(str)])
    rows = []
    for inputs, p in (("one lead", p_one), ("both leads", p_both)):
        for decision, q in (("network", p), ("card's RR context", lm.card.rr_fusion.probabilities(p, feats))):
            pred, row = q.argmax(1), {"inputs": inputs, "decision": decision}
            for d in ("all", "mitdb", "aftdb", "afpdb"):
                m = np.ones(len(y), bool) if d == "all" else ds == d
                row[f"{d}_af_f1"] = f1_score(y[m], pred[m], labels=[1], average=None, zero_division=0)[0] if (y[m] == 1).any() else None
                row[f"{d}_false_af"] = 100 * float(np.mean(pred[m][y[m] != 1] == 1)) if (y[m] != 1).any() else None
            rows.append(row)
    return rows


def record_rows(lm, split: str, leads=(0, "all"), datasets=LONG) -> tuple[list[dict], dict]:
    """`monitor` on every record of the datasets' split with each lead setting, pooled per dataset;
    and the MonitorResults of each by (lead, dataset, record)."""
    evs, results = {}, {}
    for name in datasets:
        for r in test_records(name, split):
            for lead in leads:
                res = monitor(r.path, lm, lead=lead)
                evs.setdefault((lead, name), []).append(episode_figures(res, r.zones, r.fs))
                results[lead, name, r.record_id.split(":")[0]] = res
    rows = [{"lead": lead, "dataset": name, **pooled(v)} for (lead, name), v in evs.items()]
    return rows, results


def refit(lm, ws, shifts: list[float]) -> None:
    """The RR context fitted on one lead's and on both leads' probabilities, out of fold; then
    `monitor --lead all` with the two-lead fit at each AF shift."""
    idx, feats, groups, _ = split_features(ws, "val")
    y, probs = ws.labels[idx].astype(int), predict_proba(lm.model, ws, idx, "cpu")
    for label, p in (("one lead", probs), ("both leads", both_leads(lm, ws, idx, probs)[1])):
        x = model_inputs(p, feats)
        oof, off = out_of_fold(x, y, groups)
        pred = (oof + off).argmax(1)
        print(line(f"  {label} + RR context (out of fold)", y, pred))
        print(holter_pool(f"  {label} + RR context (out of fold)", y, pred, groups), flush=True)
    reg = fit(x, y)  # the loop ended on both leads: their fit on every validation window, offsets out of fold
    card = lm.card
    for shift in shifts:
        fusion = RRContext(reg.coef_, reg.intercept_, off + [0.0, shift, 0.0], card.rr_fusion.context_s)
        lm.card = dataclasses.replace(card, rr_context=fusion.to_card())
        for split in ("val", "test"):
            rows = record_rows(lm, split, ("all",), ("mitdb", "aftdb", "afpdb"))[0]
            cells = [f"{q['dataset']} per-second AF F1 {fmt(q['af_f1_per_second'])}, false AF "
                     f"{fmt(q['false_af_min_per_hour'], 2)} min/h" for q in rows]
            print(f"  --lead all, two-lead fit, AF shift {shift:+g}, {split}: {'; '.join(cells)}", flush=True)
    lm.card = card


def fmt(v, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--split", choices=("val", "test", "both"), default="val")
    ap.add_argument("--refit", action="store_true", help="the RR context fitted again on two-lead probabilities")
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.5, 1.0], help="AF shifts for --refit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    splits = ("val", "test") if args.split == "both" else (args.split,)
    for model in args.models:
        lm = load_model(model)
        ws = training_store(lm)
        if args.refit:
            print(f"{model}: the RR context fitted on validation windows")
            refit(lm, ws, args.shifts)
            continue
        for split in splits:
            print(f"\n{model}, {split}: two-lead windows (AF F1; non-AF windows called AF, %)\n"
                  "| inputs | decision | pooled | MITDB | AFTDB | AFPDB |\n|---|---|---|---|---|---|")
            for r in window_rows(lm, ws, split):
                cells = [f"{fmt(r[f'{d}_af_f1'])} ({fmt(r[f'{d}_false_af'], 2)} %)" for d in ("all", "mitdb", "aftdb", "afpdb")]
                print(f"| {r['inputs']} | {r['decision']} | {' | '.join(cells)} |", flush=True)
            rows, results = record_rows(lm, split)
            print(f"\n{model}, {split}: `monitor` on whole records\n| dataset | lead | records | hours | per-second AF F1 | "
                  "AF Se | AF PPV | episode Se | episode PPV | abs burden error | false AF min/h |\n"
                  "|---|---|---|---|---|---|---|---|---|---|---|")
            for r in sorted(rows, key=lambda r: (LONG.index(r["dataset"]), str(r["lead"]))):
                print(f"| {r['dataset']} | {r['lead']} | {r['records']} | {r['hours']} | {fmt(r['af_f1_per_second'])} | "
                      f"{fmt(r['af_sensitivity'])} | {fmt(r['af_ppv'])} | {fmt(r['episode_sensitivity'])} | "
                      f"{fmt(r['episode_ppv'])} | {fmt(r['mean_abs_burden_error'])} | {fmt(r['false_af_min_per_hour'], 2)} |")
            if split == "test":
                for lead in (0, "all"):
                    res = {(d, b): v for (ld, d, b), v in results.items() if ld == lead}
                    print(f"issue's window pool, lead {lead}: {monitor_windows(lm, ws, res)}")


if __name__ == "__main__":
    main()
