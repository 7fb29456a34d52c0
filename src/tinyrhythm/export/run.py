"""`tinyrhythm export MODEL --format onnx --out DIR`: deployable files plus a report that proves
they give the PyTorch model's answers on real windows."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..compress.quantize import QuantizeConfig, calibration_windows, fidelity, quantize_onnx, validation_windows
from ..errors import TinyRhythmError
from ..models import TinyRhythmCNN, count_macs
from ..onepass import logits as onepass_logits
from ..paths import replace_dir, sha256_file
from ..runtime import LoadedModel, ModelCard, load_model
from ..runtime.ort import INPUT_NAME, OUTPUT_NAME, OrtModule, export_onnx, latency_ms, session, weight_bytes
from ..train.config import training_store
from ..runtime.rr_context import FEATURES as RR_FEATURES
from ..windows.beats import detect_beats
from . import tflite
from .c import code_bytes, compile_and_run, generate
from .c_onepass import generate_onepass, run_onepass, scores_from_logits
from .c_beats import FILES as BEATS_FILES, run_beats, write_beats
from .c_rr_context import FILES as RR_FILES, generate_rr_context, python_reference, run_rr_context
from .cortex_m import CortexM4, available


@dataclass(frozen=True)
class Target:
    """An export format: what it adds to the export folder beside the float and int8 ONNX forms.

    write(work, lm, float_lm, calib, x, report) fills `report` (its forms, its own section);
    seven_bit: the int8 ONNX is made with 7-bit weights, whose ONNX Runtime arithmetic is
    exact, so that a bit-exact twin (the C build) can be checked against it; keeps_int8: an
    int8 model given to export is shipped as it is (with seven_bit: when its weights are 7-bit)
    rather than quantized again from its float parent."""

    write: Callable
    seven_bit: bool = False
    keeps_int8: bool = True


TARGETS: dict[str, Target] = {}


def register_target(name: str, seven_bit: bool = False, keeps_int8: bool = True):
    """Decorator: a new `tinyrhythm export --format NAME` is one function."""
    def deco(fn):
        TARGETS[name] = Target(fn, seven_bit, keeps_int8)
        return fn
    return deco


@register_target("onnx")
def _onnx_target(work, lm, float_lm, calib, x, report) -> None:
    """The two ONNX forms every export writes are the whole of this target."""


@register_target("tflite", keeps_int8=False)  # the .tflite is converted from the float model; so is its ONNX twin
def _tflite_target(work, lm, float_lm, calib, x, report) -> None:
    report["forms"]["model-int8.tflite"] = _export_tflite(work, float_lm, calib, x)


@register_target("c", seven_bit=True)
def _c_target(work, lm, float_lm, calib, x, report) -> None:
    report["c"] = _export_c(work, lm, x, report["macs"])


def export(model: str, fmt: str, out: str | os.PathLike, force: bool = False, store: str | None = None,
           calibration: str = "percentile") -> dict:
    """Write `out/model.onnx` (float) and `out/model-int8.onnx` with `out/export_report.json`."""
    if fmt not in TARGETS:
        raise TinyRhythmError(f"unknown export format {fmt!r} (available: {', '.join(TARGETS)})")
    target = TARGETS[fmt]
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise TinyRhythmError(f"{out}: exists and is not empty (use --force to replace it)")
    lm = load_model(model)
    parent_name = None
    if isinstance(lm.model, OrtModule):  # an int8 ONNX model: checked against (or rebuilt from) its float parent
        parent_name = lm.card.parent
        if not parent_name:
            raise TinyRhythmError(f"{model}: ONNX model without a float parent to check it against")
        float_lm = load_model(parent_name)
    elif isinstance(lm.model, TinyRhythmCNN):
        float_lm = lm
    else:
        raise TinyRhythmError(f"{model}: a PyTorch int8 (fbgemm) run has no ONNX form; export its float parent")
    ws = training_store(float_lm, store)
    x = validation_windows(ws, 1024, 0)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report: dict = {"model": model, "format": fmt, "task": lm.task, "classes": lm.classes, "fs": lm.fs, "input_length": lm.input_length,
                    "input": "ecg [batch, 1, input_length] float32, mV", "output": "logits [batch, classes]",
                    "macs": count_macs(float_lm.model), "check_windows": int(len(x)), "check_split": "val",
                    "reference": f"PyTorch float32 ({parent_name or model})", "forms": {}}
    if lm.card.rr_context:  # the RR context fusion travels with every form, as the card's figures do
        report["rr_context"] = lm.card.rr_context
    try:
        export_onnx(float_lm.model, work / "model.onnx", lm.input_length)
        calib = calibration_windows(ws, 1024, 0)
        q_meta = lm.card.quantization or {}
        if parent_name and target.keeps_int8 and (not target.seven_bit or q_meta.get("reduce_range")):
            # Ship the given int8 model as it is; with 7-bit weights ONNX Runtime's arithmetic is
            # exact, so the C build is its bit-exact twin rather than a second quantization.
            shutil.copyfile(lm.model.path, work / "model-int8.onnx")
        else:
            # For C, 7-bit weights make ONNX Runtime's int8 arithmetic exact, so the two can be compared bit for bit.
            cfg = QuantizeConfig(method="ptq", calibration=calibration, reduce_range=target.seven_bit)
            quantize_onnx(work / "model.onnx", work / "model-int8.onnx", cfg, calib)
        for name in ("model.onnx", "model-int8.onnx"):
            path = work / name
            fid = fidelity(float_lm.model, OrtModule(path), x)
            report["forms"][name] = {"weight_bytes": weight_bytes(path)["total"], "file_bytes": path.stat().st_size,
                                     "sha256": sha256_file(path),
                                     "latency_ms_batch1_1thread": round(latency_ms(path, lm.input_length), 4),
                                     "max_abs_diff": fid["max_abs_diff"], "argmax_agreement": fid["argmax_agreement"],
                                     "sqnr_db": fid["sqnr_db"]}
        target.write(work, lm, float_lm, calib, x, report)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    (work / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
    replace_dir(work, out)
    return report


def report_table(r: dict) -> str:
    """The deployment report as Markdown: one row per deployed form, then the C build's memory."""
    lines = [f"{r['model']}: {r['macs']:,} MACs per window of {r['input_length']} samples at {r['fs']:g} Hz; "
             f"checked on {r['check_windows']} {r['check_split']} windows against {r['reference']}",
             "", "| form | weight bytes | file bytes | ms/window (1 core) | argmax agreement | max abs diff |",
             "|---|---|---|---|---|---|"]
    for name, f in r["forms"].items():
        wb = f"{f['weight_bytes']:,}" if "weight_bytes" in f else "-"
        lines.append(f"| {name} | {wb} | {f['file_bytes']:,} | {f['latency_ms_batch1_1thread']:.3f} | "
                     f"{f['argmax_agreement']:.2%} | {f['max_abs_diff']:g} |")
    c = r.get("c")
    if c:
        flash = {k: v["flash"] for k, v in c["code_bytes"].items() if isinstance(v, dict) and "flash" in v}
        lines += ["", f"C build: arena (RAM) {c['arena_bytes']:,} bytes; flash (weights + code, -Os) "
                  + ", ".join(f"{k} {v:,} bytes" for k, v in flash.items())
                  + f"; {c['latency_ms_per_window_O2']:.3f} ms/window at -O2; same class as ONNX int8 on "
                  f"{c['class_agreement_with_onnx_int8']:.2%} of windows, max {c['max_score_diff_steps']:g} steps apart"]
        e = c.get("cortex_m4_emulated") or {}
        m4 = c["code_bytes"].get("cortex_m4_gcc_Os")
        if m4 and "instructions_per_window" in e:
            lines += ["", f"Cortex-M4 (-Os, DSP kernels): flash {m4['flash']:,} bytes; RAM to stream {m4['ram_stream_total']:,} "
                      f"bytes (statics, tr_stream_t, {m4['stack_stream']} bytes of stack); {e['instructions_per_window']:,} "
                      f"instructions per window ({e['instructions_per_mac']:.2f} per MAC) in the unicorn emulator, "
                      f"{e['ms_per_window_64MHz']:.1f} ms at 64 MHz and {e['ms_per_window_190MHz']:.1f} ms at 190 MHz "
                      f"(CPI {e['cpi_assumed']} assumed), scores {'equal to' if e['scores_equal_x86'] else 'DIFFERENT from'} "
                      "the x86 build's"]
        o = c.get("onepass") or {}
        if "macs_per_decision" in o:
            flash = {k: v["flash"] for k, v in o["code_bytes"].items() if isinstance(v, dict) and "flash" in v}
            lines += ["", f"One-pass C stream (tr_onepass.c, hop {o['hop']}): {o['macs_per_decision']:,} MACs per decision "
                      f"against {o['window_macs']:,} for a whole window; state (RAM) {o['state_bytes']:,} bytes; flash "
                      + ", ".join(f"{k} {v:,} bytes" for k, v in flash.items())
                      + f"; {o['ms_per_decision_O2']:.3f} ms/decision at -O2; decision {o['delay_samples']} samples after "
                      f"the window's end; the same scores as tinyrhythm.onepass on {o['class_agreement_with_python_onepass']:.2%} "
                      f"of {o['decisions_checked']} decisions, max {o['max_score_diff_steps']} steps apart"]
        rr = c.get("rr_context")
        if rr:
            flash = {k: v["flash"] for k, v in rr["code_bytes"].items()}
            ram = {k: v["ram"] for k, v in rr["code_bytes"].items()}
            lines += ["", f"RR context in C (tr_rr_context.c, the monitor's fusion with {rr['context_s']:g} s of beats either "
                      "side): flash " + ", ".join(f"{k} {v:,} bytes" for k, v in flash.items())
                      + "; static RAM " + ", ".join(f"{k} {v:,} bytes" for k, v in ram.items())
                      + f"; the Python fusion's class on {rr['class_agreement_with_python']:.2%} of {rr['windows_checked']} "
                      f"decisions, probabilities at most {rr['max_abs_prob_diff']:.1e} apart; its beats from the device's "
                      "detector or tr_beats.c (streaming R peaks), flash "
                      + ", ".join(f"{k} {v['flash']:,} bytes" for k, v in rr["beats"]["code_bytes"].items())]
            m4rr = (c.get("cortex_m4_emulated") or {}).get("rr_context")
            if m4rr:
                lines[-1] += (f"; Cortex-M4 (emulated): {m4rr['instructions_per_fusion']:,} instructions per fusion, "
                              f"{m4rr['beat_instructions_per_sample']:g} per sample of beat detection "
                              f"({m4rr['beat_cpu_share_250Hz_64MHz']:.2%} of a 64 MHz core at 250 Hz)")
    return "\n".join(lines)


def _export_tflite(work: Path, float_lm, calib: np.ndarray, x: np.ndarray) -> dict:
    """Full-integer TFLite from the float model, checked against it and against ONNX Runtime int8."""
    path = tflite.export_tflite(float_lm.model, work / "model-int8.tflite", calib[:512])
    mod = tflite.TfliteModule(path)
    fid = fidelity(float_lm.model, mod, x)
    vs_ort = fidelity(OrtModule(work / "model-int8.onnx"), mod, x)
    # TFLite Micro's kernels on the same int8 inputs as LiteRT's reference and optimized kernels.
    xq = np.stack([mod.quantize_input(w[None])[0] for w in x[:256]])
    ref = tflite.int8_scores(tflite.TfliteModule(path, reference_kernels=True), xq)
    fast = tflite.int8_scores(mod, xq).astype(np.int32)
    tflm = tflite.tflm_check(path, xq, ref)
    return {"weight_bytes": tflite.weight_bytes(path), "file_bytes": path.stat().st_size, "sha256": sha256_file(path),
            "latency_ms_batch1_1thread": round(tflite.latency_ms(path, float_lm.input_length), 4),
            "max_abs_diff": fid["max_abs_diff"], "argmax_agreement": fid["argmax_agreement"], "sqnr_db": fid["sqnr_db"],
            "argmax_agreement_with_onnx_int8": vs_ort["argmax_agreement"], "input_dtype": str(mod.inp["dtype"].__name__),
            "output_dtype": str(mod.out["dtype"].__name__), "ops": tflite.op_types(mod),
            "tflite_micro_vs_litert_reference": tflm if tflm is not None else "tflite-micro not installed",
            # LiteRT's optimized (XNNPACK) int8 kernels round differently from the reference ones.
            "litert_optimized_vs_reference": {
                "class_agreement": round(float((fast.argmax(1) == ref.argmax(1)).mean()), 4),
                "max_score_diff_steps": int(np.abs(fast - ref.astype(np.int32)).max())}}


def onnx_int8_run(path: Path, tensor: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 windows the int8 model feeds its first layer, its logits) in one ONNX Runtime run.

    The windows are read from the graph itself (after its float input conditioning, if
    any): what tr_classify must be given to match ONNX Runtime bit for bit. Fetching an
    extra output leaves the logits as the unmodified graph computes them."""
    import onnx


    model = onnx.load(str(path))
    model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.UINT8, None))
    tmp = path.with_name("probe.tmp.onnx")
    onnx.save(model, str(tmp))
    try:
        q, logits = session(tmp).run([tensor, OUTPUT_NAME], {INPUT_NAME: x})
    finally:
        tmp.unlink(missing_ok=True)
    return (q.reshape(len(x), -1).astype(np.int16) - 128).astype(np.int8), logits


def _export_c(work: Path, lm, x: np.ndarray, macs: int) -> dict:
    """Generate the C build, compile and run it on the check windows, compare with ONNX Runtime int8."""

    info = generate(work / "model-int8.onnx", work, lm.input_length, list(lm.classes))
    xq, ort = onnx_int8_run(work / "model-int8.onnx", info["input_tensor"], x)
    scores, seconds = compile_and_run(work, xq)
    onepass, stream = _export_c_onepass(work, lm, x)
    sizes = code_bytes(work)
    m4 = sizes.get("cortex_m4_gcc_Os")
    if m4:  # what a Cortex-M4 must hold in RAM to stream: statics, the caller's tr_stream_t, the deepest stack
        stream_t = lm.input_length * (4 if info["conditioning"] else 1) + 4
        m4["ram_stream_total"] = m4["ram"] + stream_t + m4["stack_stream"]
    c_logits = (scores.astype(np.float32) - info["output_zero_point"]) * np.float32(info["output_scale"])
    steps = np.abs(c_logits - ort) / info["output_scale"]
    rr_stream = stream if stream is not None or not lm.card.rr_context else _window_stream(work, lm, info, x)
    rr, rr_check = _export_c_rr_context(work, lm, info, rr_stream)
    return {**info, "files": sorted(p.name for p in work.glob("*.[ch]")),
            "class_agreement_with_onnx_int8": round(float((c_logits.argmax(1) == ort.argmax(1)).mean()), 4),
            "max_score_diff_steps": round(float(steps.max()), 3),
            "code_bytes": sizes,
            # one process over all check windows (start-up and I/O included), gcc -O2, one core
            "latency_ms_per_window_O2": round(1e3 * seconds / len(xq), 4),
            "onepass": onepass,
            **({"rr_context": rr} if rr else {}),
            "cortex_m4_emulated": _emulate_cortex_m4(work, lm, {**info, "macs": macs}, xq, scores, onepass, stream,
                                                     rr_check)}


def _export_c_onepass(work: Path, lm, x: np.ndarray) -> tuple[dict, tuple | None]:
    """The one-pass C stream (tr_onepass.c), checked against tinyrhythm.onepass on the same int8
    model: the check windows joined end to end into one real-ECG stream, pushed in random chunks.
    Also (the stream, the C build's scores on it) for the Cortex-M4 check."""

    hop = lm.input_length // 4  # the monitor's default hop: a quarter window
    try:
        info = generate_onepass(work / "model-int8.onnx", work, lm.input_length, hop)
    except TinyRhythmError as exc:  # e.g. a global-pooling head, or a hop off the trunk's stride
        return {"unavailable": str(exc)}, None
    signal = np.ascontiguousarray(x[:64].reshape(-1), np.float32)
    starts, scores, seconds = run_onepass(work, signal)
    card = ModelCard(name="model-int8", format="onnx", task=lm.task, classes=tuple(lm.classes), fs=lm.fs,
                     input_length=lm.input_length, weights="model-int8.onnx", source="export")
    int8 = LoadedModel("model-int8", OrtModule(work / "model-int8.onnx"), card)
    py_starts, py_logits = onepass_logits(int8, signal, hop)
    if len(starts) > len(py_starts) or (starts != py_starts[: len(starts)]).any():
        raise TinyRhythmError("one-pass C stream: decisions at other windows than tinyrhythm.onepass")
    py = scores_from_logits(py_logits[: len(starts)], info["output_scale"], info["output_zero_point"])
    return {**{k: v for k, v in info.items() if k not in ("output_scale", "output_zero_point")},
            "files": ["tr_onepass.h", "tr_onepass.c", "onepass_main.c"],
            "decisions_checked": int(len(starts)),
            "class_agreement_with_python_onepass": round(float((scores.argmax(1) == py.argmax(1)).mean()), 4),
            "max_score_diff_steps": int(np.abs(scores - py).max()),
            "code_bytes": code_bytes(work, source="tr_onepass.c"),
            "ms_per_decision_O2": round(1e3 * seconds / max(1, len(starts)), 4)}, (signal, scores, hop, starts)


def _window_stream(work: Path, lm, info: dict, x: np.ndarray) -> tuple:
    """Where there is no one-pass stream (e.g. a global-pooling head): the check windows joined end
    to end, classified window by window by the C build at the monitor's hop, in the one-pass
    stream's form (signal, scores, hop, starts)."""
    L, hop = lm.input_length, lm.input_length // 4
    signal = np.ascontiguousarray(x[:64].reshape(-1), np.float32)
    starts = np.arange(0, len(signal) - L + 1, hop)
    xq, _ = onnx_int8_run(work / "model-int8.onnx", info["input_tensor"], np.stack([signal[s:s + L] for s in starts])[:, None])
    return signal, compile_and_run(work, xq)[0], hop, starts


def _export_c_rr_context(work: Path, lm, info: dict, stream: tuple | None) -> tuple[dict | None, dict | None]:
    """The card's RR context as C (tr_rr_context.c), checked against the monitor's Python fusion on
    the one-pass C stream's decisions and the beats NeuroKit finds in that stream: (the report,
    what the check ran on and gave, for the Cortex-M4 run)."""
    fusion = lm.card.rr_fusion
    if fusion is None:
        return None, None
    signal, scores, _, starts = stream
    # The monitor centres a window at start + L/2 samples: a clock at twice the model's rate holds that exactly.
    clock = 2.0 * lm.fs
    beats, centres = 2 * detect_beats(signal, lm.fs), 2 * starts + lm.input_length
    generate_rr_context(fusion, work)
    feats, probs = run_rr_context(work, beats, clock, centres, scores)
    ref = python_reference(fusion, beats, clock, centres, scores, info["output_scale"], info["output_zero_point"])
    # The streaming beat detector a device without one of its own can feed it with (export.c_beats).
    write_beats(work)
    c_beats = run_beats(work, signal, lm.fs, chunk=0)
    check = {"beats": beats, "clock": clock, "centres": centres, "scores": scores, "probs": probs,
             "signal": signal, "fs": lm.fs, "c_beats": c_beats}
    return {"files": RR_FILES + BEATS_FILES, "features": list(RR_FEATURES), "context_s": fusion.context_s,
            "windows_checked": int(len(centres)), "windows_with_context": int((feats[:, -1] > 0).sum()),
            "class_agreement_with_python": round(float((probs.argmax(1) == ref.argmax(1)).mean()), 4),
            "max_abs_prob_diff": float(np.abs(probs - ref).max()),
            "code_bytes": _sizes(work, "tr_rr_context.c"),
            "beats": {"detector": "tr_beats.c (streaming Pan-Tompkins)", "beats_in_check_stream": int(len(c_beats)),
                      "neurokit_beats_in_check_stream": int(len(beats)), "code_bytes": _sizes(work, "tr_beats.c")}}, check


def _sizes(work: Path, source: str) -> dict:
    """Flash, static RAM and deepest stack of one generated or shipped C file, per toolchain."""
    return {cc: {k: v[k] for k in ("text", "data", "bss", "flash", "ram", "stack_max")}
            for cc, v in code_bytes(work, source=source).items()}


# Estimates from instruction counts, stated as assumptions: cycles = instructions x CPI, and
# the energy of a cycle for a low-power Cortex-M4F.
CPI = 1.25  # mostly single-cycle ALU/MAC/SMLAD/VFP ops, 2-cycle loads partly pipelined, zero-wait-state flash
PJ_PER_CYCLE = 54.0  # 30 uA/MHz at 1.8 V


def _emulate_cortex_m4(work: Path, lm, info: dict, xq: np.ndarray, x86_scores: np.ndarray, onepass: dict,
                       stream: tuple | None, rr_check: dict | None = None) -> dict:
    """The -Os build (the one whose flash is reported) run in the unicorn Cortex-M4 emulator:
    instructions per window and per hop of both streams, outputs against the x86 build."""

    missing = available()
    if missing:
        return {"unavailable": f"needs {missing}"}
    m4 = CortexM4(work, "-Os", conditioned=info["conditioning"] is not None, rr=rr_check is not None)
    n_cls = x86_scores.shape[1]
    sc, counts = m4.classify(xq[:4], n_cls)
    per_window = int(np.median(counts))
    out = {"build": "arm-none-eabi-gcc -Os -mcpu=cortex-m4 -mthumb -mfloat-abi=hard, __ARM_FEATURE_DSP kernels",
           "windows_checked": len(counts), "scores_equal_x86": bool(np.array_equal(sc, x86_scores[:4])),
           "instructions_per_window": per_window,
           "instructions_per_mac": round(per_window / info.get("macs", 1), 3) if info.get("macs") else None,
           "cpi_assumed": CPI, "pj_per_cycle_assumed": PJ_PER_CYCLE}
    hop = lm.input_length // 4
    signal = stream[0][: lm.input_length + 24 * hop] if stream else np.ascontiguousarray(
        np.asarray(xq[:8], np.float32).reshape(-1))
    _, w_hops = m4.stream_hops(signal, hop, onepass=False, classes=n_cls,
                               dtype=np.float32 if info["conditioning"] is not None else np.int8)
    out["instructions_per_hop_window_stream"] = int(np.median(w_hops)) if w_hops else None
    if stream and "macs_per_decision" in onepass:
        op_scores, op_hops = m4.stream_hops(signal, hop, onepass=True, classes=n_cls)
        out["instructions_per_hop_onepass"] = int(np.median(op_hops)) if op_hops else None
        out["onepass_scores_equal_x86"] = bool(np.array_equal(op_scores, stream[1][: len(op_scores)].astype(np.int8)))
        out["onepass_decisions_checked"] = len(op_scores)
    if rr_check is not None:  # the RR context and the beat detector: what they add to a decision
        k = min(32, len(rr_check["centres"]))
        probs, counts = m4.rr_fuse(rr_check["beats"], rr_check["clock"], rr_check["centres"][:k], rr_check["scores"][:k])
        beats, n_beats = m4.beats(rr_check["signal"], rr_check["fs"], 125)  # any chunking gives the same beats
        per_sample = n_beats / len(rr_check["signal"])
        out["rr_context"] = {"decisions_checked": k, "instructions_per_fusion": int(np.median(counts)),
                             "max_prob_diff_x86": float(np.abs(probs - rr_check["probs"][:k]).max()),
                             "beats_equal_x86": bool(np.array_equal(beats, rr_check["c_beats"])),
                             "beat_instructions_per_sample": round(per_sample, 1),
                             "beat_instructions_per_second_250Hz": int(round(per_sample * 250)),
                             "beat_cpu_share_250Hz_64MHz": round(per_sample * 250 * CPI / 64e6, 5)}
    for mhz in (64, 190):
        for key in ("window", "hop_onepass"):
            n = per_window if key == "window" else out.get("instructions_per_hop_onepass")
            if n:
                cycles = n * CPI
                out[f"ms_per_{key}_{mhz}MHz"] = round(1e3 * cycles / (mhz * 1e6), 3)
                out[f"uJ_per_{key}"] = round(cycles * PJ_PER_CYCLE * 1e-6, 2)
    return out
