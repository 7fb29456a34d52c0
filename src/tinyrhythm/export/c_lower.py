"""Lowering an ONNX Runtime int8 (QDQ) graph of the CNN family to a list of integer C
operations (export.c emits them): tensors with their scales and zero points, one op per
Conv, BatchNormalization, Add, MaxPool, Pad, Reshape and Gemm, the input conditioning
recognised in front of the first QuantizeLinear."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TinyRhythmError
from ..runtime.ort import conditioning_prefix

SUPPORTED = ("Conv", "BatchNormalization", "Add", "MaxPool", "Pad", "Reshape", "Flatten", "Gemm")


@dataclass
class QTensor:
    name: str
    shape: tuple[int, int]  # (channels, length); dense vectors are (n, 1)
    scale: float
    zero: int
    offset: int = -1
    first: int = 0
    last: int = 0

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass
class Op:
    kind: str
    inputs: list[str]
    output: str
    params: dict = field(default_factory=dict)


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Lowering:
    def __init__(self, path: Path):
        import onnx
        from onnx import numpy_helper

        self.model = onnx.load(str(path))
        g = self.model.graph
        self.inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.tensors: dict[str, QTensor] = {}
        self.ops: list[Op] = []
        self.consts: list[str] = []

    # -- constants ------------------------------------------------------------------
    def const(self, name: str) -> np.ndarray:
        """A constant input as float (dequantized when it is an int8 initializer behind a DQ)."""
        if name in self.inits:
            return self.inits[name].astype(np.float32)
        node = self.producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.inits:
            q, s = self.inits[node.input[0]].astype(np.float32), self.inits[node.input[1]].astype(np.float32)
            z = self.inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else 0.0
            if np.ndim(s) and q.ndim > 1:
                shape = [-1] + [1] * (q.ndim - 1)
                s, z = s.reshape(shape), np.reshape(z, shape)
            return ((q - z) * s).astype(np.float32)
        raise TinyRhythmError(f"{name}: expected a constant")

    def quantized_const(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.inits:
            raise TinyRhythmError(f"{name}: expected an int8 weight (QDQ model)")
        return self.inits[node.input[0]], np.atleast_1d(self.inits[node.input[1]]).astype(np.float32)

    def activation(self, name: str) -> QTensor:
        """The quantized tensor behind a DequantizeLinear output."""
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] in self.inits:
            raise TinyRhythmError(f"{name}: expected a dequantized activation (QDQ model)")
        return self.tensors[node.input[0]]

    # -- graph walk -----------------------------------------------------------------
    def run(self, input_length: int) -> None:
        g = self.model.graph
        shapes: dict[str, tuple[int, int]] = {}
        pending: dict[str, Op] = {}  # float outputs waiting for their QuantizeLinear
        inp = g.input[0].name
        cond = conditioning_prefix(self.model)
        self.conditioning = cond
        if cond is not None:
            inp = cond["output"]  # the float conditioning runs in tr_quantize; the int8 graph starts after it
        for n in g.node:
            if cond is not None and n.name in cond["nodes"]:
                continue
            if n.op_type == "QuantizeLinear":
                scale = float(self.inits[n.input[1]])
                zero = int(self.inits[n.input[2]]) if len(n.input) > 2 else 0
                if self.inits[n.input[2]].dtype != np.uint8:
                    raise TinyRhythmError(f"{n.name}: activations must be uint8")
                src = n.input[0]
                shape = (1, input_length) if src == inp else shapes[src]
                self.tensors[n.output[0]] = QTensor(n.output[0], shape, scale, zero)
                if src == inp:
                    self.input = self.tensors[n.output[0]]
                elif src in pending:
                    pending.pop(src).output = n.output[0]
                else:
                    raise TinyRhythmError(f"{src}: quantized tensor without a supported producer")
                continue
            if n.op_type == "DequantizeLinear":
                continue
            if n.op_type not in SUPPORTED:
                raise TinyRhythmError(f"layer {n.name or n.output[0]} ({n.op_type}) is not supported by the C generator "
                                      f"(supported: {', '.join(SUPPORTED)})")
            shapes[n.output[0]] = self._lower(n, shapes)
            pending[n.output[0]] = self.ops[-1]
        if pending:
            raise TinyRhythmError(f"unquantized outputs: {', '.join(pending)} (not a QDQ model)")
        if g.output[0].name not in {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}:
            raise TinyRhythmError("the model output must be quantized (QDQ model)")
        self.output = self.tensors[self.producer[g.output[0].name].input[0]]

    def _lower(self, n, shapes) -> tuple[int, int]:
        a = _attrs(n)
        if n.op_type == "Conv":
            x = self.activation(n.input[0])
            w, ws = self.quantized_const(n.input[1])
            cout, cin, k = w.shape
            stride, pads = a.get("strides", [1])[0], a.get("pads", [0, 0])
            if a.get("group", 1) != 1 or a.get("dilations", [1])[0] != 1 or cin != x.shape[0]:
                raise TinyRhythmError(f"layer {n.name}: only plain 1-D convolutions are supported")
            bq, _ = self.quantized_const(n.input[2])
            lout = (x.shape[1] + pads[0] + pads[1] - k) // stride + 1
            self.ops.append(Op("conv", [x.name], "", {"w": w, "ws": np.broadcast_to(ws, (cout,)).copy(), "b": bq,
                                                      "k": k, "stride": stride, "pad": pads[0], "cout": cout}))
            return (cout, lout)
        if n.op_type == "BatchNormalization":
            x = self.activation(n.input[0])
            gamma, beta, mean, var = (self.const(i) for i in n.input[1:5])
            # ONNX Runtime's order of operations: inv_std = 1/sqrt(var + eps), scale = inv_std * gamma.
            inv_std = np.float32(1.0) / np.sqrt(var + np.float32(a.get("epsilon", 1e-5)))
            scale = inv_std * gamma
            self.ops.append(Op("affine", [x.name], "", {"a": scale.astype(np.float32),
                                                        "b": (beta - mean * scale).astype(np.float32)}))
            return x.shape
        if n.op_type == "Add":
            x, y = self.activation(n.input[0]), self.activation(n.input[1])
            if x.shape != y.shape:
                raise TinyRhythmError(f"layer {n.name}: Add of different shapes")
            self.ops.append(Op("add", [x.name, y.name], ""))
            return x.shape
        if n.op_type == "MaxPool":
            x = self.activation(n.input[0])
            k, s = a["kernel_shape"][0], a.get("strides", [1])[0]
            pads = a.get("pads", [0, 0])
            ceil = a.get("ceil_mode", 0)
            span = x.shape[1] + pads[0] + pads[1] - k
            lout = (-(-span // s) if ceil else span // s) + 1
            self.ops.append(Op("maxpool", [x.name], "", {"k": k, "stride": s, "pad": pads[0]}))
            return (x.shape[0], lout)
        if n.op_type == "Pad":
            x = self.activation(n.input[0])
            pads = [int(p) for p in self.inits[n.input[1]]]
            if a.get("mode", b"constant") not in (b"constant", "constant") or any(pads[i] for i in (0, 2, 3, 5)):
                raise TinyRhythmError(f"layer {n.name}: only zero channel padding at the end is supported")
            self.ops.append(Op("padc", [x.name], "", {"extra": pads[4]}))
            return (x.shape[0] + pads[4], x.shape[1])
        if n.op_type in ("Reshape", "Flatten"):
            x = self.activation(n.input[0])
            self.ops.append(Op("copy", [x.name], ""))
            return (x.size, 1)
        if n.op_type == "Gemm":
            x = self.activation(n.input[0])
            w, ws = self.quantized_const(n.input[1])
            if not a.get("transB", 0):
                w = w.T
            bq, _ = self.quantized_const(n.input[2])
            self.ops.append(Op("dense", [x.name], "", {"w": np.ascontiguousarray(w), "ws": np.broadcast_to(ws, (w.shape[0],)).copy(),
                                                       "b": bq, "cout": w.shape[0]}))
            return (w.shape[0], 1)
        raise AssertionError(n.op_type)

    # -- memory -----------------------------------------------------------------------
    def plan(self) -> int:
        """First-fit offsets in one arena over tensor lifetimes (op indices)."""
        order = [self.input.name] + [op.output for op in self.ops]
        for t in self.tensors.values():
            t.first, t.last = -1, -1
        self.input.first = 0
        for i, op in enumerate(self.ops, start=1):
            self.tensors[op.output].first = i
            for name in op.inputs:
                self.tensors[name].last = i
        self.output.last = len(self.ops) + 1
        placed: list[QTensor] = []
        peak = 0
        for name in order:
            t = self.tensors[name]
            live = sorted((p for p in placed if p.last >= t.first and p.first <= t.last), key=lambda p: p.offset)
            off = 0
            for p in live:
                if off + t.size <= p.offset:
                    break
                off = max(off, p.offset + p.size)
            off = (off + 3) & ~3
            t.offset = off
            placed.append(t)
            peak = max(peak, off + t.size)
        return (peak + 3) & ~3
