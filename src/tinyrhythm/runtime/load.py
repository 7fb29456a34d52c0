"""`load_model(name_or_path)`: a run folder, a zoo name, an export folder or an exported
.tflite/.onnx file, through one backend per format.

Every backend gives a torch module (float windows [batch, 1, length] in mV, logits out), so
prediction, evaluation and monitoring run every format unchanged; `LoadedModel` adds the
uniform verbs: probabilities, latency, sizes. A new format is one `@register_backend`.
Model files are hash-checked before they are opened and PyTorch weights are loaded with
`weights_only=True` (tinyrhythm.checkpoint): no model file can run code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import models, zoo
from ..checkpoint import load_weights
from ..errors import DataError, TinyRhythmError
from ..paths import sha256_file
from . import fbgemm, ort, tflite
from .card import ModelCard, read_json

# format -> loader(card, folder) -> torch module
BACKENDS: dict[str, Callable[[ModelCard, Path], torch.nn.Module]] = {}


def register_backend(fmt: str):
    """Decorator: the loader of one model file format."""
    def deco(fn):
        BACKENDS[fmt] = fn
        return fn
    return deco


@dataclass
class LoadedModel:
    """A model ready to run: the module, its card, and the card's facts at hand."""

    name: str
    model: torch.nn.Module
    card: ModelCard

    @property
    def classes(self) -> list[str]:
        return list(self.card.classes)

    @property
    def fs(self) -> float:
        return self.card.fs

    @property
    def input_length(self) -> int:
        return self.card.input_length

    @property
    def task(self) -> str:
        return self.card.task

    @torch.no_grad()
    def predict_proba(self, windows: np.ndarray, batch: int = 2048) -> np.ndarray:
        """Class probabilities [n, classes] of windows [n, input_length] (mV at the card's rate)."""
        out = [torch.softmax(self.model(torch.from_numpy(np.asarray(windows[i:i + batch], np.float32)).unsqueeze(1)),
                             dim=1).numpy() for i in range(0, len(windows), batch)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def latency_ms(self, repeats: int = 200) -> float:
        """Median milliseconds for one window (batch 1) on the current thread setting."""
        return fbgemm.torch_latency_ms(self.model, self.input_length, repeats)

    def sizes(self) -> dict:
        """weight_bytes (the constants as stored in this format) and file_bytes where a file backs it."""
        path = getattr(self.model, "path", None)
        out = {"format": self.card.format}
        if self.card.format == "onnx":
            out["weight_bytes"] = ort.weight_bytes(path)["total"]
        elif self.card.format == "tflite":
            out["weight_bytes"] = tflite.weight_bytes(path)
        elif self.card.format == "fbgemm":
            out["weight_bytes"] = fbgemm.torch_int8_bytes(self.model)
        else:
            out["weight_bytes"] = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        if path is not None:
            out["file_bytes"] = Path(path).stat().st_size
        return out


def _checked_file(card: ModelCard, folder: Path) -> Path:
    """The card's model file, refused when missing or when its SHA-256 differs from the card's."""
    path = folder / (card.weights or "")
    if not card.weights or not path.is_file():
        raise DataError(path, "model file not found")
    if card.sha256 is not None and sha256_file(path) != card.sha256:
        raise DataError(path, f"SHA-256 does not match the model card ({card.sha256[:12]}...): file corrupt or tampered")
    return path


def _architecture(card: ModelCard) -> torch.nn.Module:
    arch = dict(card.architecture or {})
    try:
        # An early zoo card names a registry model only; so does a run of a registered builder.
        named = set(arch) <= {"name"} and (card.source == "zoo"
                                           or not isinstance(models.REGISTRY.get(arch.get("name")), models.CNNConfig))
        if named:
            return models.create(arch.get("name", ""), num_classes=len(card.classes), input_length=card.input_length)
        return models.from_config({**arch, "num_classes": len(card.classes), "input_length": card.input_length})
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(card.card_path or card.name, f"invalid model section ({exc})") from None


@register_backend("torch")
def _torch(card: ModelCard, folder: Path) -> torch.nn.Module:
    path = _checked_file(card, folder)  # a run's weights are checked against their recorded hash on loading
    model = _architecture(card)
    try:
        model.load_state_dict(load_weights(path))
    except RuntimeError as exc:
        raise DataError(path, f"weights do not fit model {(card.architecture or {}).get('name', '?')} "
                              f"({str(exc).splitlines()[0]})") from None
    return model.eval()


@register_backend("onnx")
def _onnx(card: ModelCard, folder: Path) -> torch.nn.Module:
    return ort.OrtModule(_checked_file(card, folder))


@register_backend("fbgemm")
def _fbgemm(card: ModelCard, folder: Path) -> torch.nn.Module:
    parent = _architecture(card)
    parent.load_state_dict(load_weights(folder / "parent.pt"))
    prepared = fbgemm.prepare_torch(parent.eval(), card.input_length, qat=(card.quantization or {}).get("method") == "qat")
    prepared.load_state_dict(load_weights(folder / "prepared.pt"))
    return fbgemm.convert_torch(prepared)


@register_backend("tflite")
def _tflite(card: ModelCard, folder: Path) -> torch.nn.Module:
    return tflite.TfliteModule(_checked_file(card, folder))


def _export_form(folder: Path) -> str:
    """The form an export folder is loaded as: the int8 file its format wrote."""
    fmt = read_json(folder / "export_report.json", "export report").get("format")
    name = "model-int8.tflite" if fmt == "tflite" else "model-int8.onnx"
    if not (folder / name).is_file():
        raise DataError(folder / name, "model file not found")
    return name


def card_of(name_or_path: str | os.PathLike) -> tuple[ModelCard, Path]:
    """The card of a run folder, zoo name, export folder or exported model file, and its folder."""
    p = Path(name_or_path)
    if p.is_dir():
        if (p / "config.json").is_file() or not (p / "export_report.json").is_file():
            return ModelCard.from_run(p), p
        return ModelCard.from_export(p, _export_form(p)), p
    if p.is_file() and p.suffix in (".tflite", ".onnx"):
        if (p.parent / "config.json").is_file():  # the model file of a quantized run folder
            card = ModelCard.from_run(p.parent)
            if card.weights == p.name:
                return card, p.parent
        return ModelCard.from_export(p.parent, p.name), p.parent
    name = str(name_or_path)
    all_cards = zoo.cards()
    if name in all_cards:
        return ModelCard.from_zoo(all_cards[name], zoo.CARDS_DIR / f"{name}.json"), zoo.WEIGHTS_DIR
    raise TinyRhythmError(f"{name_or_path}: neither a run folder, an exported model nor a zoo model "
                          f"(zoo: {', '.join(all_cards) or 'empty'})")


def load_model(name_or_path: str | os.PathLike) -> LoadedModel:
    """A model ready to run, from a run folder, a zoo name, an export folder or a .tflite/.onnx
    file that `export` wrote; its card says which backend runs it."""
    card, folder = card_of(name_or_path)
    model = BACKENDS[card.format](card, folder)
    return LoadedModel(card.name, model, card)
