"""Pretrained models shipped inside the package, each with a model card (JSON).

A card names its weights file and their SHA-256; weights are loaded only after the hash
matches, and always with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import DataError, TinyRhythmError

ZOO_DIR = Path(__file__).parent
# What `monitor` and `report` run when no model is named: the recorder-independent int8 model.
DEFAULT_RHYTHM_MODEL = "rhythm-cnn3-int8"
CARDS_DIR = ZOO_DIR / "cards"
WEIGHTS_DIR = ZOO_DIR / "weights"


def cards() -> dict[str, dict]:
    out = {}
    for path in sorted(CARDS_DIR.glob("*.json")):
        card = json.loads(path.read_text())
        out[card["name"]] = card
    return out


def names() -> list[str]:
    return list(cards())


def listing() -> list[dict]:
    keys = ("name", "task", "labels", "params_table", "weight_bytes", "sha256", "metrics", "fs", "input_length",
            "architecture", "format", "parent")
    return [{k: c.get(k) for k in keys} for c in cards().values()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(name: str):
    """A shipped model by name (SHA-256 of its weights checked against its card) as a LoadedModel."""
    # torch is imported here, not at module level: the CLI reads DEFAULT_RHYTHM_MODEL at start-up.
    from .. import models
    from ..checkpoint import load_weights
    from ..inference import LoadedModel

    all_cards = cards()
    if name not in all_cards:
        raise TinyRhythmError(f"unknown zoo model {name!r}; known: {', '.join(all_cards) or 'none'}")
    card = all_cards[name]
    wpath = WEIGHTS_DIR / card["weights"]
    if not wpath.is_file():
        raise DataError(wpath, "zoo weights missing from the installed package")
    digest = sha256(wpath)
    if digest != card["sha256"]:
        raise DataError(wpath, f"SHA-256 {digest[:12]}... does not match the model card ({card['sha256'][:12]}...): file corrupt or tampered")
    if card.get("format") == "onnx":  # int8 (or fp16) models run in ONNX Runtime
        from ..export.onnx import OrtModule

        model = OrtModule(wpath)
    else:
        model = models.from_config({**card.get("model_config", {}), "num_classes": len(card["labels"]),
                                    "input_length": card["input_length"]}) if card.get("model_config") else \
            models.create(card["architecture"], num_classes=len(card["labels"]), input_length=card["input_length"])
        model.load_state_dict(load_weights(wpath))
        model.eval()
    meta = {"task": {"name": card["task"]}, "card": card}
    return LoadedModel(name, model, list(card["labels"]), float(card["fs"]), int(card["input_length"]), meta)
