"""Patient-level split 64/16/20 from a hash of the patient id.

Each patient's split depends only on its own id and the seed, so adding patients
never moves another one, and every machine that builds a shard agrees.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")
FRACTIONS = (0.64, 0.16, 0.20)


def patient_unit(patient_id: str, seed: int = 0) -> float:
    """A number in [0, 1) that is uniform over patients and fixed for (id, seed)."""
    digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(patient_id: str, seed: int = 0, fractions: tuple[float, float, float] = FRACTIONS) -> str:
    u = patient_unit(patient_id, seed)
    edge = 0.0
    for name, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]
