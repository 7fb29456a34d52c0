"""Store-building throughput on the shared Icentia11k segments, against merely reading them.

Prints MB of raw signal (.dat bytes) per second per core for (a) `wfdb.rdrecord` alone
and (b) building a window store (read + annotations + resample + label + write +
consolidate), their ratio, and the time that rate implies for all of Icentia11k.

    TINYRHYTHM_DATA=../shared/data python benchmarks/store_build.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import wfdb

from tinyrhythm.datasets import Icentia11k
from tinyrhythm.windows import WindowConfig
from tinyrhythm.windows.build import build_store
from tinyrhythm.windows.schema import BuildConfig

ICENTIA_SEGMENTS = 541_794
SEGMENT_BYTES = 1_048_577 * 2  # format 16


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ds = Icentia11k()
    heas = [h for p in ds.patients() for h in ds.record_paths(p)]
    mb = sum(os.path.getsize(h.with_suffix(".dat")) for h in heas) / 1e6
    print(f"records: {len(heas)} Icentia11k segments, {mb:.1f} MB of raw signal (.dat)")

    t_read = best_of(lambda: [wfdb.rdrecord(str(h.with_suffix(""))) for h in heas], args.repeats)
    t_read_ann = best_of(lambda: [(wfdb.rdrecord(str(h.with_suffix(""))), wfdb.rdann(str(h.with_suffix("")), "atr"))
                                  for h in heas], args.repeats)
    print(f"wfdb.rdrecord only:            {t_read:6.2f} s  {mb / t_read:7.1f} MB/s")
    print(f"wfdb.rdrecord + rdann:         {t_read_ann:6.2f} s  {mb / t_read_ann:7.1f} MB/s")

    for fs in (62.5, 250.0):
        tmp = Path(tempfile.mkdtemp())

        def build():
            shutil.rmtree(tmp / "st", ignore_errors=True)
            build_store(tmp / "st", BuildConfig(["icentia11k"], "study3", WindowConfig(fs=fs)), quiet=True)

        t_build = best_of(build, args.repeats)
        shutil.rmtree(tmp, ignore_errors=True)
        rate = mb / t_build
        print(f"store build at {fs:5.1f} Hz (1 core): {t_build:6.2f} s  {rate:7.1f} MB/s/core   "
              f"ratio to rdrecord {t_read / t_build:4.2f}, to rdrecord+rdann {t_read_ann / t_build:4.2f}")
        total_mb = ICENTIA_SEGMENTS * SEGMENT_BYTES / 1e6
        for cores in (2, 32):
            hours = total_mb / (rate * cores) / 3600
            print(f"    all of Icentia11k ({total_mb / 1e6:.2f} TB) on {cores:2d} cores: {hours:6.1f} h "
                  "(assuming linear scaling over patients and disks that keep up)")


if __name__ == "__main__":
    main()
