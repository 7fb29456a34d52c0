"""The generated C on the microcontroller's instruction set: a Cortex-M4F build run in the
unicorn engine (QEMU's CPU emulation as a library), counting instructions.

`tr_model.c` and `tr_onepass.c` are compiled with arm-none-eabi-gcc (`-mcpu=cortex-m4 -mthumb
-mfloat-abi=hard`, the DSP extension's `__smlad` kernels on) and linked with a harness into one
flat image; unicorn runs `tr_classify` on real windows and the two streams hop by hop, counting
every executed Thumb instruction (per translated block: 16- and 32-bit encodings told apart by
their first halfword). The scores are compared with the x86 build's. Where the export writes the
RR context (`tr_rr_context.c`) and the beat detector (`tr_beats.c`), they are linked in and
counted too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError

FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
LINK = """MEMORY { MEM (rwx) : ORIGIN = 0x00000000, LENGTH = 1024K }
SECTIONS {
  .text : { KEEP(*(.text.h_*)) *(.text*) *(.rodata*) } > MEM
  .data : { *(.data*) } > MEM
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > MEM
}
"""
HARNESS = r"""#include <string.h>
#include "tr_model.h"
#include "tr_onepass.h"
int8_t h_window[TR_INPUT_LENGTH];
int8_t h_scores[TR_NUM_CLASSES];
float h_mv[4096];
int h_result, h_used;
long h_start;
tr_stream_t h_stream;
void h_classify(void) { h_result = tr_classify(h_window, TR_INPUT_LENGTH, h_scores); }
void h_stream_init(void) { tr_stream_init(&h_stream); }
/* push n samples; the last decision made is in h_result / h_scores (-3: none) */
void h_stream_push(int n) {
  int k = 0, c;
  h_result = TR_NO_DECISION;
  while (k < n) {
    c = tr_stream_push(&h_stream, (const STREAM_T *)h_mv + k, n - k, &h_used, h_scores);
    k += h_used;
    if (c >= 0) h_result = c;
  }
}
#ifdef H_RR
/* The RR context and the beat detector (tr_rr_context.c, tr_beats.c); floats pass through memory. */
#include "tr_rr_context.h"
#include "tr_beats.h"
uint32_t h_beats[1024], h_found[64];
int h_nbeats;
float h_fs, h_feats[TR_RR_NUM_FEATURES], h_probs[TR_NUM_CLASSES];
uint32_t h_centre;
tr_beats_t h_bt;
void h_rr(void) {
  tr_rr_features(h_beats, h_nbeats, h_fs, h_centre, h_feats);
  h_result = tr_rr_fuse(h_scores, h_feats, h_probs);
}
void h_beats_init(void) { h_result = tr_beats_init(&h_bt, h_fs); }
void h_beats_push(int n) { h_result = tr_beats_push(&h_bt, h_mv, n, h_found, 64); }
#endif
void h_onepass_init(void) { tr_onepass_init(); }
void h_onepass_push(int n) {
  int k = 0, c;
  h_result = TR_ONEPASS_NO_DECISION;
  while (k < n) {
    c = tr_onepass_push(h_mv + k, n - k, &h_used, &h_start, h_scores);
    k += h_used;
    if (c >= 0) h_result = c;
  }
}
"""
STOP = (1 << 20) - 0x100
STACK = 0x20000000


def available() -> str | None:
    """None where the Cortex-M4 toolchain and unicorn are installed, else what is missing."""
    if not shutil.which("arm-none-eabi-gcc") or not shutil.which("arm-none-eabi-objcopy"):
        return "arm-none-eabi-gcc (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    try:
        import unicorn  # noqa: F401
    except ImportError:
        return "unicorn (pip install unicorn)"
    return None


class CortexM4:
    """The model's C build (`out` holds tr_model.c and tr_onepass.c) on an emulated Cortex-M4F."""

    def __init__(self, out: str | Path, opt: str = "-O2", conditioned: bool = True, rr: bool = False):
        missing = available()
        if missing:
            raise TinyRhythmError(f"the Cortex-M4 emulation needs {missing}")
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

        out = Path(out)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            (tmp / "link.ld").write_text(LINK)
            (tmp / "harness.c").write_text(HARNESS.replace("STREAM_T", "float" if conditioned else "int8_t"))
            elf = tmp / "m.elf"
            build = subprocess.run(
                ["arm-none-eabi-gcc", "-std=c99", opt, "-Wall", "-Wextra", "-Werror", *FLAGS, "-ffunction-sections",
                 "-fdata-sections", "-nostartfiles", f"-Wl,-T,{tmp / 'link.ld'}", "-Wl,--gc-sections", "-Wl,-e,h_classify",
                 "--specs=nosys.specs", f"-I{out}", "-o", str(elf), str(out / "tr_model.c"), str(out / "tr_onepass.c"),
                 *([str(out / "tr_rr_context.c"), str(out / "tr_beats.c"), "-DH_RR"] if rr else []),
                 str(tmp / "harness.c"), "-lm"], capture_output=True, text=True)
            if build.returncode:
                raise TinyRhythmError(f"Cortex-M4 build failed: {(build.stderr.strip().splitlines() or ['?'])[0][:200]}")
            subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(tmp / "m.bin")], check=True)
            image = (tmp / "m.bin").read_bytes()
            nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
        self.syms = {n: int(a, 16) for a, _, n in (line.split() for line in nm.splitlines() if len(line.split()) == 3)}
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.uc.mem_map(0, 1 << 20)
        self.uc.mem_write(0, image)
        self.uc.mem_map(STACK, 1 << 16)
        self.count, self._sizes = 0, {}
        self.uc.hook_add(UC_HOOK_BLOCK, self._block)
        self.image_bytes = len(image)

    def _block(self, uc, address, size, _):
        n = self._sizes.get((address, size))
        if n is None:  # Thumb-2: a first halfword 0b11101/11110/11111... starts a 32-bit encoding
            code, i, n = uc.mem_read(address, size), 0, 0
            while i < size:
                i += 4 if ((code[i] | code[i + 1] << 8) >> 11) in (0b11101, 0b11110, 0b11111) else 2
                n += 1
            self._sizes[(address, size)] = n
        self.count += n

    def call(self, name: str, *args: int) -> int:
        """Run a harness function to its return; the instructions it executed."""
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_SP

        for i, a in enumerate(args):
            self.uc.reg_write(UC_ARM_REG_R0 + i, a)
        self.uc.reg_write(UC_ARM_REG_SP, STACK + (1 << 16))
        self.uc.reg_write(UC_ARM_REG_LR, STOP | 1)
        before = self.count
        self.uc.emu_start(self.syms[name] | 1, STOP)
        return self.count - before

    def _i32(self, name: str) -> int:
        return int(np.frombuffer(self.uc.mem_read(self.syms[name], 4), np.int32)[0])

    def classify(self, windows_q: np.ndarray, classes: int) -> tuple[np.ndarray, list[int]]:
        """tr_classify on int8 windows: (scores [n, classes], instructions per window)."""
        scores, counts = [], []
        for w in np.asarray(windows_q, np.int8):
            self.uc.mem_write(self.syms["h_window"], w.tobytes())
            counts.append(self.call("h_classify"))
            scores.append(np.frombuffer(self.uc.mem_read(self.syms["h_scores"], classes), np.int8).copy())
        return np.stack(scores), counts

    def rr_fuse(self, beats: np.ndarray, fs: float, centres: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """tr_rr_features + tr_rr_fuse per window (beats within the 1,024 the harness holds around
        each centre): (probabilities [n, classes], instructions per window)."""
        beats, probs, counts = np.asarray(beats, np.uint32), [], []
        self.uc.mem_write(self.syms["h_fs"], np.float32(fs).tobytes())
        for c, sc in zip(np.asarray(centres, np.uint32), np.asarray(scores, np.int8)):
            lo = max(0, int(np.searchsorted(beats, c)) - 512)
            part = beats[lo: lo + 1024]
            self.uc.mem_write(self.syms["h_beats"], part.tobytes())
            self.uc.mem_write(self.syms["h_nbeats"], np.int32(len(part)).tobytes())
            self.uc.mem_write(self.syms["h_centre"], np.uint32(c).tobytes())
            self.uc.mem_write(self.syms["h_scores"], sc.tobytes())
            counts.append(self.call("h_rr"))
            probs.append(np.frombuffer(self.uc.mem_read(self.syms["h_probs"], 4 * len(sc)), np.float32).copy())
        return np.stack(probs), counts

    def beats(self, signal: np.ndarray, fs: float, chunk: int) -> tuple[np.ndarray, int]:
        """tr_beats_push over a signal `chunk` samples at a time: (R-peak sample indices, instructions in all)."""
        self.uc.mem_write(self.syms["h_fs"], np.float32(fs).tobytes())
        total = self.call("h_beats_init")
        x, found = np.asarray(signal, np.float32), []
        for s in range(0, len(x), chunk):
            part = x[s:s + chunk]
            self.uc.mem_write(self.syms["h_mv"], part.tobytes())
            total += self.call("h_beats_push", len(part))
            found.append(np.frombuffer(self.uc.mem_read(self.syms["h_found"], 4 * self._i32("h_result")), np.uint32))
        return np.concatenate(found).astype(np.int64), total

    def stream_hops(self, signal: np.ndarray, hop: int, onepass: bool, classes: int,
                    dtype=np.float32) -> tuple[np.ndarray, list[int]]:
        """Push a signal `hop` samples at a time: (the scores of every decision, the instructions
        of each push that ended in one, the first left out)."""
        self.call("h_onepass_init" if onepass else "h_stream_init")
        push, counts, scores = "h_onepass_push" if onepass else "h_stream_push", [], []
        x = np.asarray(signal, dtype)
        for s in range(0, len(x) - hop + 1, hop):
            self.uc.mem_write(self.syms["h_mv"], x[s:s + hop].tobytes())
            n = self.call(push, hop)
            if self._i32("h_result") >= 0:
                counts.append(n)
                scores.append(np.frombuffer(self.uc.mem_read(self.syms["h_scores"], classes), np.int8).copy())
        return np.stack(scores) if scores else np.zeros((0, classes), np.int8), counts[1:]
