"""Typed training configuration, saved with every run so that it can be repeated."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TinyRhythmError


@dataclass
class AugmentConfig:
    noise_prob: float = 0.5  # add NSTDB noise (bw/em/ma) to this fraction of windows
    snr_db: tuple[float, float] = (0.0, 24.0)
    scale: tuple[float, float] = (0.5, 2.0)  # amplitude scaling, log-uniform
    invert_prob: float = 0.0  # lead polarity flip
    wander_prob: float = 0.3  # synthetic baseline wander
    wander_mv: float = 0.5
    wander_hz: tuple[float, float] = (0.05, 0.5)
    offset_mv: float = 0.0  # DC offset, uniform in +-offset_mv (real recorders: several mV)


@dataclass
class TrainConfig:
    model: str = "cnn3"
    task: str = "cinc2017"
    store: str = ""  # window store folder; empty: built from the settings below into the cache
    datasets: list[str] | None = None  # default: the task's own datasets (tinyrhythm.train.loop.DEFAULT_DATASETS)
    # Sampling weight of each dataset within a class (balanced sampling over several
    # datasets): every class equally likely, and within a class each dataset that has it
    # in proportion to its weight (default 1: datasets equal), then windows uniformly.
    dataset_weights: dict[str, float] | None = None
    lead: str | None = None  # lead of the multi-lead databases: index, name, or "both" (two views of one patient)
    conditioning: str = "none"  # input conditioning inside the model: "none" or "window" (models/cnn.py)
    # After training, fold per-class logit offsets chosen on validation macro F1 into the head
    # bias (train.loop.correct_priors): balanced sampling otherwise over-calls rare classes.
    prior_correction: bool = False
    fs: float = 62.5  # window sampling rate (Hz)
    input_length: int = 513  # window length (samples)
    hop: int = 64  # hop between training windows (samples); evaluation uses half-window hops
    purity: float = 0.9
    min_pad_fraction: float = 0.5  # shorter records are zero-padded if they hold this much of a window
    split_seed: int = 0
    split_by: str = "patient"  # "record" only to demonstrate training on a single patient
    epochs: int = 40
    samples_per_epoch: int = 8192  # windows drawn per epoch (class-balanced when `balanced`)
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-3
    schedule: str = "onecycle"  # onecycle | cosine | constant
    balanced: bool = True  # class-balanced sampling (else class-weighted loss)
    label_smoothing: float = 0.0
    dropout: float = 0.2
    patience: int = 15  # epochs without a better validation macro F1 before stopping
    seed: int = 0
    threads: int = 2  # CPU threads: 2 measured 1.7x faster than 1 on an idle 2-vCPU machine; use 1 per job when jobs share it
    device: str = "auto"  # auto | cpu | cuda
    # Start from these weights (run folder or zoo name) instead of a random initialisation.
    init: str = ""
    # Knowledge distillation (Hinton et al. 2015): with a teacher (run folder or zoo name) the
    # loss is kd_alpha * CE(labels) + (1 - kd_alpha) * T^2 * KL(teacher_T || student_T).
    teacher: str = ""
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TinyRhythmError(f"unknown training settings: {', '.join(sorted(unknown))}")
        aug = d.pop("augment", {}) or {}
        aug_known = {f.name for f in dataclasses.fields(AugmentConfig)}
        if set(aug) - aug_known:
            raise TinyRhythmError(f"unknown augment settings: {', '.join(sorted(set(aug) - aug_known))}")
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        return cls(**d, augment=AugmentConfig(**aug))

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise TinyRhythmError(f"{path}: config file not found") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise TinyRhythmError(f"{path}: not a valid training config ({exc})") from None
