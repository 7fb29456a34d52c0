"""One registry of named models: `create("cnn3", num_classes=4, input_length=513)`."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from ..errors import TinyRhythmError
from .cnn import CNNConfig, TinyRhythmCNN, count_macs, count_params_table

# name -> a CNNConfig of the family, or a builder (num_classes, input_length, **overrides) -> module
REGISTRY: dict[str, CNNConfig | Callable[..., torch.nn.Module]] = {}


def register_model(name: str, spec: CNNConfig | Callable[..., torch.nn.Module]) -> None:
    """Make a model known by name to `create`, training configs and `tinyrhythm models`: a member
    of the CNN family (its CNNConfig) or, for a new architecture in its own module, a builder
    function. Training, evaluation and ONNX/TFLite export take any torch module; the C export
    and the one-pass engine lower the CNN family's operators."""
    if name in REGISTRY:
        raise TinyRhythmError(f"model {name!r} is registered twice")
    REGISTRY[name] = spec


# (blocks, initial filters, s_j) from the study's table; "teacher" is the larger model
# used for distillation: CNN5's depth with twice its initial filters; cnn3-gap is CNN3's
# body with a global-average-pooling head, for longer inputs.
for _name, _cfg in {"cnn1": CNNConfig(8, 2, 8), "cnn2": CNNConfig(13, 2, 8), "cnn3": CNNConfig(11, 2, 4),
                    "cnn4": CNNConfig(13, 2, 4), "cnn5": CNNConfig(13, 4, 4), "teacher": CNNConfig(13, 8, 4),
                    "cnn3-gap": CNNConfig(11, 2, 4, head="gap")}.items():
    register_model(_name, _cfg)


def create(name: str, num_classes: int = 3, input_length: int = 513, **overrides) -> TinyRhythmCNN:
    """A new, untrained model of the family by registry name ("cnn1".."cnn5", "cnn3-gap").

    num_classes, input_length: the head's size; overrides: any CNNConfig field (e.g.
    conditioning="window"). Returns a TinyRhythmCNN taking [batch, 1, input_length] mV, giving logits."""
    try:
        spec = REGISTRY[name]
    except KeyError:
        raise TinyRhythmError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}") from None
    if not isinstance(spec, CNNConfig):
        return spec(num_classes=num_classes, input_length=input_length, **overrides)
    return TinyRhythmCNN(replace(spec, num_classes=num_classes, input_length=input_length, **overrides))


def from_config(d: dict) -> TinyRhythmCNN:
    """A model from the architecture saved in a run's config.json (pruned widths included)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(CNNConfig)}
    kw = {k: v for k, v in d.items() if k in fields}
    if kw.get("mid_channels") is not None:
        kw["mid_channels"] = tuple(kw["mid_channels"])
    return TinyRhythmCNN(CNNConfig(**kw))


def describe(name: str, num_classes: int = 3, input_length: int = 513) -> dict:
    """A registry model's configuration, parameter counts (the study's way and trainable) and MACs per window."""
    model = create(name, num_classes, input_length)
    cfg = getattr(model, "config", None)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "name": name, "blocks": getattr(cfg, "blocks", None), "initial_filters": getattr(cfg, "initial_filters", None),
        "s_j": getattr(cfg, "s_j", None), "params_table": count_params_table(model), "params_trainable": trainable,
        "macs": count_macs(model) if isinstance(model, TinyRhythmCNN) else None,
        "float32_bytes": 4 * trainable, "num_classes": num_classes, "input_length": input_length,
        "final_length": getattr(model, "final_length", None), "final_channels": getattr(model, "final_channels", None),
    }


__all__ = ["REGISTRY", "register_model", "CNNConfig", "TinyRhythmCNN", "create", "describe", "from_config", "count_macs", "count_params_table"]
