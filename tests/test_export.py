"""`tinyrhythm export --format onnx`: files that ONNX Runtime loads and that agree with the model."""

import json
import shutil

import numpy as np
import pytest
import onnx
import torch

from tinyrhythm.export.onnx import OrtModule
from tinyrhythm.runtime import load_model
from tinyrhythm.windows.store import WindowStore

from conftest import CINC, assert_one_line_error, run_cli


def test_export_onnx_float_and_int8(small_store, tmp_path):
    out = tmp_path / "cnn3"
    r = json.loads(run_cli("export", "cnn3", "--format", "onnx", "--out", out, "--store", small_store, "--json",
                           check=0).stdout)
    f32, i8 = r["forms"]["model.onnx"], r["forms"]["model-int8.onnx"]
    assert f32["max_abs_diff"] < 1e-3 and f32["argmax_agreement"] == 1.0
    assert i8["argmax_agreement"] > 0.9 and i8["weight_bytes"] < f32["weight_bytes"] / 3
    assert json.loads((out / "export_report.json").read_text())["forms"].keys() == r["forms"].keys()
    for name in ("model.onnx", "model-int8.onnx"):
        onnx.checker.check_model(onnx.load(str(out / name)))
    # The float file gives the PyTorch logits on real windows, at any batch size.
    x = WindowStore(small_store).batch(np.arange(37))[0][:, None, :]
    ref = load_model("cnn3").model(torch.from_numpy(x)).detach()
    assert torch.allclose(OrtModule(out / "model.onnx")(torch.from_numpy(x)), ref, atol=1e-4)


def test_export_refuses_a_non_empty_folder_and_unknown_formats(small_store, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_one_line_error(run_cli("export", "cnn1", "--format", "onnx", "--out", out), "--force")
    assert (out / "keep.txt").read_text() == "mine"
    assert_one_line_error(run_cli("export", "cnn1", "--format", "coreml", "--out", tmp_path / "n"), "unknown export format")
    proc = run_cli("export", "cnn1", "--format", "onnx", "--out", out, "--force", "--store", small_store, "--report", check=0)
    assert not (out / "keep.txt").exists() and (out / "model-int8.onnx").is_file()
    assert "| form | weight bytes |" in proc.stdout and "| model-int8.onnx | 6," in proc.stdout  # the deployment report


def _cc(*args, cwd=None):
    import subprocess

    return subprocess.run(["gcc", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_export_c_compiles_strictly_and_matches_onnx_runtime_int8(small_store, tmp_path):
    from tinyrhythm.export.c import compile_and_run
    from tinyrhythm.export.onnx import session

    out = tmp_path / "c"
    r = json.loads(run_cli("export", "cnn3", "--format", "c", "--out", out, "--store", small_store, "--json",
                           check=0).stdout)["c"]
    for src in out.glob("*.c"):
        if src.name != "main.c":
            proc = _cc("-std=c99", "-Wall", "-Wextra", "-Werror", "-c", src, "-o", tmp_path / "x.o")
            assert proc.returncode == 0, proc.stderr
    assert r["class_agreement_with_onnx_int8"] == 1.0 and r["max_score_diff_steps"] <= 1
    assert r["arena_bytes"] <= 8 * 1024 and "uint8_t b[TR_ARENA_BYTES]" in (out / "tr_model.c").read_text()
    assert "malloc" not in (out / "tr_model.c").read_text()
    assert "rr_context" not in r and not (out / "tr_rr_context.c").exists()  # a CinC model's card has no RR context
    # Independently of the report: real windows of another split through the C build and ONNX Runtime.
    ws = WindowStore(small_store)
    x = ws.batch(ws.indices("test")[:300])[0][:, None, :]
    xq = np.clip(np.rint(x[:, 0, :] / np.float32(r["input_scale"])) + r["input_zero_point"], -128, 127).astype(np.int8)
    scores, _ = compile_and_run(out, xq)
    ort = session(out / "model-int8.onnx").run(None, {"ecg": x})[0]
    c = (scores.astype(np.float32) - r["output_zero_point"]) * np.float32(r["output_scale"])
    assert (c.argmax(1) == ort.argmax(1)).all()
    assert np.abs(c - ort).max() <= r["output_scale"] * 1.001


def test_generated_c_rejects_null_and_wrong_length(small_store, tmp_path):
    import subprocess

    out = tmp_path / "c"
    run_cli("export", "cnn1", "--format", "c", "--out", out, "--store", small_store, check=0)
    (tmp_path / "t.c").write_text('''#include "tr_model.h"
int main(void) {
  static int8_t w[TR_INPUT_LENGTH + 1]; int8_t s[TR_NUM_CLASSES]; float mv[TR_INPUT_LENGTH] = {0};
  if (tr_classify(0, TR_INPUT_LENGTH, s) != TR_ERR_NULL) return 1;
  if (tr_classify(w, TR_INPUT_LENGTH, 0) != TR_ERR_NULL) return 2;
  if (tr_classify(w, TR_INPUT_LENGTH - 1, s) != TR_ERR_LENGTH) return 3;
  if (tr_classify(w, TR_INPUT_LENGTH + 1, s) != TR_ERR_LENGTH) return 4;
  if (tr_quantize(mv, 7, w) != TR_ERR_LENGTH || tr_quantize(0, TR_INPUT_LENGTH, w) != TR_ERR_NULL) return 5;
  if (tr_quantize(mv, TR_INPUT_LENGTH, w) != 0) return 6;
  { int c = tr_classify(w, TR_INPUT_LENGTH, s); return (c >= 0 && c < TR_NUM_CLASSES) ? 0 : 7; }
}
''')
    proc = _cc("-std=c99", "-Wall", "-Wextra", "-Werror", "-I", out, tmp_path / "t.c", out / "tr_model.c", "-lm",
               "-o", tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([tmp_path / "t"]).returncode == 0


def test_c_generator_names_an_unsupported_layer(small_store, tmp_path):
    from tinyrhythm.errors import TinyRhythmError
    from tinyrhythm.export.c import generate

    out = tmp_path / "o"
    run_cli("export", "cnn1", "--format", "onnx", "--out", out, "--store", small_store, check=0)
    m = onnx.load(str(out / "model-int8.onnx"))
    node = next(n for n in m.graph.node if n.op_type == "Add")
    node.op_type, node.name = "Mul", "blocks.0.mystery"
    onnx.save(m, str(tmp_path / "bad.onnx"))
    import pytest

    with pytest.raises(TinyRhythmError, match=r"blocks.0.mystery \(Mul\) is not supported"):
        generate(tmp_path / "bad.onnx", tmp_path, 513, ["N", "A", "O", "~"])


def test_export_tflite_full_integer_runs_in_litert_interpreter(small_store, tmp_path):
    pytest.importorskip("litert_torch", reason="TFLite tools are the [tflite] extra (.ci/run installs it)")
    from tinyrhythm.export.tflite import TfliteModule

    out = tmp_path / "tfl"
    r = json.loads(run_cli("export", "cnn3-kd-int8", "--format", "tflite", "--out", out, "--store", small_store,
                           "--json", check=0).stdout)
    t = r["forms"]["model-int8.tflite"]
    mod = TfliteModule(out / "model-int8.tflite")
    assert mod.inp["dtype"] == np.int8 and mod.out["dtype"] == np.int8  # int8 in and out, as TFLite Micro runs it
    assert tuple(mod.inp["shape"]) == (1, 1, 513) and tuple(mod.out["shape"]) == (1, 4)
    # Every convolution and the dense layer are int8 kernels.
    assert t["ops"].get("CONV_2D:int8", 0) >= 20 and "CONV_2D:float32" not in t["ops"]
    assert t["ops"].get("FULLY_CONNECTED:int8") == 1
    # Measured on the real validation windows: ~94 % with float, ~96 % with ONNX Runtime int8 (README).
    assert t["argmax_agreement"] > 0.9 and t["argmax_agreement_with_onnx_int8"] > 0.9
    assert 8_000 < t["weight_bytes"] < 16_384  # int8 weights, int32 biases
    # The same file on TFLite Micro's kernels (the microcontroller runtime) gives exactly the scores of
    # LiteRT's reference kernels; LiteRT's optimized kernels round differently (README).
    tflm = t["tflite_micro_vs_litert_reference"]
    assert tflm["windows"] == 256 and tflm["class_agreement"] == 1.0 and tflm["max_score_diff_steps"] <= 1
    assert t["litert_optimized_vs_reference"]["class_agreement"] > 0.9
    x = WindowStore(small_store).batch(np.arange(16))[0][:, None, :]
    np.testing.assert_allclose(mod(torch.from_numpy(x)).numpy(), TfliteModule(out / "model-int8.tflite")(torch.from_numpy(x)).numpy())

    # The exported file is a model like any other: predict, evaluate and monitor load it (the
    # export folder or the file itself) through the runtime's TFLite backend.
    lm = load_model(out / "model-int8.tflite")
    assert lm.card.format == "tflite" and lm.classes == ["N", "A", "O", "~"] and lm.card.sha256 == t["sha256"]
    assert lm.sizes()["weight_bytes"] == t["weight_bytes"] and lm.latency_ms(repeats=5) > 0
    assert load_model(out).card.weights == "model-int8.tflite"
    rec = str(CINC / "A00001.hea")
    pred = json.loads(run_cli("predict", "--model", out / "model-int8.tflite", "--json", rec, check=0).stdout)
    assert set(pred["probabilities"]) == {"N", "A", "O", "~"}
    ev = json.loads(run_cli("evaluate", out, "--task", "cinc2017", "--split", "val", "--store", small_store, "--json",
                            check=0).stdout)
    assert ev["model"] == "tfl/model-int8.tflite" and 0 <= ev["macro_f1"] <= 1
    mon = json.loads(run_cli("monitor", rec, "--model", out, "--json", check=0).stdout)
    assert mon["engine"] == "windows" and mon["task"] == "cinc2017" and 0 <= mon["af_burden"] <= 1
    # A changed byte is refused by its SHA-256 in the export report, in one line.
    raw = bytearray((out / "model-int8.tflite").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (out / "model-int8.tflite").write_bytes(bytes(raw))
    assert_one_line_error(run_cli("predict", "--model", out, rec), "model-int8.tflite", "SHA-256")


def test_seven_bit_weight_packing_round_trips():
    from tinyrhythm.export.c import exceptions7, fits7, pack7

    rng = np.random.default_rng(0)
    w = rng.integers(-64, 65, 1000).astype(np.int8)
    assert fits7(w) and not fits7(np.array([-65, 0], np.int8))
    packed, exc = pack7(w), exceptions7(w)
    assert len(packed) == -(-7 * len(w) // 8) + 1 and exc[-1] == 0xFFFF
    bits = np.unpackbits(packed, bitorder="little")
    back = np.array([int("".join(map(str, bits[7 * i: 7 * i + 7][::-1])), 2) for i in range(len(w))])
    back = np.where(back >= 64, back - 128, back)
    back[exc[:-1]] = 64
    np.testing.assert_array_equal(back, w)


@pytest.mark.parametrize("model", ["rhythm-cnn3-int8", "cnn3-int8"])
def test_cortex_m4_build_fits_16_kb_flash_and_8_kb_ram(model, tmp_path):
    """arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -Os: weights and code within
    16 KB; statics + the caller's stream state + the deepest stack (-fstack-usage) within 8 KB;
    still bit-exact with ONNX Runtime int8 (the export's own check)."""
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not installed (Debian: gcc-arm-none-eabi; .ci/run installs it)")
    full = json.loads(run_cli("export", model, "--format", "c", "--out", tmp_path / "c", "--json", check=0).stdout)
    r = full["c"]
    m4 = r["code_bytes"]["cortex_m4_gcc_Os"]
    assert r["weights_7bit_packed"] and m4["flash"] <= 16 * 1024, m4
    assert m4["ram_stream_total"] <= 8 * 1024 and 0 < m4["stack_stream"] < 1024, m4
    assert r["class_agreement_with_onnx_int8"] == 1.0 and r["max_score_diff_steps"] == 0
    if model == "rhythm-cnn3-int8":  # its card's RR context, in C beside the model: the monitor's fusion, about 1 KB
        rr = r["rr_context"]
        assert rr["class_agreement_with_python"] == 1.0 and rr["max_abs_prob_diff"] < 1e-5, rr
        assert rr["windows_with_context"] > 100 and rr["code_bytes"]["cortex_m4_gcc_Os"]["flash"] < 2048, rr
        b = rr["beats"]  # the C beat detector shipped beside it, on the same stream as NeuroKit2's
        assert b["code_bytes"]["cortex_m4_gcc_Os"]["flash"] < 2048 and b["code_bytes"]["cortex_m4_gcc_Os"]["ram"] == 0, b
        assert abs(b["beats_in_check_stream"] - b["neurokit_beats_in_check_stream"]) < 0.05 * b["neurokit_beats_in_check_stream"]
        from tinyrhythm.export.run import report_table

        table = report_table(full)
        assert "RR context in C (tr_rr_context.c" in table and f"100.00% of {rr['windows_checked']} decisions" in table
    # The same -Os build run on the Cortex-M4's instruction set (unicorn): the x86 build's scores,
    # the DSP (__smlad) kernels at most 4 instructions per MAC, the one-pass hop well under a window.
    e = r["cortex_m4_emulated"]
    if "unavailable" in e:
        pytest.skip(e["unavailable"])
    assert e["scores_equal_x86"] and e["onepass_scores_equal_x86"] and e["onepass_decisions_checked"] >= 10
    assert e["instructions_per_mac"] <= 4.0, e
    assert e["instructions_per_hop_onepass"] * 2 < e["instructions_per_hop_window_stream"], e
    if model == "rhythm-cnn3-int8":  # the RR context and the beat detector on the same core: the x86 answers, little work
        rr = e["rr_context"]
        assert rr["beats_equal_x86"] and rr["max_prob_diff_x86"] < 1e-5, rr
        assert rr["instructions_per_fusion"] < 0.01 * e["instructions_per_hop_onepass"], rr
        assert rr["beat_cpu_share_250Hz_64MHz"] < 0.01, rr


def test_c_build_with_full_8_bit_weights_matches_onnx_runtime(tmp_path, monkeypatch):
    """Weights outside the 7-bit range are stored as plain int8 (no packing): that path too is
    bit-exact with ONNX Runtime on real windows."""
    from tinyrhythm.export import c
    from tinyrhythm.export.run import onnx_int8_run

    from conftest import DATA
    from tinyrhythm.datasets.stream import open_stream
    from tinyrhythm.windows.resample import resample

    lm = load_model("rhythm-cnn3-int8")
    model = tmp_path / "model-int8.onnx"
    shutil.copyfile(lm.model.path, model)
    monkeypatch.setattr(c, "fits7", lambda w: False)
    info = c.generate(model, tmp_path, lm.input_length, list(lm.classes))
    assert not info["weights_7bit_packed"] and "unpack7" not in (tmp_path / "tr_model.c").read_text()
    s = open_stream(DATA / "mitdb" / "203.hea")
    sig = resample(s.read(0, 360 * 120), s.fs, lm.fs)  # two minutes with AF
    x = np.stack([sig[i:i + 513] for i in range(0, len(sig) - 513, 256)]).astype(np.float32)[:, None, :]
    xq, ort = onnx_int8_run(model, info["input_tensor"], x)
    scores, _ = c.compile_and_run(tmp_path, xq)
    steps = np.abs((scores.astype(np.float32) - info["output_zero_point"]) * np.float32(info["output_scale"]) - ort)
    assert steps.max() <= info["output_scale"] * 1.001


def _rr_build(tmp_path):
    """rhythm-cnn3-int8's C header and its RR context fusion in C."""
    from tinyrhythm.export import c
    from tinyrhythm.export.c_rr_context import generate_rr_context

    lm = load_model("rhythm-cnn3-int8")
    shutil.copyfile(lm.model.path, tmp_path / "model-int8.onnx")
    info = c.generate(tmp_path / "model-int8.onnx", tmp_path, lm.input_length, list(lm.classes))
    generate_rr_context(lm.card.rr_fusion, tmp_path)
    return lm, info


def test_rr_context_in_c_gives_the_monitors_fusion_on_real_beats(tmp_path):
    """tr_rr_features / tr_rr_fuse on five minutes of MITDB 203 (AF), beats found by the monitor's
    detector at 360 Hz, windows centred where the monitor centres them: the Python fusion's
    features and probabilities to float rounding, and the same class on every window."""
    from tinyrhythm.export.c_rr_context import python_reference, run_rr_context
    from tinyrhythm.export.run import onnx_int8_run
    from tinyrhythm.runtime.rr_context import context_features
    from tinyrhythm.datasets.stream import open_stream
    from tinyrhythm.windows.beats import detect_beats
    from tinyrhythm.windows.resample import resample

    from conftest import DATA

    lm, info = _rr_build(tmp_path)
    s = open_stream(DATA / "mitdb" / "203.hea")
    raw = s.read(0, int(s.fs) * 300)
    sig = resample(raw, s.fs, lm.fs)
    starts = np.arange(0, len(sig) - lm.input_length, lm.input_length // 4)
    x = np.stack([sig[i:i + lm.input_length] for i in starts]).astype(np.float32)[:, None, :]
    _, logits = onnx_int8_run(tmp_path / "model-int8.onnx", info["input_tensor"], x)
    scores = np.rint(logits / info["output_scale"]).astype(np.int64) + info["output_zero_point"]
    beats = detect_beats(raw, s.fs)
    centres = np.rint((starts + lm.input_length / 2) * s.fs / lm.fs).astype(np.int64)  # in the beats' clock
    feats, probs = run_rr_context(tmp_path, beats, s.fs, centres, scores)
    ref_feats = context_features(beats / s.fs, centres / s.fs, lm.card.rr_fusion.context_s)
    ref = python_reference(lm.card.rr_fusion, beats, s.fs, centres, scores, info["output_scale"], info["output_zero_point"])
    assert len(centres) > 100 and (feats[:, 3] == 1).all()
    np.testing.assert_allclose(feats, ref_feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    assert (probs.argmax(1) == ref.argmax(1)).all()
    # A counter that wraps inside the recording gives the same answers.
    shift = np.int64(2**32) - int(centres[len(centres) // 2])
    feats_w, probs_w = run_rr_context(tmp_path, (beats + shift) % 2**32, s.fs, (centres + shift) % 2**32, scores)
    np.testing.assert_array_equal(feats_w, feats)
    np.testing.assert_array_equal(probs_w, probs)


def test_rr_context_in_c_edges(tmp_path):
    """No beats: features 0 and the network decides; a context of more beats than the build holds,
    or a NULL: an error code, not a write past a buffer."""
    import subprocess

    _rr_build(tmp_path)
    (tmp_path / "t.c").write_text('''#include "tr_rr_context.h"
int main(void) {
  static uint32_t many[TR_RR_MAX_BEATS + 1];
  uint32_t few[3] = {100, 400, 700};
  int8_t s[TR_NUM_CLASSES] = {0};
  float f[TR_RR_NUM_FEATURES], p[TR_NUM_CLASSES];
  int i;
  for (i = 0; i <= TR_RR_MAX_BEATS; ++i) many[i] = (uint32_t)i * 10u;
  if (tr_rr_features(few, 3, 250.0f, 400, f) != 3 || f[0] != 0.0f || f[3] != 0.0f) return 1;
  if (tr_rr_features(0, 3, 250.0f, 400, f) != TR_ERR_NULL || tr_rr_features(few, 3, 0.0f, 400, f) != TR_ERR_NULL) return 2;
  if (tr_rr_features(many, TR_RR_MAX_BEATS + 1, 250.0f, 1000, f) != TR_ERR_LENGTH) return 3;
  if (tr_rr_features(many, TR_RR_MAX_BEATS, 250.0f, 1000, f) != TR_RR_MAX_BEATS || f[3] != 1.0f) return 4;
  if (tr_rr_fuse(0, f, p) != TR_ERR_NULL || tr_rr_fuse(s, f, 0) != TR_ERR_NULL) return 5;
  i = tr_rr_fuse(s, f, p);
  return (i >= 0 && i < TR_NUM_CLASSES && p[0] + p[1] + p[2] > 0.999f && p[0] + p[1] + p[2] < 1.001f) ? 0 : 6;
}
''')
    proc = _cc("-std=c99", "-Wall", "-Wextra", "-Werror", "-I", tmp_path, tmp_path / "t.c", tmp_path / "tr_rr_context.c",
               "-lm", "-o", tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([tmp_path / "t"]).returncode == 0


def test_rr_context_in_c_without_a_one_pass_stream(tmp_path, monkeypatch):
    """A model whose head has no one-pass form still gets its RR context in C, checked on the
    check windows classified one by one."""
    from tinyrhythm.export import run

    monkeypatch.setattr(run, "_export_c_onepass", lambda work, lm, x: ({"unavailable": "no one-pass form"}, None))
    monkeypatch.setattr(run, "_emulate_cortex_m4", lambda *a: {"unavailable": "not measured here"})
    r = run.export("rhythm-cnn1", "c", tmp_path / "c")["c"]["rr_context"]
    assert r["class_agreement_with_python"] == 1.0 and r["max_abs_prob_diff"] < 1e-5 and r["windows_checked"] > 200, r
    assert (tmp_path / "c" / "tr_rr_context.c").is_file() and (tmp_path / "c" / "tr_beats.c").is_file()
