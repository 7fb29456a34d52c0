"""Typed training configuration, saved with every run so that it can be repeated."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TinyRhythmError
from ..evaluate.scoring import PRIOR_WEIGHTING
from ..models import REGISTRY
from ..tasks import get_task
from ..windows.cache import default_datasets, ensure_store
from ..windows.labelling import WindowConfig
from ..windows.schema import BuildConfig
from ..windows.store import WindowStore

SLOW_AF_BPM = 80.0  # below it validation AF recall falls from 61-86 % to 35 % (README, "Slow AF")


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
    # Time stretch: a window read at `rate` samples per sample (uniform in the range) from a random
    # start, so its heart rate falls by that factor. Slower only: a window holds no samples past
    # its end. Training AF is mostly fast (README, "Slow AF").
    stretch_prob: float = 0.0
    stretch: tuple[float, float] = (0.7, 1.0)
    # A slower recorder's bandwidth: a zero-phase 4th-order Butterworth low-pass at a cutoff uniform
    # in `lowpass_hz`, after noise and wander (the recorder filters them too). Off in the recipes:
    # it buys robustness below 15 Hz at a cost on full-bandwidth ECG (README, "Recorder bandwidth").
    lowpass_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (12.0, 31.25)
    # Another lead: a window of a two-lead record (`lead: "both"`) replaced by cos(a) x + sin(a) y,
    # y the same moment in the record's other lead, a uniform in +-lead_mix_deg: the ECG as an
    # electrode pair at another angle to the heart sees it, a recorder's lead that no training
    # set recorded. First, before every other augmentation: it is a property of the ECG itself.
    # +-30 deg, as in the CPU recipe: +-60 cost validation F1 where 30 gained (README, "Lead mixing").
    lead_mix_prob: float = 0.0
    lead_mix_deg: float = 30.0


@dataclass
class TrainConfig:
    model: str = "cnn3"
    task: str = "cinc2017"
    store: str = ""  # window store folder; empty: built from the settings below into the cache
    datasets: list[str] | None = None  # default: the task's own datasets (tinyrhythm.windows.cache.DEFAULT_DATASETS)
    # Sampling weight of each dataset within a class (balanced sampling over several
    # datasets): every class equally likely, and within a class each dataset that has it
    # in proportion to its weight (default 1: datasets equal), then windows uniformly.
    dataset_weights: dict[str, float] | None = None
    # ... times that dataset's window count of the class to this power (WindowStore.sample_weights):
    # 0 every dataset equal, 1 windows pooled, 0.5 between, so that a source with a handful of
    # windows of a class is not repeated thousands of times per epoch.
    dataset_size_power: float = 0.0
    # AF windows with a ventricular rate below SLOW_AF_BPM (R peaks of the stored window) drawn this
    # many times as often as faster ones, the AF class's share unchanged: training AF is mostly
    # fast, and slow AF (rate-controlled patients) is what the models miss (README, "Slow AF").
    slow_af_weight: float = 1.0
    lead: str | None = None  # lead of the multi-lead databases: index, name, or "both" (two views of one patient)
    conditioning: str = "none"  # input conditioning inside the model: "none" or "window" (models/cnn.py)
    # After training, fold per-class logit offsets chosen on validation macro F1 into the head
    # bias (evaluate.scoring.correct_priors): balanced sampling otherwise over-calls rare classes.
    prior_correction: bool = False
    # How validation windows count in that choice (evaluate.scoring.split_weights): "windows"
    # (each once, the zoo's choice) or "datasets" (every source the same total weight; README,
    # "Calibration": more AF found on every recorder, noise over-called on some).
    prior_weighting: str = "windows"
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
        if not isinstance(aug, dict):
            raise TinyRhythmError(f"training setting 'augment': expected an object of settings, got {aug!r}")
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        cfg = cls(**d, augment=AugmentConfig(**aug))
        cfg.validate()
        return cfg

    def validate(self) -> "TrainConfig":
        """Every setting's type and range, named in the error: checked before anything is built."""
        for key, (kind, lo, hi) in RANGES.items():
            _check(key, getattr(self, key), kind, lo, hi)
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise TinyRhythmError(f"training setting {key!r}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")
        if self.datasets is not None and (not isinstance(self.datasets, list) or not self.datasets
                                          or not all(isinstance(x, str) for x in self.datasets)):
            raise TinyRhythmError(f"training setting 'datasets': expected a list of dataset names, got {self.datasets!r}")
        if self.dataset_weights is not None:
            if not isinstance(self.dataset_weights, dict):
                raise TinyRhythmError(f"training setting 'dataset_weights': expected an object, got {self.dataset_weights!r}")
            for name, w in self.dataset_weights.items():
                _check(f"dataset_weights.{name}", w, float, 0.0, None)
        if self.lead is not None and (isinstance(self.lead, bool) or not isinstance(self.lead, (str, int))):
            raise TinyRhythmError(f"training setting 'lead': expected an index or a name, got {self.lead!r}")
        for key in ("model", "task", "store", "init", "teacher"):
            if not isinstance(getattr(self, key), str):
                raise TinyRhythmError(f"training setting {key!r}: expected a string, got {getattr(self, key)!r}")
        for key, (kind, lo, hi) in AUGMENT_RANGES.items():
            value = getattr(self.augment, key)
            if kind is tuple:
                if not isinstance(value, tuple) or len(value) != 2:
                    raise TinyRhythmError(f"training setting 'augment.{key}': expected [low, high], got {list(value) if isinstance(value, tuple) else value!r}")
                for v in value:
                    _check(f"augment.{key}", v, float, lo, hi)
                if value[0] > value[1]:
                    raise TinyRhythmError(f"training setting 'augment.{key}': low {value[0]} above high {value[1]}")
            else:
                _check(f"augment.{key}", value, kind, lo, hi)
        if self.model not in REGISTRY:
            raise TinyRhythmError(f"training setting 'model': unknown model {self.model!r}; known: {', '.join(REGISTRY)}")
        get_task(self.task)
        return self

    def store_config(self) -> BuildConfig:
        """The window store these settings train on (built in the cache by windows.cache.ensure_store)."""
        window = WindowConfig(fs=self.fs, length=self.input_length, hop=self.hop, purity=self.purity,
                              min_pad_fraction=self.min_pad_fraction)
        return BuildConfig(datasets=default_datasets(self.task, self.datasets), task=self.task, window=window,
                           split_seed=self.split_seed, split_by=self.split_by, lead=self.lead)

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TinyRhythmError(f"{path}: config file not found") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise TinyRhythmError(f"{path}: not a valid training config (not JSON: {str(exc)[:120]})") from None
        if not isinstance(d, dict):
            raise TinyRhythmError(f"{path}: not a valid training config (a JSON object of settings expected)")
        try:
            return cls.from_dict(d)
        except TinyRhythmError as exc:
            raise TinyRhythmError(f"{path}: {exc}") from None
        except TypeError as exc:
            raise TinyRhythmError(f"{path}: not a valid training config ({exc})") from None


def _check(key: str, value, kind: type, lo: float | None, hi: float | None) -> None:
    ok_type = (isinstance(value, int) if kind is int else isinstance(value, (int, float))) and not isinstance(value, bool)
    if kind is bool:
        ok_type = isinstance(value, bool)
    if not ok_type:
        raise TinyRhythmError(f"training setting {key!r}: expected {'an integer' if kind is int else 'a number' if kind is float else 'true or false'}, got {value!r}")
    if kind is bool:
        return
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise TinyRhythmError(f"training setting {key!r}: {value!r} is not {bounds}")


# (type, lowest, highest) of each numeric or boolean setting; None: unbounded.
RANGES = {
    "epochs": (int, 1, None), "samples_per_epoch": (int, 1, None), "batch_size": (int, 1, None),
    "patience": (int, 1, None), "seed": (int, 0, None), "split_seed": (int, 0, None), "threads": (int, 1, 1024),
    "input_length": (int, 16, 1 << 20), "hop": (int, 1, 1 << 20), "lr": (float, 1e-12, 10.0),
    "weight_decay": (float, 0.0, None), "fs": (float, 1.0, 10_000.0), "purity": (float, 0.5, 1.0),
    "min_pad_fraction": (float, 0.0, 1.0), "label_smoothing": (float, 0.0, 0.99), "dropout": (float, 0.0, 0.99),
    "kd_alpha": (float, 0.0, 1.0), "kd_temperature": (float, 1e-3, 1e3), "balanced": (bool, None, None),
    "prior_correction": (bool, None, None), "dataset_size_power": (float, 0.0, 1.0),
    "slow_af_weight": (float, 0.0, 1000.0),
}
CHOICES = {
    "optimizer": ("adamw", "adam"), "schedule": ("onecycle", "cosine", "constant"), "split_by": ("patient", "record"),
    "device": ("auto", "cpu", "cuda"), "conditioning": ("none", "window"),
    "prior_weighting": PRIOR_WEIGHTING,
}
AUGMENT_RANGES = {
    "noise_prob": (float, 0.0, 1.0), "invert_prob": (float, 0.0, 1.0), "wander_prob": (float, 0.0, 1.0),
    "stretch_prob": (float, 0.0, 1.0), "stretch": (tuple, 0.25, 1.0),
    "lowpass_prob": (float, 0.0, 1.0), "lowpass_hz": (tuple, 1.0, 10_000.0),
    "lead_mix_prob": (float, 0.0, 1.0), "lead_mix_deg": (float, 0.0, 180.0),
    "wander_mv": (float, 0.0, 100.0), "offset_mv": (float, 0.0, 1000.0),
    "snr_db": (tuple, -40.0, 100.0), "scale": (tuple, 1e-3, 1e3), "wander_hz": (tuple, 1e-3, 100.0),
}


def training_store(lm, store: str | None = None) -> WindowStore:
    """The window store to score a loaded model on: the one given, else the one its card says it
    was trained on (rebuilt in the cache from its training settings when that folder is gone)."""
    train_cfg = lm.card.train
    if store:
        ws = WindowStore(store)
    elif train_cfg and train_cfg.get("store") and Path(train_cfg["store"]).is_dir():
        ws = WindowStore(train_cfg["store"])
    elif train_cfg:
        ws = ensure_store(TrainConfig.from_dict({**train_cfg, "store": ""}).store_config())
    else:
        raise TinyRhythmError(f"{lm.name}: no training config to find its data; pass --store")
    if ws.classes != lm.classes or abs(ws.fs - lm.fs) > 1e-9 or ws.window_length != lm.input_length:
        raise TinyRhythmError(f"{ws.path}: store ({ws.classes}, {ws.fs} Hz, {ws.window_length} samples) does not fit "
                              f"model ({lm.classes}, {lm.fs} Hz, {lm.input_length} samples)")
    return ws
