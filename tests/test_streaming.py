"""Streaming gives exactly the batch results, in Python and in the generated C."""

import subprocess

import numpy as np
import pytest

from tinyrhythm.datasets.files import read_any
from tinyrhythm.errors import TinyRhythmError
from tinyrhythm.runtime import load_model
from tinyrhythm.streaming import StreamingClassifier, batch_decisions
from tinyrhythm.windows.resample import resample

from conftest import CINC, run_cli


def _signal(lm) -> np.ndarray:
    parts = [read_any(p, None, None) for p in sorted(CINC.glob("A0*.hea"))[:4]]
    return np.concatenate([resample(sig, fs, lm.fs) for _, sig, fs in parts]).astype(np.float32)


def test_python_stream_equals_batch_whatever_the_chunks():
    lm = load_model("cnn3")
    x = _signal(lm)
    ref = batch_decisions(lm, x)
    assert len(ref) > 10
    rng = np.random.default_rng(0)
    for sizes in ([1] * 700 + [len(x)], list(rng.integers(1, 900, 200)), [len(x)]):
        st, got, i = StreamingClassifier(lm), [], 0
        for n in sizes:
            got += st.push(x[i : i + n])
            i += n
            if i >= len(x):
                break
        assert [s for s, _ in got] == [s for s, _ in ref]
        assert np.allclose(np.stack([p for _, p in got]), np.stack([p for _, p in ref]), atol=1e-6)
    with pytest.raises(TinyRhythmError, match="NaN"):
        StreamingClassifier(lm).push([0.0, float("nan")])


def test_c_stream_equals_c_batch(small_store, tmp_path):
    out = tmp_path / "c"
    run_cli("export", "cnn1", "--format", "c", "--out", out, "--store", small_store, check=0)
    (tmp_path / "s.c").write_text('''#include <stdio.h>
#include <stdlib.h>
#include "tr_model.h"
/* stdin: n int8 samples; argv[1]: chunk seed. stdout: "start class s0 s1 ..." per decision, batch then stream */
int main(int argc, char **argv) {
  static int8_t x[1 << 16]; int8_t sc[TR_NUM_CLASSES]; int n = (int)fread(x, 1, sizeof x, stdin), i, c;
  tr_stream_t st; unsigned seed = (unsigned)atoi(argv[argc - 1]);
  for (i = 0; i + TR_INPUT_LENGTH <= n; i += TR_HOP) {
    c = tr_classify(x + i, TR_INPUT_LENGTH, sc);
    printf("B %d %d %d %d\\n", i, c, sc[0], sc[TR_NUM_CLASSES - 1]);
  }
  tr_stream_init(&st);
  for (i = 0; i < n;) {
    int chunk = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 700, used, k = 0;
    if (chunk > n - i) chunk = n - i;
    while (k < chunk) {
      c = tr_stream_push(&st, x + i + k, chunk - k, &used, sc);
      k += used;
      if (c >= 0) printf("S %d %d %d %d\\n", i + k - TR_INPUT_LENGTH, c, sc[0], sc[TR_NUM_CLASSES - 1]);
      else if (c != TR_NO_DECISION) return 1;
    }
    i += chunk;
  }
  return 0;
}
''')
    build = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(out), str(tmp_path / "s.c"),
                            str(out / "tr_model.c"), "-lm", "-o", str(tmp_path / "s")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    lm = load_model("cnn1")
    x = _signal(lm)
    xq = np.clip(np.rint(x / 0.05) - 4, -128, 127).astype(np.int8)
    for seed in ("1", "7"):
        lines = subprocess.run([str(tmp_path / "s"), seed], input=xq.tobytes(), capture_output=True,
                               check=True).stdout.decode().splitlines()
        batch = [l[2:] for l in lines if l[0] == "B"]
        stream = [l[2:] for l in lines if l[0] == "S"]
        assert len(batch) > 10 and stream == batch
