"""The streaming R-peak detector in C (`c_beats/tr_beats.c`) that feeds `tr_rr_context.c` on a device.

The monitor's detector is NeuroKit2's (`windows.beats`), which no microcontroller runs. This one
is Pan and Tompkins' scheme made causal and rate-independent (coefficients from fs at run time),
shipped as fixed source beside the generated model; measured against the MITDB reference beats
by `scripts/beat_detection.py --methods c`, and through the RR context by `scripts/rr_context.py
MODEL --test --detector c`.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .c_toolchain import build

SOURCE_DIR = Path(__file__).parent / "c_beats"
MIN_FS, MAX_FS = 50.0, 1000.0  # tr_beats_init's range (TR_BEATS_MAX_FS)
FILES = ["tr_beats.h", "tr_beats.c", "beats_main.c"]
SOURCES = ["tr_beats.c", "beats_main.c"]  # what the test driver compiles

_DRIVER = """/* Test driver: float32 mV on stdin, uint32 R-peak sample indices on stdout. argv: fs, then the
   chunk size (0: sizes drawn from 1 to 700 by a fixed generator, as a device's DMA might deliver). */
#include <stdio.h>
#include <stdlib.h>
#include "tr_beats.h"

static float buf[700];

int main(int argc, char **argv) {
  tr_beats_t s;
  uint32_t beats[64], seed = 12345u;
  int chunk;
  size_t got, want;
  if (argc < 3 || tr_beats_init(&s, (float)atof(argv[1])) != 0) return 1;
  chunk = atoi(argv[2]);
  for (;;) {
    seed = seed * 1103515245u + 12345u;
    want = chunk > 0 && chunk <= 700 ? (size_t)chunk : 1 + (seed >> 16) % 700;
    got = fread(buf, 4, want, stdin);
    if (got == 0) break;
    fwrite(beats, 4, (size_t)tr_beats_push(&s, buf, (int)got, beats, 64), stdout);
  }
  return 0;
}
"""


def write_beats(out: str | Path) -> None:
    """tr_beats.h / tr_beats.c and their test driver into `out`."""
    out = Path(out)
    for name in FILES[:2]:
        shutil.copyfile(SOURCE_DIR / name, out / name)
    (out / "beats_main.c").write_text(_DRIVER)


def _run(exe: Path, signal: np.ndarray, fs: float, chunk: int) -> np.ndarray:
    x = np.ascontiguousarray(signal, np.float32)  # NaN stays: the detector reads it as 0
    proc = subprocess.run([str(exe), repr(float(fs)), str(chunk)], input=x.tobytes(), capture_output=True, check=True)
    return np.frombuffer(proc.stdout, np.uint32).astype(np.int64)


def run_beats(out: str | Path, signal: np.ndarray, fs: float, chunk: int = 4096) -> np.ndarray:
    """R-peak sample indices of one lead by the C detector written into `out` (gcc -O2)."""
    exe = build(Path(out), SOURCES)
    try:
        return _run(exe, signal, fs, chunk)
    finally:
        exe.unlink()


@functools.cache
def _executable() -> Path:
    """The detector built once per process, for the scripts that run it over thousands of records."""
    out = Path(tempfile.mkdtemp(prefix="tr_beats_"))
    atexit.register(shutil.rmtree, out, True)
    write_beats(out)
    return build(out, SOURCES, "tr_beats")


def detect_beats_c(signal: np.ndarray, fs: float) -> np.ndarray:
    """`windows.beats.detect_beats`' answer as a device would give it: the C detector (built here, once)."""
    return _run(_executable(), signal, fs, 4096)


__all__ = ["FILES", "MAX_FS", "MIN_FS", "detect_beats_c", "run_beats", "write_beats"]
