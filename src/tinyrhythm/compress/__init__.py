"""Compression: knowledge distillation, pruning and quantization, each measured against its parent."""
