"""Train several models side by side on one accelerator within a fixed time budget.

A lent GPU comes for minutes, not hours. Each job (a config plus overrides) runs in its
own process; all first measure their training and validation throughput together (so
the figure includes their contention), then size their one-cycle schedule to end inside
the budget, so the learning rate anneals fully instead of being cut off.

    python scripts/timed_train.py --store STORE --budget 420 --out runs/ \\
        cnn5=configs/rhythm.json:model=cnn5,batch_size=512 cnn3=configs/rhythm.json:model=cnn3

Each job's overrides are `key=value` pairs (JSON values or plain strings); every job
gets `store`, `device`, `threads` and a large `patience` from the command line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

PROBE_S = 20.0
FINAL_S = 20.0  # saving and start-up slack after the last epoch, besides three validation-sized passes


def _parse_job(spec: str) -> tuple[str, str, dict]:
    name, rest = spec.split("=", 1)
    path, _, over = rest.partition(":")
    settings = {}
    for kv in filter(None, over.split(",")):
        k, v = kv.split("=", 1)
        try:
            settings[k] = json.loads(v)
        except json.JSONDecodeError:
            settings[k] = v
    return name, path, settings


def _probe(cfg, store) -> tuple[float, float]:
    """(training windows/s, seconds per validation pass) under the current contention."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinyrhythm.datasets.nstdb import load_noise
    from tinyrhythm.train.augment import Augmenter
    from tinyrhythm.evaluate.scoring import split_logits
    from tinyrhythm.train.loop import _device, initial_model, training_batch

    device = _device(cfg)
    model = initial_model(cfg, len(store.classes), store.window_length).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    augment = Augmenter(cfg.augment, store.fs, load_noise() if cfg.augment.noise_prob > 0 else None)
    idx, gen, rng = store.indices("train"), torch.Generator().manual_seed(0), np.random.default_rng(0)
    partners = store.lead_partners() if cfg.augment.lead_mix_prob > 0 else None
    done, t0, warm = 0, time.perf_counter(), 30  # the first steps pay CUDA's lazy start-up: not counted
    while warm > 0 or time.perf_counter() - t0 < PROBE_S:
        x, y = training_batch(store, rng.choice(idx, cfg.batch_size), augment, gen, partners)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += len(x)
        if warm > 0:
            warm -= 1
            if warm == 0:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                done, t0 = 0, time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = done / (time.perf_counter() - t0)
    t1 = time.perf_counter()
    split_logits(model, store, "val", device)
    return rate, time.perf_counter() - t1


def _job(name: str, path: str, settings: dict, common: dict, deadline: float, out: Path) -> None:
    from tinyrhythm.train.config import TrainConfig
    from tinyrhythm.train.loop import train
    from tinyrhythm.windows.store import WindowStore

    log = open(out / f"{name}.log", "w", buffering=1)
    sys.stdout = sys.stderr = log
    d = json.loads(Path(path).read_text())
    d.update(settings)
    d.update(common)
    cfg = TrainConfig.from_dict(d)
    import torch

    torch.set_num_threads(cfg.threads)  # before the probe: four jobs at 16 threads each measured 6x slower
    store = WindowStore(cfg.store)
    rate, val_s = _probe(cfg, store)
    epoch_s = cfg.samples_per_epoch / rate + val_s
    # after the last epoch: prior correction, then scoring validation and test (each a pass)
    cfg.epochs = max(1, int((deadline - time.time() - FINAL_S - 3 * val_s) / epoch_s))
    print(f"{name}: {rate:.0f} windows/s, validation {val_s:.1f} s, {epoch_s:.1f} s/epoch -> {cfg.epochs} epochs",
          flush=True)
    train(cfg, out / name, quiet=True)
    print(f"{name}: done, {deadline - time.time():.0f} s before the deadline", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("jobs", nargs="+", help="NAME=CONFIG.json[:key=value,...]")
    ap.add_argument("--store", required=True)
    ap.add_argument("--budget", type=float, required=True, help="seconds from now until every job has finished")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + a.budget
    common = {"store": a.store, "device": a.device, "threads": a.threads, "patience": 10_000}
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_job, args=(*_parse_job(s), common, deadline, a.out)) for s in a.jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(max(1.0, deadline + 60 - time.time()))
        if p.is_alive():
            p.terminate()
    for s in a.jobs:
        name = s.split("=", 1)[0]
        print(f"--- {name}")
        print((a.out / f"{name}.log").read_text()[-1500:])
    sys.exit(max((p.exitcode or 0) != 0 for p in procs))


if __name__ == "__main__":
    main()
