"""ONNX export: the conversion and the ONNX Runtime runner live in the runtime layer
(tinyrhythm.runtime.ort), which compression and the one-pass monitor use too; this module
keeps the names export code and users' scripts import."""

from ..runtime.ort import (INPUT_NAME, OUTPUT_NAME, OrtModule, export_onnx, latency_ms, session,  # noqa: F401
                           session_from_bytes, weight_bytes)
