from collections import Counter

from tinyrhythm.datasets.split import SPLITS, assign_split


def test_split_fractions_and_determinism():
    ids = [f"icentia11k/{i:05d}" for i in range(11000)]
    splits = [assign_split(p) for p in ids]
    c = Counter(splits)
    for name, frac in zip(SPLITS, (0.64, 0.16, 0.20)):
        assert abs(c[name] / len(ids) - frac) < 0.015, c
    assert splits == [assign_split(p) for p in ids]  # deterministic
    assert splits != [assign_split(p, seed=1) for p in ids]  # the seed matters


def test_adding_patients_moves_nobody():
    before = {p: assign_split(p) for p in (f"cinc2017/A{i:05d}" for i in range(1000))}
    after = {p: assign_split(p) for p in (f"cinc2017/A{i:05d}" for i in range(3000))}
    assert all(after[p] == s for p, s in before.items())
