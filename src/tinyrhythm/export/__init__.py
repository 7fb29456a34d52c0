"""Deployable forms of a trained model: ONNX (float and int8)."""
