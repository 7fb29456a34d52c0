"""Pretrained models shipped inside the package, each with a model card (JSON).

A card names its weights file and their SHA-256; tinyrhythm.runtime.load_model loads them
only after the hash matches, and always with `weights_only=True`. This package is data:
the cards and weights, read by the runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

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
