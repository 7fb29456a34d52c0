"""Compression: distillation, pruning, quantization and the study runner, on real CinC windows."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinyrhythm import models
from tinyrhythm.checkpoint import record_hash
from tinyrhythm.compress.distill import distillation_loss
from tinyrhythm.compress.prune import MaskHook, PruneConfig, channel_prune, magnitude_masks, prunable, size_report
from tinyrhythm.compress.quantize import convert_torch, fidelity, prepare_torch
from tinyrhythm.runtime import load_model
from tinyrhythm.windows.store import WindowStore

from conftest import CINC, assert_one_line_error, run_cli


def test_distillation_loss_terms():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, 4), torch.randn(16, 4), torch.randint(0, 4, (16,))
    assert torch.allclose(distillation_loss(s, t, y, 1.0, 4.0), F.cross_entropy(s, y))
    # Student equal to teacher: the soft term vanishes, only alpha * CE is left.
    assert torch.allclose(distillation_loss(t, t, y, 0.3, 2.0), 0.3 * F.cross_entropy(t, y), atol=1e-6)
    kl = F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean")
    assert torch.allclose(distillation_loss(s, t, y, 0.0, 4.0), 16 * kl, atol=1e-5)


def test_distill_cli_trains_a_student(small_store, tmp_path):
    out = tmp_path / "kd"
    proc = run_cli("distill", "--teacher", "cnn5", "--student", "cnn1", "--store", small_store, "--epochs", "1",
                   "--samples-per-epoch", "256", "--batch-size", "64", "--threads", "1", "--temperature", "2",
                   "--alpha", "0.3", "--out", out, "--quiet", "--json", check=0)
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert (cfg["teacher"], cfg["kd_temperature"], cfg["kd_alpha"], cfg["model"]) == ("cnn5", 2.0, 0.3, "cnn1")
    assert json.loads(proc.stdout)["test"]["n"] > 0


def test_teacher_with_another_label_set_is_refused(small_store, tmp_path):
    teacher = tmp_path / "teacher3"
    teacher.mkdir()
    model = models.create("cnn1", num_classes=3)
    torch.save(model.state_dict(), teacher / "model.pt")
    (teacher / "config.json").write_text(json.dumps({
        "model": {"name": "cnn1", **model.config.to_dict()}, "classes": ["normal", "arrhythmia", "noise"],
        "task": {"name": "study3"}, "fs": 62.5, "input_length": 513}))
    record_hash(teacher / "model.pt")
    proc = run_cli("distill", "--teacher", teacher, "--student", "cnn1", "--store", small_store, "--epochs", "1",
                   "--out", tmp_path / "kd")
    assert_one_line_error(proc, "label set")
    assert_one_line_error(run_cli("distill", "--teacher", "cnn5", "--student", "cnn1", "--store", small_store,
                                  "--alpha", "1.5", "--out", tmp_path / "kd2"), "kd_alpha")


def test_magnitude_masks_hit_the_sparsity():
    model = load_model("cnn3").model
    for scope in ("layer", "global"):
        masks = magnitude_masks(model, 0.7, scope)
        kept = sum(int(m.sum()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        assert abs(1 - kept / total - 0.7) < 0.01, scope
        if scope == "layer":
            for m in masks.values():
                assert abs(1 - m.float().mean().item() - 0.7) < 0.5 / m.numel() * 2 + 0.01
    # Global pruning keeps the largest weights wherever they are.
    g = magnitude_masks(model, 0.5, "global")
    w = torch.cat([p.detach().abs().flatten() for p in prunable(model).values()])
    kept = torch.cat([(p.detach().abs() * m).flatten() for p, m in zip(prunable(model).values(), g.values())])
    assert kept[kept > 0].min() >= torch.quantile(w, 0.49)


def test_gradual_schedule_rises_to_the_target():
    hook = MaskHook(PruneConfig(method="gradual", sparsity=0.8, finetune_epochs=5), total_steps=100, steps_per_epoch=20)
    targets = [hook.target(t) for t in range(0, 101)]
    assert targets[0] == 0 and targets[70] == pytest.approx(0.8) and targets[100] == pytest.approx(0.8)
    assert all(b >= a for a, b in zip(targets, targets[1:]))
    assert targets[35] > 0.8 * (1 - 0.5 ** 3) - 1e-9  # the cubic prunes fast early, slowly late


def test_channel_pruning_is_exact_surgery_and_cuts_macs():
    model = load_model("cnn3").model
    x = torch.randn(8, 1, 513)
    # Silence half of every block's inner channels: removing exactly those changes nothing.
    with torch.no_grad():
        for blk in [model.first_bn, *[b.bn2 for b in model.blocks]]:
            n = blk.weight.numel()
            dead = torch.arange(n) % 2 == 1 if n > 1 else torch.zeros(1, dtype=torch.bool)
            blk.weight[dead] = 0
            blk.bias[dead] = -1.0  # ReLU(BN) == 0 for these channels
        ref = model(x)
    pruned = channel_prune(model, 0.5)
    assert torch.allclose(pruned.eval()(x), ref, atol=1e-5)
    assert models.count_macs(pruned) < 0.55 * models.count_macs(model)
    assert size_report(pruned)["params"] < size_report(model)["params"]
    # The narrower model round-trips through its saved architecture.
    again = models.from_config(json.loads(json.dumps(pruned.config.to_dict())))
    again.load_state_dict(pruned.state_dict())


def test_prune_cli_and_the_pruned_run_predicts(small_store, tmp_path):
    out = tmp_path / "p"
    proc = run_cli("prune", "cnn3", "--method", "magnitude", "--scope", "global", "--sparsity", "0.6",
                   "--finetune-epochs", "1", "--store", small_store, "--out", out, "--quiet", "--json", check=0)
    r = json.loads(proc.stdout)
    assert r["sparsity"] == pytest.approx(0.6, abs=0.01) and r["sparse_bytes"] < r["dense_bytes"]
    state = torch.load(out / "model.pt", weights_only=True)
    conv = state["blocks.3.conv1.weight"]
    assert 0 < float((conv == 0).float().mean()) < 1
    line = json.loads(run_cli("predict", "--model", out, "--json", CINC / "A00001.hea", check=0).stdout)
    assert line["record"] == "A00001"
    ch = run_cli("prune", "cnn3", "--method", "channel", "--sparsity", "0.6", "--finetune-epochs", "0",
                 "--store", small_store, "--out", tmp_path / "c", "--json", check=0)
    rc = json.loads(ch.stdout)
    assert rc["macs"] <= 0.5 * rc["parent_size"]["macs"] and rc["latency_ms"] > 0


@pytest.mark.parametrize("args, fragment", [
    (["--method", "magnitude", "--sparsity", "1.5"], "sparsity must lie in [0, 1)"),
    (["--method", "magnitude", "--sparsity", "-0.1"], "sparsity must lie in [0, 1)"),
    (["--method", "snip", "--sparsity", "0.5"], "unknown pruning method 'snip'"),
    (["--method", "magnitude", "--sparsity", "0.5", "--scope", "row"], "unknown pruning scope"),
])
def test_bad_prune_options(args, fragment, tmp_path):
    assert_one_line_error(run_cli("prune", "cnn3", *args, "--out", tmp_path / "x"), fragment)
    assert not (tmp_path / "x").exists()


def test_fbgemm_int8_matches_float_on_real_windows(small_store):
    """The PyTorch int8 engine against its float parent: a broken kernel shows up here."""
    lm = load_model("cnn3")
    ws = WindowStore(small_store)
    x = ws.batch(ws.indices("val")[:512])[0][:, None, :]
    calib = ws.batch(ws.indices("train")[:256])[0][:, None, :]
    prepared = prepare_torch(lm.model, 513, qat=False)
    with torch.no_grad():
        prepared(torch.from_numpy(calib))
    q = convert_torch(prepared)
    assert torch.backends.quantized.engine == "fbgemm"
    fid = fidelity(lm.model, q, x)
    assert fid["sqnr_db"] > 15 and fid["argmax_agreement"] > 0.93, fid
    # Fused Conv+BN(+ReLU) int8 modules, not functional convolutions with float BatchNorm between.
    kinds = {type(m).__name__ for m in q.modules()}
    assert {"ConvReLU1d", "Linear"} <= kinds, kinds


def test_quantize_ptq_cli_int8_onnx(small_store, tmp_path):
    out = tmp_path / "q"
    proc = run_cli("quantize", "cnn3", "--method", "ptq", "--calibration", "percentile", "--calibration-windows", "512",
                   "--store", small_store, "--out", out, "--json", check=0)
    r = json.loads(proc.stdout)
    fid = r["fidelity_val"]
    assert fid["sqnr_db"] > 14 and fid["argmax_agreement"] > 0.9, fid
    assert r["weight_bytes"] <= 16 * 1024 < r["float_weight_bytes"]
    assert abs(r["test"]["cinc_score"] - r["parent_test"]["cinc_score"]) < 0.1
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    lines = run_cli("predict", "--model", out, "--json", CINC / "A00001.hea", CINC / "A00004.hea", check=0).stdout
    assert [json.loads(l)["record"] for l in lines.splitlines()] == ["A00001", "A00004"]
    # The run's model file itself loads with the run's card.
    lm = load_model(out / "model.onnx")
    assert lm.card.source == "run" and lm.card.format == "onnx" and lm.name == "q"
    # A tampered int8 model is refused.
    raw = bytearray((out / "model.onnx").read_bytes())
    raw[-10] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(raw))
    assert_one_line_error(run_cli("predict", "--model", out, CINC / "A00001.hea"), "model.onnx", "tampered")


@pytest.mark.slow
def test_qat_cli_fine_tunes_and_runs_int8(small_store, tmp_path):
    out = tmp_path / "qat"
    r = json.loads(run_cli("quantize", "cnn1", "--method", "qat", "--qat-epochs", "1", "--store", small_store,
                           "--out", out, "--quiet", "--json", check=0).stdout)
    assert r["format"] == "fbgemm" and r["fidelity_val"]["argmax_agreement"] > 0.7
    assert (out / "prepared.pt").is_file() and (out / "qat" / "history.json").is_file()
    # The saved run reloads as the same int8 model.
    lm = load_model(out)
    x = WindowStore(small_store).batch(np.arange(64))[0][:, None, :]
    assert lm.model(torch.from_numpy(x)).shape == (64, 4)


@pytest.mark.parametrize("args, fragment", [
    (["--method", "ptq", "--calibration-windows", "0"], "needs calibration data"),
    (["--method", "int4"], "unknown quantization method 'int4'"),
    (["--method", "ptq", "--calibration", "kl"], "unknown calibration 'kl'"),
])
def test_bad_quantize_options(args, fragment, tmp_path):
    assert_one_line_error(run_cli("quantize", "cnn3", *args, "--out", tmp_path / "x"), fragment)
    assert not (tmp_path / "x").exists()


def test_quantize_without_any_calibration_data(tmp_path):
    """A run folder whose store is gone and whose config cannot rebuild one."""
    run = tmp_path / "run"
    run.mkdir()
    model = models.create("cnn1", num_classes=4)
    torch.save(model.state_dict(), run / "model.pt")
    (run / "config.json").write_text(json.dumps({
        "model": {"name": "cnn1", **model.config.to_dict()}, "classes": ["N", "A", "O", "~"],
        "task": {"name": "cinc2017"}, "fs": 62.5, "input_length": 513}))
    record_hash(run / "model.pt")
    assert_one_line_error(run_cli("quantize", run, "--method", "ptq", "--out", tmp_path / "q"), "no calibration data")


def test_study_runs_a_grid_resumes_and_writes_tables(small_store, tmp_path):
    study = {"out": str(tmp_path / "study"), "store": str(small_store), "cells": [
        {"name": "cnn1-fp32", "kind": "baseline", "model": "cnn1"}],
        "grids": [{"kind": "quantize", "parent": "cnn1", "method": ["fp16", "ptq"], "calibration_windows": 128,
                   "name": "{parent}-{method}"},
                  {"kind": "prune", "parent": "@cnn1-ptq", "method": "channel", "sparsity": 0.5, "finetune_epochs": 0,
                   "name": "bad-{method}"}]}
    cfg = tmp_path / "study.json"
    study["grids"].pop()  # pipelines from a quantized parent are refused; tested below
    cfg.write_text(json.dumps(study))
    rows = json.loads(run_cli("study", cfg, "--quiet", "--json", check=0).stdout)
    assert [r["name"] for r in rows] == ["cnn1-fp32", "cnn1-fp16", "cnn1-ptq"]
    by = {r["name"]: r for r in rows}
    assert by["cnn1-ptq"]["bytes"] < by["cnn1-fp16"]["bytes"] < by["cnn1-fp32"]["bytes"]
    ratio = models.describe("cnn5", 4)["float32_bytes"] / models.describe("cnn1", 4)["float32_bytes"]
    assert by["cnn1-fp32"]["ratio_vs_cnn5_fp32"] == pytest.approx(ratio, abs=0.01)
    out = tmp_path / "study"
    for f in ("results.csv", "results.md", "pareto.png"):
        assert (out / f).stat().st_size > 100
    stamp = (out / "cnn1-ptq" / "metrics.json").stat().st_mtime_ns
    run_cli("study", cfg, "--quiet", check=0)
    assert (out / "cnn1-ptq" / "metrics.json").stat().st_mtime_ns == stamp  # finished cells are not run again
    # A pipeline step whose parent has not run is skipped, not failed.
    study["cells"].append({"name": "later", "kind": "quantize", "parent": "@not-yet", "method": "fp16"})
    cfg.write_text(json.dumps(study))
    proc = run_cli("study", cfg, check=0)
    assert "skipping later: waiting for not-yet" in proc.stderr and not (out / "later").exists()
    study["cells"].append({"name": "x", "kind": "squash", "model": "cnn1"})
    cfg.write_text(json.dumps(study))
    assert_one_line_error(run_cli("study", cfg), "unknown kind 'squash'")
