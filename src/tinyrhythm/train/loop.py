"""The training loop: store -> balanced sampling -> augmentation -> model -> checkpoints.

Every epoch draws its windows and its augmentation from generators seeded by
(seed, epoch), and a checkpoint is written atomically at the end of each epoch, so a
killed run resumed with `--resume` goes on exactly as if it had not been killed.
Model selection uses the validation split only; the test split is scored once, at the
end, for the report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .. import models
from ..checkpoint import load_weights, save_atomic
from ..datasets.nstdb import load_noise
from ..errors import TinyRhythmError
from ..evaluate.metrics import classification_report
from ..evaluate.scoring import (correct_priors, prior_offsets, record_level,  # noqa: F401
                               score_split, split_logits, split_weights)
from ..tasks import get_task
from ..runtime import load_model
from ..windows.cache import ensure_store
from ..paths import write_json_atomic
from ..windows.store import WindowStore
from .augment import Augmenter
from .config import SLOW_AF_BPM, TrainConfig
from .distill import check_settings, distillation_loss, load_teacher

def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TinyRhythmError("device 'cuda' asked for but no GPU is available")
    return torch.device(cfg.device)


def _make_optimizer(cfg: TrainConfig, model, steps_total: int):
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise TinyRhythmError(f"unknown optimizer {cfg.optimizer!r} (adam, adamw)")
    if cfg.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps_total, pct_start=0.2)
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_total)
    elif cfg.schedule == "constant":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    else:
        raise TinyRhythmError(f"unknown schedule {cfg.schedule!r} (onecycle, cosine, constant)")
    return opt, sched


def _prepare_out(out: Path, cfg: TrainConfig, store: WindowStore, resume: bool, rank: int) -> dict | None:
    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.is_file():
            raise TinyRhythmError(f"{out}: nothing to resume (checkpoint.pt missing)")
        saved = json.loads((out / "config.json").read_text())
        # Settings added since the run was saved take their defaults.
        if TrainConfig.from_dict(saved["train"]).to_dict() != cfg.to_dict():
            raise TinyRhythmError(f"{out}: --resume with a different configuration than the run's config.json")
        return load_weights(ckpt)
    if out.exists() and any(out.iterdir()):
        raise TinyRhythmError(f"{out}: run folder exists and is not empty (use --resume to continue it)")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    return None


def run_metadata(cfg: TrainConfig, store: WindowStore, model) -> dict:
    task = get_task(cfg.task)
    return {
        "train": cfg.to_dict(),
        # A registered builder outside the CNN family has no config: its name rebuilds it.
        "model": {"name": cfg.model, **(model.config.to_dict() if hasattr(model, "config") else {})},
        "task": task.to_dict(),
        "classes": list(task.classes),
        "window": store.manifest["config"]["window"],
        "fs": store.fs,
        "input_length": store.window_length,
        "store": str(store.path),
        "store_config_hash": store.manifest["config_hash"],
    }


def initial_model(cfg: TrainConfig, num_classes: int, input_length: int) -> torch.nn.Module:
    """The registry model, with the weights of `cfg.init` when fine-tuning."""
    if not cfg.init:
        try:
            return models.create(cfg.model, num_classes=num_classes, input_length=input_length, dropout=cfg.dropout,
                                 conditioning=cfg.conditioning)
        except ValueError as exc:
            raise TinyRhythmError(f"invalid model settings: {exc}") from None
    parent = load_model(cfg.init)
    if parent.input_length != input_length or len(parent.classes) != num_classes:
        raise TinyRhythmError(f"init {cfg.init}: model shape does not match the task and store")
    offsets = parent.card.logit_offsets
    if offsets and cfg.balanced and isinstance(parent.model, models.TinyRhythmCNN):
        # Fine-tuning samples classes equally again: start from the balanced head, not the
        # deployment prior folded into it (a new correction is chosen after training).
        with torch.no_grad():
            parent.model.fc.bias -= torch.as_tensor(offsets, dtype=parent.model.fc.bias.dtype)
    return parent.model


def training_batch(store: WindowStore, idx: np.ndarray, augment: Augmenter, gen: torch.Generator,
                   partners: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented windows [batch, 1, length] and labels of store indices; `partners`
    (`WindowStore.lead_partners`, for lead mixing) fetches each window's other lead too."""
    xb, yb = store.batch(idx)
    other = None
    if partners is not None:
        p = partners[idx]
        xp, _ = store.batch(np.where(p >= 0, p, idx))
        xp[p < 0] = np.nan
        other = torch.from_numpy(xp).unsqueeze(1)
    return augment(torch.from_numpy(xb).unsqueeze(1), gen, other), torch.from_numpy(yb)


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, quiet: bool = False,
          model: torch.nn.Module | None = None, step_hook=None, extra_meta: dict | None = None) -> dict:
    """Train one model; returns the final metrics (also written to out/metrics.json).

    Compression reuses this loop: `model` is a prepared model (pruned, or with fake
    quantization) to fine-tune, `step_hook(model, step)` runs after every optimizer step
    (pruning masks), `extra_meta` is saved in config.json beside the training settings."""
    cfg.validate()
    rank, world = _dist_info()
    out = Path(out)
    # Processes sharing the CPU split its threads: oversubscribed threads were seen to
    # collapse training to a few windows/s on 2-vCPU machines.
    torch.set_num_threads(max(1, cfg.threads // world))
    device = _device(cfg)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    store = WindowStore(cfg.store) if cfg.store else ensure_store(cfg.store_config(), quiet=quiet or rank != 0,
                                                                 build=rank == 0)
    if world > 1 and not cfg.store:
        dist.barrier()
        store = ensure_store(cfg.store_config(), quiet=True, build=False)
    task = get_task(cfg.task)
    if store.classes != list(task.classes):
        raise TinyRhythmError(f"{cfg.store}: store classes {store.classes} do not match task {cfg.task} {list(task.classes)}")
    train_idx = store.indices("train")
    if not len(train_idx) or not len(store.indices("val")):
        raise TinyRhythmError(f"{cfg.store}: store has no training or no validation windows")

    state = _prepare_out(out, cfg, store, resume, rank)
    if world > 1:
        dist.barrier()
    torch.manual_seed(cfg.seed)
    if model is None:
        model = initial_model(cfg, len(task.classes), store.window_length)
    model.to(device)
    teacher = None
    if cfg.teacher:
        check_settings(cfg.kd_alpha, cfg.kd_temperature)
        teacher = load_teacher(cfg.teacher, list(task.classes), store.fs, store.window_length, cfg.balanced).to(device)
    steps_per_epoch = -(-cfg.samples_per_epoch // (cfg.batch_size * world))
    opt, sched = _make_optimizer(cfg, model, steps_per_epoch * cfg.epochs)
    meta = {**run_metadata(cfg, store, model), **(extra_meta or {})}
    if rank == 0 and not resume:
        write_json_atomic(out / "config.json", meta)
    start_epoch, best, bad_epochs, history, train_seconds = 0, -1.0, 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, best, bad_epochs = int(state["epoch"]) + 1, float(state["best"]), int(state["bad_epochs"])
        history = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else []
        train_seconds = float(state["train_seconds"])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    counts = store.class_counts("train")
    weights = store.sample_weights("train", cfg.dataset_weights, cfg.dataset_size_power)
    if cfg.slow_af_weight != 1.0:
        task = get_task(cfg.task)
        weights = store.slow_weights(weights, "train", store.classes.index(task.label_map["AFIB"]), cfg.slow_af_weight,
                                     SLOW_AF_BPM)
    loss_weight = None
    if not cfg.balanced:
        w = counts.sum() / np.maximum(counts, 1) / len(counts)
        loss_weight = torch.tensor(w, dtype=torch.float32, device=device)
    noise = load_noise() if cfg.augment.noise_prob > 0 else None
    augment = Augmenter(cfg.augment, store.fs, noise)
    partners = store.lead_partners() if cfg.augment.lead_mix_prob > 0 else None
    val_weights = split_weights(store, "val", cfg.prior_weighting) if cfg.prior_correction else None

    from tqdm import tqdm

    step = start_epoch * steps_per_epoch
    if step_hook is not None and state is not None:
        step_hook(model, step)  # re-derive masks on resume: the checkpoint holds pruned weights
    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= cfg.patience:
            break
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch])
        p = weights / weights.sum() if cfg.balanced else None
        sample = rng.choice(train_idx, size=cfg.samples_per_epoch, replace=True, p=p)[rank::world]
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        torch.manual_seed(cfg.seed * 7919 + epoch)
        net.train()
        losses = []
        bar = tqdm(range(0, len(sample), cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   file=sys.stderr, disable=quiet or rank != 0, dynamic_ncols=True, leave=False)
        for i in bar:
            x, y = training_batch(store, sample[i : i + cfg.batch_size], augment, gen, partners)
            x, y = x.to(device), y.to(device)
            logits = net(x)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x)
                loss = distillation_loss(logits, t_logits, y, cfg.kd_alpha, cfg.kd_temperature)
            else:
                loss = F.cross_entropy(logits, y, weight=loss_weight, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step_hook is not None:
                step_hook(model, step)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        train_seconds += time.perf_counter() - t0
        stop = torch.zeros(1, device=device)  # NCCL broadcasts CUDA tensors only
        if rank == 0:
            if cfg.prior_correction and not record_level(store):
                # Select the epoch the final prior correction will do best with, not the one
                # whose uncorrected balance happens to suit the validation class mix.
                z, y_val = split_logits(model, store, "val", device)
                val = classification_report(y_val, z.argmax(1), store.classes)
                val["macro_f1_uncorrected"] = val["macro_f1"]
                val["macro_f1"] = prior_offsets(z, y_val, val_weights)[2]
            else:
                val = score_split(model, store, "val", device)
            # A gradual pruning schedule reaches its sparsity only part-way: earlier, denser
            # epochs must not be selected.
            eligible = getattr(step_hook, "ready", True)
            improved = eligible and val["macro_f1"] > best
            if improved:
                best, bad_epochs = val["macro_f1"], 0
                save_atomic(model.state_dict(), out / "model.pt")
            elif eligible:
                bad_epochs += 1
            row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_macro_f1": val["macro_f1"],
                   "val_cinc_score": val.get("cinc_score"), "lr": sched.get_last_lr()[0],
                   "seconds": round(time.perf_counter() - t0, 2), "best": improved}
            history.append(row)
            write_json_atomic(out / "history.json", history)
            save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "epoch": epoch, "best": best, "bad_epochs": bad_epochs, "train_seconds": train_seconds},
                        out / "checkpoint.pt")
            if not quiet:
                extra = f" cinc {val['cinc_score']:.3f}" if "cinc_score" in val else ""
                print(f"epoch {epoch + 1:3d}  loss {row['loss']:.4f}  val macro F1 {val['macro_f1']:.4f}{extra}"
                      f"{'  *' if improved else ''}  ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
            stop[0] = float(bad_epochs >= cfg.patience)
        if world > 1:
            dist.broadcast(stop, 0)
        if stop[0] > 0:
            break

    result = {}
    if rank == 0:
        model.load_state_dict(load_weights(out / "model.pt"))
        prior = None
        if cfg.prior_correction and isinstance(model, models.TinyRhythmCNN) and not record_level(store):
            prior = correct_priors(model, store, device, cfg.prior_weighting)
            save_atomic(model.state_dict(), out / "model.pt")
        result = {
            "model": cfg.model, "task": cfg.task, "epochs_run": len(history), "train_seconds": round(train_seconds, 1),
            "params_table": models.count_params_table(model),
            "macs": models.count_macs(model) if isinstance(model, models.TinyRhythmCNN) else None,
            "val": score_split(model, store, "val", device), "test": score_split(model, store, "test", device),
            **({"prior_correction": prior} if prior else {}),
        }
        write_json_atomic(out / "metrics.json", result)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result
