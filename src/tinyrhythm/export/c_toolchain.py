"""The C toolchains a generated build meets: host gcc (strict warnings, run on real windows),
`size` and `-fstack-usage` at -Os for the host and for Cortex-M4 (arm-none-eabi-gcc)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError

def build(out: Path, sources: list[str], exe_name: str = "tr_test") -> Path:
    """Compile generated sources with a test driver (host gcc -O2, strict warnings) into
    out/exe_name. A build failure is one line."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise TinyRhythmError("no C compiler (gcc) found")
    exe = out / exe_name
    proc = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                           *(str(out / s) for s in sources), "-lm"], capture_output=True, text=True)
    if proc.returncode:
        raise TinyRhythmError(f"{out / sources[0]}: does not compile ({(proc.stderr.strip().splitlines() or ['?'])[0][:200]})")
    return exe


def build_and_run(out: Path, sources: list[str], stdin: bytes, *args: str) -> tuple[bytes, float]:
    """Build (`build`) and run the program once on `stdin`: (its stdout, seconds of the run, one process)."""
    exe = build(out, sources)
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True, check=True)
        return proc.stdout, time.perf_counter() - t0
    finally:
        exe.unlink()


def compile_and_run(out: Path, windows_q: np.ndarray, prefix: str = "tr") -> tuple[np.ndarray, float]:
    """Build the driver (gcc -O2) and run it on int8 windows: (scores, seconds of the run, one process)."""
    stdout, seconds = build_and_run(out, [f"{prefix}_model.c", "main.c"], np.ascontiguousarray(windows_q, np.int8).tobytes())
    return np.frombuffer(stdout, np.int8).reshape(len(windows_q), -1), seconds


def code_bytes(out: Path, prefix: str = "tr", source: str | None = None) -> dict:
    """`size` of the model object (or another generated `source` file) at -Os: host gcc, and
    Cortex-M4 where arm-none-eabi-gcc is installed."""
    result = {}
    for key, cc, flags in (("x86_64_gcc_Os", "gcc", []),
                           ("cortex_m4_gcc_Os", "arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                                                      "-mfpu=fpv4-sp-d16"])):
        exe, size = shutil.which(cc), shutil.which(cc.replace("gcc", "size")) if cc != "gcc" else shutil.which("size")
        if not exe or not size:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            obj = Path(tmp) / "m.o"
            subprocess.run([exe, "-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-fstack-usage", *flags, "-c",
                            str(out / (source or f"{prefix}_model.c")), "-o", str(obj)], check=True, capture_output=True)
            text, data, bss = (int(v) for v in subprocess.run([size, str(obj)], capture_output=True, text=True,
                                                              check=True).stdout.splitlines()[1].split()[:3])
            stack = stack_depth((Path(tmp) / "m.su").read_text(), prefix)
        result[key] = {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss, **stack}
    return result


def stack_depth(su: str, prefix: str = "tr") -> dict:
    """Worst stack depth in bytes from gcc's -fstack-usage report, the call chains being fixed
    by the generator: an API function, then at most one more API function, then one kernel
    (libm's lrintf, a leaf of a few bytes, not counted)."""
    frames: dict[str, int] = {}
    for line in su.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip().isdigit():
            name = parts[0].rsplit(":", 1)[-1].split(".")[0]
            frames[name] = max(frames.get(name, 0), int(parts[1]))
    kernel = max([v for k, v in frames.items() if not k.startswith(prefix + "_")] or [0])
    api = {k: v for k, v in frames.items() if k.startswith(prefix + "_")}
    classify = api.get(f"{prefix}_classify", 0) + kernel
    deepest = max([classify, api.get(f"{prefix}_quantize", 0)] + [v + kernel for v in api.values()])
    out = {"stack_classify": classify, "stack_max": deepest}
    if f"{prefix}_stream_push" in api:  # the stream calls tr_quantize or tr_classify
        out["stack_stream"] = api[f"{prefix}_stream_push"] + max(classify, api.get(f"{prefix}_quantize", 0) + kernel)
    return out
