"""Pruning: unstructured magnitude pruning (one-shot or gradual) and structured channel pruning.

- `magnitude`: zero the smallest weights of every convolution and of the dense head at once,
  per layer or with one global threshold, then fine-tune with the mask held.
- `gradual`: the polynomial schedule of Zhu & Gupta 2017, s_t = s_f (1 - (1 - t/n)^3), over the
  first 70 % of fine-tuning, masks recomputed a few times per epoch.
- `channel`: remove the inner channels of every residual block (the first block's too) for
  real: the model is rebuilt narrower, so parameters, MACs and latency fall. The residual
  stream and its zero-padded shortcuts are left intact, which is what keeps the surgery
  exact; a channel's importance is |BN gamma| / sqrt(var) times the L1 norm of the next
  convolution's weights that read it (how strongly the rest of the network listens to it).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import shutil
from dataclasses import dataclass

import torch
from torch import nn

from ..checkpoint import load_weights, save_atomic
from ..errors import TinyRhythmError
from ..models import count_macs, count_params_table
from ..models.cnn import TinyRhythmCNN
from ..evaluate.scoring import score_split
from ..train.config import TrainConfig, training_store
from ..train.loop import run_metadata, train
from ..paths import write_json_atomic
from . import float_parent
from .quantize import torch_latency_ms

METHODS = ("magnitude", "gradual", "channel")
SCOPES = ("layer", "global")


@dataclass
class PruneConfig:
    method: str = "magnitude"
    sparsity: float = 0.5
    scope: str = "layer"  # unstructured only: per-layer or one global threshold
    finetune_epochs: int = 8
    lr: float = 5e-4
    seed: int = 0
    threads: int = 1

    def check(self) -> None:
        if self.method not in METHODS:
            raise TinyRhythmError(f"unknown pruning method {self.method!r} (known: {', '.join(METHODS)})")
        if self.scope not in SCOPES:
            raise TinyRhythmError(f"unknown pruning scope {self.scope!r} (known: {', '.join(SCOPES)})")
        if not 0.0 <= self.sparsity < 1.0 or math.isnan(self.sparsity):
            raise TinyRhythmError(f"sparsity must lie in [0, 1) (a fraction, 0.5 = 50 %), got {self.sparsity}")
        if self.finetune_epochs < 0:
            raise TinyRhythmError(f"finetune epochs must be >= 0, got {self.finetune_epochs}")
        if self.method == "gradual" and self.finetune_epochs < 1:
            raise TinyRhythmError("gradual pruning happens during fine-tuning: --finetune-epochs must be >= 1")


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weights of the convolutions and the dense head (biases and BatchNorm are tiny and kept)."""
    return {f"{n}.weight": m.weight for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Linear))}


def magnitude_masks(model: nn.Module, sparsity: float, scope: str) -> dict[str, torch.Tensor]:
    params = prunable(model)
    if sparsity <= 0:
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    if scope == "global":
        allw = torch.cat([p.detach().abs().flatten() for p in params.values()])
        k = int(round(sparsity * allw.numel()))
        thresh = torch.kthvalue(allw, k).values if k > 0 else allw.min() - 1
        return {n: p.detach().abs() > thresh for n, p in params.items()}
    masks = {}
    for n, p in params.items():
        w = p.detach().abs().flatten()
        k = int(round(sparsity * w.numel()))
        masks[n] = p.detach().abs() > torch.kthvalue(w, k).values if k > 0 else torch.ones_like(p, dtype=torch.bool)
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    params = prunable(model)
    with torch.no_grad():
        for n, m in masks.items():
            params[n].mul_(m)


class MaskHook:
    """Held after every optimizer step; for `gradual` the target sparsity rises on the
    Zhu & Gupta schedule and the masks are recomputed every `every` steps."""

    def __init__(self, cfg: PruneConfig, total_steps: int, steps_per_epoch: int):
        self.cfg, self.masks = cfg, None
        self.end = max(1, int(0.7 * total_steps)) if cfg.method == "gradual" else 0
        self.every = max(1, steps_per_epoch // 4)
        self.ready = cfg.method != "gradual"

    def target(self, step: int) -> float:
        if self.cfg.method != "gradual" or step >= self.end:
            return self.cfg.sparsity
        return self.cfg.sparsity * (1 - (1 - step / self.end) ** 3)

    def __call__(self, model: nn.Module, step: int) -> None:
        if self.masks is None or (self.cfg.method == "gradual" and step <= self.end and step % self.every == 0):
            self.masks = magnitude_masks(model, self.target(step), self.cfg.scope)
        self.ready = self.cfg.method != "gradual" or step >= self.end
        apply_masks(model, self.masks)


def _inner_groups(model) -> list[tuple[nn.Conv1d, nn.BatchNorm1d, nn.Conv1d]]:
    groups = [(model.first_conv1, model.first_bn, model.first_conv2)]
    groups += [(b.conv1, b.bn2, b.conv2) for b in model.blocks]
    return groups


def channel_prune(model, sparsity: float):
    """A new, narrower model with the least important inner channels removed."""
    keep_idx, widths = [], []
    for conv_a, bn, conv_b in _inner_groups(model):
        gain = (bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps))
        listen = conv_b.weight.detach().abs().sum(dim=(0, 2))
        score = gain * listen
        n = conv_a.out_channels
        keep = max(1, int(round(n * (1 - sparsity))))
        idx = torch.sort(torch.argsort(score, descending=True)[:keep]).values
        keep_idx.append(idx)
        widths.append(keep)
    cfg = dataclasses.replace(model.config, mid_channels=tuple(widths))
    new = TinyRhythmCNN(cfg)
    new.load_state_dict(_sliced_state(model, new, keep_idx))
    return new


def _sliced_state(old, new, keep_idx) -> dict:
    state = {k: v.clone() for k, v in old.state_dict().items()}
    old_groups = _inner_groups(old)
    names = {id(m): n for n, m in old.named_modules()}
    for (a, bn, b), idx in zip(old_groups, keep_idx):
        na, nbn, nb = names[id(a)], names[id(bn)], names[id(b)]
        state[f"{na}.weight"] = a.weight.detach()[idx].clone()
        state[f"{na}.bias"] = a.bias.detach()[idx].clone()
        for key in ("weight", "bias", "running_mean", "running_var"):
            state[f"{nbn}.{key}"] = getattr(bn, key).detach()[idx].clone()
        state[f"{nb}.weight"] = b.weight.detach()[:, idx].clone()
    return state


def size_report(model: nn.Module) -> dict:
    """Nonzero parameters, dense float32 bytes, sparse bytes (nonzero values + a 1-bit-per-weight
    bitmap for the pruned tensors), dense MACs and the MACs of nonzero weights only."""
    params = prunable(model)
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    pr_total = sum(p.numel() for p in params.values())
    pr_nonzero = sum(int((p != 0).sum()) for p in params.values())
    other = total - pr_total
    macs, sparse_macs = count_macs(model), count_macs(model, nonzero_only=True)
    return {
        "params": total, "params_table": count_params_table(model), "nonzero_params": nonzero,
        "sparsity": round(1 - pr_nonzero / pr_total, 4),
        "dense_bytes": 4 * total, "sparse_bytes": 4 * (pr_nonzero + other) + math.ceil(pr_total / 8),
        "macs": macs, "sparse_macs": sparse_macs,
    }


def prune(parent: str, out: str | os.PathLike, cfg: PruneConfig, store: str | None = None, quiet: bool = False,
          force: bool = False) -> dict:
    """Prune a run folder or zoo model into the run folder `out` (fine-tuned there); returns its metrics."""
    cfg.check()
    torch.set_num_threads(max(1, cfg.threads))
    lm, out = float_parent(parent, out, force, "pruned")
    ws = training_store(lm, store)
    parent_model = lm.model.eval()
    base = lm.card.train or {}
    tcfg = TrainConfig.from_dict({**base, "store": str(ws.path), "epochs": max(cfg.finetune_epochs, 1), "lr": cfg.lr,
                                  "schedule": "cosine", "seed": cfg.seed, "threads": cfg.threads, "init": "",
                                  "teacher": "", "patience": max(cfg.finetune_epochs, 1)})
    torch.manual_seed(cfg.seed)
    model = channel_prune(parent_model, cfg.sparsity) if cfg.method == "channel" else copy.deepcopy(parent_model)
    hook = None
    if cfg.method != "channel":
        steps_per_epoch = -(-tcfg.samples_per_epoch // tcfg.batch_size)
        hook = MaskHook(cfg, steps_per_epoch * tcfg.epochs, steps_per_epoch)
        hook(model, 0)
    extra = {"pruning": dataclasses.asdict(cfg), "parent": str(parent)}
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    if cfg.finetune_epochs > 0:
        train(tcfg, work, quiet=quiet, model=model, step_hook=hook, extra_meta=extra)
        model.load_state_dict(load_weights(work / "model.pt"))
    else:
        work.mkdir(parents=True)
        write_json_atomic(work / "config.json", {**run_metadata(tcfg, ws, model), **extra})
        save_atomic(model.state_dict(), work / "model.pt")
    model.eval()
    cpu = torch.device("cpu")
    result = {
        "parent": str(parent), "method": cfg.method, "scope": cfg.scope, "target_sparsity": cfg.sparsity,
        **size_report(model), "parent_size": size_report(parent_model),
        "latency_ms": round(torch_latency_ms(model, lm.input_length), 4),
        "parent_latency_ms": round(torch_latency_ms(parent_model, lm.input_length), 4),
        "val": score_split(model, ws, "val", cpu), "test": score_split(model, ws, "test", cpu),
        "parent_val": score_split(parent_model, ws, "val", cpu), "parent_test": score_split(parent_model, ws, "test", cpu),
    }
    write_json_atomic(work / "metrics.json", result)
    if out.exists():
        out.rmdir()
    os.replace(work, out)
    return result
