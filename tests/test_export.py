"""`tinyrhythm export --format onnx`: files that ONNX Runtime loads and that agree with the model."""

import json

import numpy as np
import onnx
import torch

from tinyrhythm.export.onnx import OrtModule
from tinyrhythm.inference import load_model
from tinyrhythm.windows.store import WindowStore

from conftest import assert_one_line_error, run_cli


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
    run_cli("export", "cnn1", "--format", "onnx", "--out", out, "--force", "--store", small_store, check=0)
    assert not (out / "keep.txt").exists() and (out / "model-int8.onnx").is_file()
