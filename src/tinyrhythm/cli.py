"""The `tinyrhythm` command: a thin layer over the Python API.

Every command reports bad input as one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import TinyRhythmError
from .zoo import DEFAULT_RHYTHM_MODEL


def _print_json(obj) -> None:
    print(json.dumps(obj, sort_keys=False))


def _window_config(args):
    from .windows import WindowConfig

    length = args.length
    return WindowConfig(fs=args.fs, length=length, hop=args.hop or length, purity=args.purity, short=args.short,
                        min_pad_fraction=args.min_pad_fraction)


def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fs", type=float, default=62.5, help="window sampling rate in Hz (default 62.5)")
    p.add_argument("--length", type=int, default=513, help="window length in samples (default 513)")
    p.add_argument("--hop", type=int, default=None, help="hop between windows in samples (default: the length)")
    p.add_argument("--purity", type=float, default=0.9, help="fraction of a window one label must cover (default 0.9)")
    p.add_argument("--short", choices=("pad", "skip"), default="pad", help="records shorter than a window")
    p.add_argument("--min-pad-fraction", type=float, default=0.5,
                   help="with --short pad: pad records holding at least this fraction of a window (default 0.5)")


def cmd_data_summary(args) -> None:
    from .inspect import summarize
    from .windows.store import WindowStore

    target = Path(args.dataset)
    if (target / "manifest.json").is_file() or (target / "build.json").is_file():
        m = WindowStore(target).manifest
        out = {"store": str(target), "patients": m["patients"], "windows": m["windows"], "classes": m["classes"],
               "counts": m["counts"], "patients_per_split": m["patients_per_split"], "config_hash": m["config_hash"]}
    else:
        windows = args.windows if args.windows is not None else args.dataset != "cinc2017"
        out = summarize(args.dataset, _window_config(args) if windows else None)
    if args.json:
        _print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:>16}: {v}")


def cmd_data_show(args) -> None:
    from .inspect import describe_label_file, describe_record, read_record

    path = str(args.path)
    out = describe_label_file(path) if path.endswith(".pkl.gz") else describe_record(read_record(path, args.lead))
    if not args.json:
        out = {k: (f"{len(v)} zones" if isinstance(v, list) else v) for k, v in out.items()}
        for k, v in out.items():
            print(f"{k:>10}: {v}")
    else:
        _print_json(out)


def _parse_shard(text: str | None) -> tuple[int | None, int]:
    if text is None:
        return None, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise TinyRhythmError(f"--shard must look like i/N (e.g. 0/8), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise TinyRhythmError(f"--shard {text}: need 0 <= i < N")
    return i, n


def cmd_data_build(args) -> None:
    from .windows.build import build_store
    from .windows.schema import BuildConfig

    shard, num = _parse_shard(args.shard)
    if args.shards is not None:
        if shard is not None and args.shards != num:
            raise TinyRhythmError(f"--shards {args.shards} disagrees with --shard {args.shard}")
        num = args.shards
    from .datasets import default_task

    task = args.task or default_task(args.datasets)
    cfg = BuildConfig(datasets=args.datasets, task=task, window=_window_config(args), split_seed=args.split_seed,
                      num_shards=num, max_patients=args.max_patients, lead=args.lead, split_by=args.split_by)
    manifest = build_store(args.out, cfg, shard=shard, workers=args.workers, skip_bad=args.skip_bad, quiet=args.quiet)
    if manifest is None:
        msg = {"store": str(args.out), "complete": False, "shard": args.shard}
    else:
        msg = {"store": str(args.out), "complete": True, "windows": manifest["windows"], "counts": manifest["counts"]}
    _print_json(msg) if args.json else print(msg)


def cmd_data_merge(args) -> None:
    from .windows.build import merge_store

    m = merge_store(args.store)
    _print_json({"store": str(args.store), "windows": m["windows"], "counts": m["counts"]})


def cmd_data_download(args) -> None:
    from .datasets.base import data_root
    from .datasets.download import PHYSIONET, download, parse_patients

    out = Path(args.out) if args.out else data_root()
    patients = parse_patients(args.patients) if args.patients else None
    result = download(args.dataset, out, base_url=args.base_url or PHYSIONET, patients=patients, quiet=args.quiet)
    _print_json(result) if args.json else print(result)


def cmd_models(args) -> None:
    from .models import REGISTRY, describe

    rows = [describe(name, args.num_classes, args.input_length) for name in REGISTRY]
    if args.json:
        _print_json(rows)
        return
    print(f"{'name':<8} {'blocks':>6} {'F0':>3} {'s_j':>3} {'params_table':>12} {'MACs':>11} {'float32 B':>10}")
    for r in rows:
        print(f"{r['name']:<8} {r['blocks']:>6} {r['initial_filters']:>3} {r['s_j']:>3} {r['params_table']:>12,} "
              f"{r['macs']:>11,} {r['float32_bytes']:>10,}")


TRAIN_OVERRIDES = ("model", "task", "store", "epochs", "samples_per_epoch", "batch_size", "lr", "seed", "fs",
                   "input_length", "hop", "threads", "device", "patience", "teacher", "kd_alpha", "kd_temperature")


def _train_config(args):
    from .train import TrainConfig

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    for key in TRAIN_OVERRIDES:
        value = getattr(args, key, None)
        if value is not None:
            setattr(cfg, key, value)
    return cfg.validate()


def cmd_train(args) -> None:
    from .train import train

    result = train(_train_config(args), args.out, resume=args.resume, quiet=args.quiet)
    if not result:  # a non-zero rank under torchrun
        return
    if args.json:
        _print_json(result)
    else:
        for split in ("val", "test"):
            r = result[split]
            extra = f"  CinC score {r['cinc_score']:.3f}  AF F1 {r['af_f1']:.3f}" if "cinc_score" in r else ""
            print(f"{split:>5}: macro F1 {r['macro_f1']:.3f}  accuracy {r['accuracy']:.3f}{extra}")


def cmd_calibrate(args) -> None:
    from .train.calibrate import calibrate

    torch_threads(args.threads)
    r = calibrate(args.run, args.out, weighting=args.weighting, store=args.store)
    if args.json:
        _print_json(r)
        return
    p = r["prior_correction"]
    print(f"logit offsets {p['logit_offsets']} (were {p['replaces']}), weighting {p['weighting']}")
    for split in ("val", "test"):
        f1 = r[split]["per_class"]
        print(f"{split:>5}: macro F1 {r[split]['macro_f1']:.3f}  " + "  ".join(f"{c} F1 {v['f1']:.3f}" for c, v in f1.items()))


def cmd_evaluate(args) -> None:
    from .evaluate.run import evaluate

    torch_threads(args.threads)
    r = evaluate(args.model, args.task, args.split, store=args.store, threshold=args.threshold, plot=args.plot)
    if args.json:
        _print_json(r)
        return
    print(f"{r['model']} on {r['task']} {r['split']} ({r['n']} {r['level']}s)")
    print(f"  macro F1 {r['macro_f1']:.4f}  accuracy {r['accuracy']:.4f}"
          + (f"  CinC score {r['cinc_score']:.4f}" if "cinc_score" in r else "")
          + (f"  abstained {r['abstention_rate']:.1%}" if r["threshold"] else ""))
    for c, m in r["per_class"].items():
        print(f"  {c:>10}: precision {m['precision']:.3f} recall {m['recall']:.3f} F1 {m['f1']:.3f} (n={m['support']})")
    if r.get("confusion_png"):
        print(f"  confusion matrix: {r['confusion_png']}")


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def cmd_predict(args) -> None:
    from .datasets.files import expand, read_any
    from .inference import predict_signals, record_fusion
    from .runtime import load_model

    torch_threads(args.threads)
    lm = load_model(args.model)
    fused = record_fusion(lm, args.rr_context) is not None
    paths = expand(args.paths)
    chunk = 512  # records per batch: bounded memory for folders of any size
    for i in range(0, len(paths), chunk):
        items = [read_any(p, args.fs, args.lead) for p in paths[i : i + chunk]]
        probs = predict_signals(lm, [(-sig if args.invert else sig, fs) for _, sig, fs in items], rr_context=args.rr_context)
        for (name, _, _), p in zip(items, probs):
            label = lm.classes[int(p.argmax())]
            if args.json:
                _print_json({"record": name, "label": label,
                             "probabilities": {c: round(float(v), 4) for c, v in zip(lm.classes, p)},
                             "rr_context": fused})
            else:
                print(f"{name}\t{label}\t{float(p.max()):.3f}")
        sys.stdout.flush()


def cmd_monitor(args) -> int | None:
    from .monitor import MonitorConfig, monitor
    from .monitor.evaluate import evaluate_episodes, read_reference
    from .monitor.output import write_outputs

    from .paths import check_annotation_extension, check_output_dir

    if args.out:
        check_output_dir(args.out)
        check_annotation_extension(args.ann_ext)
    if args.jobs < 1:
        raise TinyRhythmError(f"--jobs must be at least 1, got {args.jobs}")
    cfg = MonitorConfig(smoothing=args.smoothing, min_duration_s=args.min_duration, engine=args.engine, invert=args.invert,
                        rr_context=args.rr_context,
                        **({"hop_s": args.hop} if args.hop is not None else {}))
    if len(args.record) > 1 or Path(args.record[0]).is_dir():
        return _monitor_many(args, cfg)
    torch_threads(args.threads)
    r = monitor(args.record[0], args.model, fs=args.fs, lead=args.lead, cfg=cfg)
    ev = evaluate_episodes(r, read_reference(r, args.reference)) if args.reference else None
    written = write_outputs(r, args.out, args.ann_ext, ev) if args.out else []
    for note in r.notes:
        print(f"tinyrhythm: warning: {note}", file=sys.stderr)
    if args.json:
        obj = r.to_json()
        if ev is not None:
            obj["evaluation"] = ev
        if written:
            obj["outputs"] = [str(p) for p in written]
        _print_json(obj)
        return
    _print_monitor(r, ev, written)


def _monitor_many(args, cfg) -> int:
    from .monitor.batch import BatchJob, find_recordings, monitor_many, write_summary

    paths = find_recordings(args.record)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    job = BatchJob(str(args.model), args.fs, args.lead, cfg, args.out, args.ann_ext, args.reference)
    rows = monitor_many(paths, job, jobs=args.jobs)
    written = write_summary(rows, args.out) if args.out else []
    for r in rows:
        for note in r.get("warnings", []):
            print(f"tinyrhythm: warning: {r['record']}: {note}", file=sys.stderr)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(f"{'record':<24} {'hours':>6} {'AF burden':>9} {'episodes':>8} {'AF episodes':>11} {'longest AF s':>12} {'noise':>6}")
        for r in rows:
            if r["error"]:
                print(f"{r['record']:<24} error: {r['error']}")
                continue
            print(f"{r['record']:<24} {r['duration_s'] / 3600:>6.2f} {r['af_burden']:>9.1%} {r['episodes']:>8} "
                  f"{r['af_episodes']:>11} {r['longest_af_episode_s']:>12.0f} {r['noise_fraction']:>6.1%}")
        ok = [r for r in rows if not r["error"]]
        print(f"{len(ok)} of {len(rows)} recordings analysed, {sum(r['duration_s'] for r in ok) / 3600:.2f} h")
        for p in written:
            print(f"wrote {p}")
    sys.stdout.flush()
    failed = [r for r in rows if r["error"]]
    for r in failed:
        print(f"tinyrhythm: error: {r['error']}", file=sys.stderr)
    return 2 if failed else 0


def _print_monitor(r, ev: dict | None, written) -> None:
    s = r.summary
    print(f"{r.record}: {r.duration_s / 3600:.2f} h at {r.fs:g} Hz, lead {r.lead or '?'}, model {r.model}")
    print(f"AF burden {s['af_burden']:.1%} of {s['analysed_s'] / 3600:.2f} h analysed; noise {s['noise_fraction']:.1%} "
          f"(unreadable {s['unreadable_fraction']:.1%})")
    h = r.holter() if r.beats is not None else {}
    if h.get("heart_rate"):
        hr = h["heart_rate"]
        af_rate = h["af_ventricular_rate"]
        print(f"heart rate (minute means) {hr['min_bpm']:.0f} / {hr['mean_bpm']:.0f} / {hr['max_bpm']:.0f} bpm "
              f"min/mean/max at {_hms(hr['min_time_s'])} / {_hms(hr['max_time_s'])}"
              + (f"; in AF mean {af_rate['mean_bpm']:.0f} bpm" if af_rate else ""))
    if h:
        p = h["pauses"]
        print(f"{h['beats']} beats; pauses > {p['threshold_s']:g} s: {p['count']}"
              + (f", longest {p['longest_s']:.2f} s at {_hms(p['longest_time_s'])}" if p["count"] else "")
              + f"; longest AF episode {h['longest_af_episode_s']:.0f} s")
    for e in r.episodes:
        print(f"  {e.label:<11} {_hms(e.start_s)} - {_hms(e.end_s)}  ({e.duration_s:.0f} s)")
    if ev is not None:
        print("vs reference: " + ", ".join(f"{k} {v}" for k, v in ev.items() if k != "confusion"))
    for p in written:
        print(f"wrote {p}")


def cmd_demo(args) -> None:
    from .demo import run_demo
    from .paths import check_output_dir

    check_output_dir(args.out)
    torch_threads(args.threads)
    d = run_demo(args.out, args.model)
    for note in d.result.notes:
        print(f"tinyrhythm: warning: {note}", file=sys.stderr)
    print(f"sample: {d.result.record} (tinyrhythm.samples; MIT-BIH Arrhythmia Database, ODC-By 1.0)")
    _print_monitor(d.result, d.evaluation, d.outputs)
    print(f"report: {d.report.resolve()}  (open it in a browser)")


def cmd_report(args) -> None:
    from .paths import check_output_file
    from .report import report

    check_output_file(args.out)
    torch_threads(args.threads)
    out = report(args.target, args.out, model=args.model, reference=args.reference, study=args.study, fs=args.fs,
                 lead=args.lead, invert=args.invert, rr_context=args.rr_context)
    print(f"wrote {out}")
    if args.pdf:
        from .report import print_pdf

        print(f"wrote {print_pdf(out)}")


def _hms(t: float) -> str:
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"


def _print_compression(r: dict) -> None:
    fid = r.get("fidelity_val")
    for split in ("val", "test"):
        m, base = r[split], r.get(f"parent_{split}")
        delta = f"  (parent {base['cinc_score']:.3f})" if base and "cinc_score" in base else ""
        cinc = f"  CinC score {m['cinc_score']:.3f}{delta}" if "cinc_score" in m else ""
        print(f"{split:>5}: macro F1 {m['macro_f1']:.3f}{cinc}")
    if fid:
        print(f" fidelity to parent (val windows): SQNR {fid['sqnr_db']} dB, argmax agreement {fid['argmax_agreement']:.2%}")
    if r.get("weight_bytes") is not None:
        print(f" weights {r['weight_bytes']:,} bytes" + (f", {r['latency_ms']:.3f} ms per window (1 thread)" if r.get("latency_ms") else ""))


def cmd_quantize(args) -> None:
    from .compress.quantize import QuantizeConfig, quantize

    cfg = QuantizeConfig(method=args.method, per_channel=not args.per_tensor, calibration=args.calibration,
                         format=args.format, calibration_windows=args.calibration_windows, seed=args.seed,
                         reduce_range=args.reduce_range,
                         qat_epochs=args.qat_epochs, qat_lr=args.qat_lr, threads=args.threads)
    r = quantize(args.model, args.out, cfg, store=args.store, quiet=args.quiet, force=args.force)
    _print_json(r) if args.json else _print_compression(r)


def cmd_prune(args) -> None:
    from .compress.prune import PruneConfig, prune

    cfg = PruneConfig(method=args.method, sparsity=args.sparsity, scope=args.scope,
                      finetune_epochs=args.finetune_epochs, lr=args.lr, seed=args.seed, threads=args.threads)
    r = prune(args.model, args.out, cfg, store=args.store, quiet=args.quiet, force=args.force)
    if args.json:
        _print_json(r)
        return
    _print_compression(r)
    print(f" nonzero parameters {r['nonzero_params']:,} of {r['parent_size']['params']:,}; "
          f"MACs {r['macs']:,} (parent {r['parent_size']['macs']:,}); sparse bytes {r['sparse_bytes']:,}")


def cmd_study(args) -> None:
    from .compress.study import run_study

    rows = run_study(args.config, only=args.only, quiet=args.quiet, dry_run=args.dry_run)
    if args.json:
        _print_json(rows)
        return
    for r in rows:
        cinc = f"{r['test_cinc']:.3f}" if r["test_cinc"] is not None else "  -  "
        print(f"{r['name']:<34} {r['bytes']:>9,} B  test macro F1 {r['test_macro_f1']:.3f}  CinC {cinc}")


def cmd_export(args) -> None:
    from .export.run import export

    from .export.run import report_table

    r = export(args.model, args.format, args.out, force=args.force, store=args.store)
    if args.json:
        _print_json(r)
        return
    if args.report:
        print(report_table(r))
        return
    for name, f in r["forms"].items():
        print(f"{args.out}/{name}: {f['weight_bytes']:,} weight bytes, {f['latency_ms_batch1_1thread']:.3f} ms/window, "
              f"argmax agreement {f['argmax_agreement']:.2%} and max |diff| {f['max_abs_diff']} against {r['reference']}")


def cmd_runs_table(args) -> None:
    from .evaluate.tables import runs_table

    lodo = {}
    for item in args.lodo:
        if "=" not in item:
            raise TinyRhythmError(f"--lodo {item!r}: expected HELD=RUN, e.g. mitdb=runs/lodo-mitdb")
        held, run = item.split("=", 1)
        lodo[held] = run
    print(runs_table(args.paths, args.kind, lodo))


def cmd_zoo_add(args) -> None:
    from .runtime.package import add_to_zoo

    card = add_to_zoo(args.name, args.run, parent=args.parent, monitor_engine=args.monitor_engine, zoo_dir=args.zoo_dir)
    if args.json:
        _print_json(card)
        return
    m = card["metrics"]
    print(f"{card['name']}: {card['params_table']:,} params, {card['weight_bytes']:,} weight bytes, test macro F1 "
          f"{m['macro_f1']}, AF F1 {m.get('af_f1')}; sha256 {card['sha256'][:12]}...")


def cmd_zoo_list(args) -> None:
    from . import zoo

    rows = zoo.listing()
    if args.json:
        _print_json(rows)
        return
    for r in rows:
        m = r.get("metrics") or {}
        print(f"{r['name']:<12} {r['task']:<10} {r['params_table']:>7,} params {r['weight_bytes']:>8,} B  "
              f"CinC {m.get('cinc_score', float('nan')):.3f}  macro F1 {m.get('macro_f1', float('nan')):.3f}")


def _add_invert_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--invert", action="store_true", help="the lead is reversed (swapped electrodes, patch upside down): "
                   "negate the signal first")


def _add_rr_context_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-rr-context", dest="rr_context", action="store_false",
                   help="decide on the network's window probabilities alone, without weighing the RR irregularity "
                        "and rate of the 30 s around each window (the model card's `rr_context`)")


def _add_train_options(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    p.add_argument("--config", default=None, help="JSON file of training settings (TrainConfig); options override it")
    p.add_argument("--out", required=out_required, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    p.add_argument("--store", default=None, help="window store to train on (default: built from the config into the cache)")
    for key, typ in (("epochs", int), ("samples_per_epoch", int), ("batch_size", int), ("lr", float), ("seed", int),
                     ("fs", float), ("input_length", int), ("hop", int), ("threads", int), ("patience", int)):
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=typ, default=None)
    p.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")


def _add_compress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="window store (default: the one the parent was trained on)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")


# `python -m tinyrhythm.samples` prints the sample's record path (cut on first use): every example runs as is.
SAMPLE = '"$(python -m tinyrhythm.samples)"'
EXAMPLES = {
    "predict": f"example:\n  tinyrhythm predict --model rhythm-cnn3-int8 {SAMPLE} --json",
    "monitor": f"examples:\n  tinyrhythm monitor {SAMPLE} --reference atr\n"
               f"  tinyrhythm monitor {SAMPLE} --out demo/ --json\n"
               f"  tinyrhythm monitor {SAMPLE} --lead all    # both of its leads weighed together",
    "report": f"example:\n  tinyrhythm report {SAMPLE} --reference atr --out demo/report.html --pdf",
    "demo": "example:\n  tinyrhythm demo --out demo/",
}


def build_parser() -> argparse.ArgumentParser:
    from .datasets import DATASETS
    from .datasets.download import sources
    from .tasks import TASKS

    parser = argparse.ArgumentParser(prog="tinyrhythm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="the model family: sizes and MACs per window")
    p.add_argument("--num-classes", type=int, default=3)
    p.add_argument("--input-length", type=int, default=513)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model (also under torchrun for DistributedDataParallel)")
    p.add_argument("--model", default=None, help="cnn1..cnn5 or teacher (default cnn3)")
    p.add_argument("--task", default=None, choices=list(TASKS))
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="train a student model from a teacher's softened outputs")
    p.add_argument("--teacher", required=True, help="teacher: run folder or zoo name (same labels and windows)")
    p.add_argument("--student", dest="model", required=True, help="student model name, e.g. cnn3")
    p.add_argument("--task", default=None, choices=list(TASKS))
    p.add_argument("--temperature", dest="kd_temperature", type=float, default=None, help="softmax temperature T (default 4)")
    p.add_argument("--alpha", dest="kd_alpha", type=float, default=None, help="weight of the label loss (default 0.5)")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="choose a trained run's prior correction again (no training), into a new run")
    p.add_argument("run", help="trained PyTorch run folder")
    p.add_argument("--out", required=True, help="new run folder")
    p.add_argument("--weighting", default="windows", choices=["windows", "datasets"],
                   help="validation windows counted once each (default, as the zoo), or weighted so that every dataset counts the same")
    p.add_argument("--store", default=None, help="window store whose validation split to calibrate on (default: the run's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("quantize", help="int8 / float16 quantization of a run or zoo model, measured against it")
    p.add_argument("model", help="float parent: run folder or zoo name")
    p.add_argument("--method", required=True, help="ptq (ONNX Runtime static int8), fp16, fbgemm (PyTorch int8), qat")
    p.add_argument("--out", required=True, help="run folder for the quantized model")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default: per channel)")
    p.add_argument("--calibration", default="percentile", help="minmax, percentile or entropy (default percentile)")
    p.add_argument("--format", default="qdq", help="ONNX int8 format: qdq or qoperator (default qdq)")
    p.add_argument("--calibration-windows", type=int, default=1024, help="training windows to calibrate on")
    p.add_argument("--reduce-range", action="store_true",
                   help="7-bit weights: exact int8 arithmetic in ONNX Runtime on x86 CPUs without VNNI")
    p.add_argument("--qat-epochs", type=int, default=8)
    p.add_argument("--qat-lr", type=float, default=3e-4)
    _add_compress_options(p)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("prune", help="magnitude (one-shot or gradual) or structured channel pruning, fine-tuned")
    p.add_argument("model", help="float parent: run folder or zoo name")
    p.add_argument("--method", required=True, help="magnitude, gradual or channel")
    p.add_argument("--sparsity", required=True, type=float, help="fraction of weights (or inner channels) removed, in [0, 1)")
    p.add_argument("--scope", default="layer", help="unstructured: layer (each layer at the sparsity) or global")
    p.add_argument("--out", required=True, help="run folder for the pruned model")
    p.add_argument("--finetune-epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    _add_compress_options(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("study", help="run a grid of compression cells from a JSON file (resumable); table + Pareto plot")
    p.add_argument("config", help="study file (see configs/study-cinc2017.json)")
    p.add_argument("--only", nargs="+", default=None, help="run only these cells (the table covers all finished ones)")
    p.add_argument("--dry-run", action="store_true", help="list the cells that would run")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("export", help="deployable files (ONNX, TFLite int8, C) checked against the model on real windows")
    p.add_argument("model", help="run folder or zoo name")
    p.add_argument("--format", required=True, help="onnx, tflite (needs the [tflite] extra) or c")
    p.add_argument("--report", action="store_true", help="print the deployment report (sizes, RAM, MACs, latency) as a table")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    p.add_argument("--store", default=None, help="window store for calibration and checks (default: the model's own)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="metrics of a run or zoo model on a split of its task")
    p.add_argument("model", help="run folder, zoo name, or exported model (export folder, .tflite, .onnx)")
    p.add_argument("--task", required=True, choices=list(TASKS))
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--store", default=None, help="window store (default: the one the model was trained on)")
    p.add_argument("--threshold", type=float, default=None, help="abstain when the top probability is below this")
    p.add_argument("--plot", default=None, help="confusion matrix PNG (default for a run: RUN/confusion_SPLIT.png)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", epilog=EXAMPLES["predict"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="classify records: WFDB, CinC .mat/.hea, .csv/.npy (with --fs), folders")
    p.add_argument("--model", required=True, help="run folder, zoo name, or exported model (export folder, .tflite, .onnx)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--fs", type=float, default=None, help="sampling rate of .csv/.npy signals")
    p.add_argument("--lead", default=None, help="lead index or name of multi-lead records (default: the first)")
    _add_invert_option(p)
    _add_rr_context_option(p)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("monitor", epilog=EXAMPLES["monitor"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="rhythm over time of a long recording: episodes, AF burden, WFDB annotations")
    p.add_argument("record", nargs="+", help="WFDB record (.hea/.dat), CinC .mat, EDF, or .csv/.npy with --fs; "
                   "several records or folders: one summary (summary.csv and summary.jsonl with --out)")
    p.add_argument("--model", default=DEFAULT_RHYTHM_MODEL, help=f"run folder, zoo name or exported model (default: {DEFAULT_RHYTHM_MODEL})")
    p.add_argument("--fs", type=float, default=None, help="sampling rate of a .csv/.npy signal")
    p.add_argument("--lead", default=None, help="lead index or name of a multi-lead record, or all: every ECG lead "
                   "weighed together (default: the first)")
    _add_invert_option(p)
    _add_rr_context_option(p)
    p.add_argument("--hop", type=float, default=None, help="seconds between window decisions (default 2.048)")
    p.add_argument("--smoothing", default="hmm", choices=("none", "mean", "hmm"))
    p.add_argument("--engine", default="auto", choices=("auto", "onepass", "windows"),
                   help="onepass: the network's trunk once over the recording (~3x faster); windows: every window "
                        "classified alone; auto (default): the model card's choice (one-pass for rhythm-cnn3, "
                        "rhythm-cnn3-int8, rhythm-cnn5), else windows")
    p.add_argument("--min-duration", type=float, default=30.0, help="shortest episode kept, seconds (default 30)")
    p.add_argument("--reference", default=None, metavar="EXT",
                   help="evaluate against the record's reference rhythm annotations, e.g. atr")
    p.add_argument("--out", default=None, help="folder for the WFDB annotation, CSVs and JSON")
    p.add_argument("--ann-ext", default="tr", help="extension of the written WFDB annotation file (default tr)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1, help="recordings analysed in parallel, one process and thread each (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object (one line per recording for several)")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("demo", epilog=EXAMPLES["demo"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="the default model on the sample recording: summary, annotations, report",
                       description="Monitor the sample recording (tinyrhythm.samples: 6 min of MIT-BIH record "
                       "222 with AF and flutter) with the default model, compare with its reference annotations, and "
                       "write the annotations, CSVs, JSON and HTML report to --out. Needs no dataset.")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--model", default=DEFAULT_RHYTHM_MODEL, help=f"run folder, zoo name or exported model (default: {DEFAULT_RHYTHM_MODEL})")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", epilog=EXAMPLES["report"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="one self-contained HTML report of a recording or a run folder")
    p.add_argument("target", metavar="RUN_OR_RECORD", help="a training run folder, or a recording to monitor")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--model", default=DEFAULT_RHYTHM_MODEL, help=f"model for a recording (default: {DEFAULT_RHYTHM_MODEL})")
    p.add_argument("--reference", default=None, metavar="EXT", help="reference rhythm annotations of the record, e.g. atr")
    p.add_argument("--study", default=None, help="compression study folder: adds its Pareto plot")
    p.add_argument("--fs", type=float, default=None, help="sampling rate of a .csv/.npy signal")
    p.add_argument("--lead", default=None, help="lead index or name, or all: every ECG lead weighed together "
                   "(default: the first)")
    _add_invert_option(p)
    _add_rr_context_option(p)
    p.add_argument("--pdf", action="store_true", help="also print the page to PDF (beside --out) with headless Chromium")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("zoo", help="the shipped pretrained models")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    z = zsub.add_parser("list", help="list zoo models with their sizes and test metrics")
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=cmd_zoo_list)
    z = zsub.add_parser("add", help="package a trained or quantized run folder as a zoo model (card + weights)")
    z.add_argument("name", help="zoo name, e.g. rhythm-cnn3")
    z.add_argument("run", help="run folder (train, distill or quantize output)")
    z.add_argument("--parent", default=None, help="zoo name of the float parent (default: the run's own parent)")
    z.add_argument("--monitor-engine", default=None, choices=("windows", "onepass"),
                   help="the engine `monitor --engine auto` uses for this model (default: windows)")
    z.add_argument("--zoo-dir", default=None, help="zoo folder (default: the installed package's)")
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=cmd_zoo_add)

    p = sub.add_parser("runs", help="tables of finished runs")
    rsub = p.add_subparsers(dest="runs_command", required=True)
    r = rsub.add_parser("table", help="the README's Markdown result tables from run folders")
    r.add_argument("paths", nargs="+", help="run folders, folders of runs, or a compression study folder")
    r.add_argument("--kind", default="auto", choices=("auto", "training", "rhythm", "compression"),
                   help="auto: compression for a study (results.csv), rhythm where runs have cross_dataset.json")
    r.add_argument("--lodo", nargs="*", default=[], metavar="HELD=RUN",
                   help="leave-one-dataset-out runs for the rhythm table (e.g. mitdb=runs/lodo-mitdb)")
    r.set_defaults(func=cmd_runs_table)

    data = sub.add_parser("data", help="read, summarise, window and download datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)

    p = dsub.add_parser("summary", help="records, patients, labels and windows of a dataset or a built store")
    p.add_argument("dataset", help=f"dataset name ({', '.join(DATASETS)}) or a store folder")
    p.add_argument("--json", action="store_true")
    p.add_argument("--windows", dest="windows", action="store_true", default=None, help="count windows (slow for cinc2017)")
    p.add_argument("--no-windows", dest="windows", action="store_false")
    _add_window_options(p)
    p.set_defaults(func=cmd_data_summary)

    p = dsub.add_parser("show", help="one record (.hea) or an Icentia11k label file (.pkl.gz)")
    p.add_argument("path")
    p.add_argument("--lead", default=None, help="lead index or name (default: the first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_show)

    p = dsub.add_parser("build", help="build (or resume) a windowed dataset store")
    p.add_argument("datasets", nargs="+", choices=list(DATASETS), metavar="DATASET")
    p.add_argument("--task", default=None, choices=list(TASKS),
                   help="label map (default: the datasets' own task, when they agree)")
    p.add_argument("--out", required=True, help="store folder")
    _add_window_options(p)
    p.add_argument("--shard", default=None, help="build only shard i of N (i/N), e.g. on one of N machines")
    p.add_argument("--shards", type=int, default=None, help="number of shards when building all of them here")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--split-by", choices=("patient", "record"), default="patient",
                   help="'record' only for single-patient demonstrations: it puts one patient in several splits")
    p.add_argument("--max-patients", type=int, default=None, help="only the first N patients of each dataset")
    p.add_argument("--lead", default=None, help="lead index or name for multi-lead databases")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable records (listed in the manifest) instead of stopping")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_build)

    p = dsub.add_parser("merge", help="join the shards of a store built on several machines")
    p.add_argument("store")
    p.set_defaults(func=cmd_data_merge)

    p = dsub.add_parser("download", help="download a full dataset from PhysioNet, verified by SHA256SUMS.txt")
    p.add_argument("dataset", choices=list(sources()))
    p.add_argument("--out", default=None, help="data root (default: $TINYRHYTHM_DATA)")
    p.add_argument("--patients", default=None, help="Icentia11k patient ids, e.g. 0-99,512")
    p.add_argument("--base-url", default=None, help="mirror to download from instead of PhysioNet")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "lead", None) is not None and str(args.lead).isdigit():
        args.lead = int(args.lead)
    try:
        rc = args.func(args)  # None, or a command's own exit code (2: some recordings of several failed)
    except TinyRhythmError as exc:
        print(f"tinyrhythm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyrhythm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
