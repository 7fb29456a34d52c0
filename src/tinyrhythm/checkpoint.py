"""Writing and reading model files: atomic writes, `weights_only=True` loads, SHA-256 checked.

A run folder's `config.json` (its card) records the SHA-256 of every weights file saved into
the folder (`weights_sha256`), and loading refuses a file whose hash differs or is not
recorded: a corrupt or swapped `model.pt` is an error, never a model that quietly predicts.
Zoo models are checked against their cards the same way (tinyrhythm.zoo).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .errors import DataError
from .paths import sha256_file, write_atomic

HASHES = "weights_sha256"


def _card(path: Path) -> tuple[Path, dict | None]:
    cfg = path.parent / "config.json"
    if not cfg.is_file():
        return cfg, None
    try:
        card = json.loads(cfg.read_text())
    except (ValueError, UnicodeDecodeError):
        raise DataError(cfg, "malformed run card (not JSON)") from None
    if not isinstance(card, dict):
        raise DataError(cfg, "malformed run card (not a JSON object)")
    return cfg, card


def record_hash(path: str | os.PathLike) -> None:
    """Record a weights file's SHA-256 in its folder's config.json (when the folder has one)."""
    path = Path(path)
    cfg, card = _card(path)
    if card is None:
        return
    card.setdefault(HASHES, {})[path.name] = sha256_file(path)
    write_atomic(cfg, json.dumps(card, indent=2, sort_keys=False) + "\n")


def save_atomic(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    record_hash(path)


def verify(path: str | os.PathLike) -> None:
    """Refuse a weights file of a run folder whose SHA-256 is not the one its card records."""
    path = Path(path)
    cfg, card = _card(path)
    if card is None:
        return
    want = (card.get(HASHES) or {}).get(path.name) if isinstance(card.get(HASHES), dict) else None
    if want is None:
        raise DataError(path, f"no SHA-256 recorded for it in {cfg.name} ({HASHES}): a run made before tinyrhythm "
                              "recorded them, or an edited one; retrain it")
    if sha256_file(path) != want:
        raise DataError(path, f"SHA-256 does not match {cfg.name}: file corrupt or tampered")


def load_weights(path: str | os.PathLike) -> dict:
    """Load tensors only: a model file that would run code is refused by torch."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    verify(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise DataError(path, f"unreadable or unsafe model file ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
