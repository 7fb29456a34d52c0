"""Phase folding: a thin 1-D convolutional ONNX graph rewritten so that every tensor [C, T]
is carried as [C * P, T / P] (sample t of channel c in channel c * P + t % P, position t // P).

The CNN family's trunk is 2 to 8 channels wide; ONNX Runtime's int8 convolution runs such
thin GEMMs at a few percent of the core's rate (a 2-channel, 16-tap QLinearConv: 4.5 GMAC/s
on this CPU; the same work folded to 16 channels and 3 taps: 64 GMAC/s). Folded, a
convolution of stride s with kernel k becomes a stride-1 convolution from P to P / s phases
whose kernel holds the original taps at the places they reach and zeros elsewhere, so the
integer sums, the requantisation and therefore every output are the same numbers, for any
input whose length is a multiple of the first fold (tests/test_onepass.py checks bit
equality). Per-channel parameters (biases, scales, batch norm) repeat once per phase; max
pooling over pairs of samples becomes a max over pairs of phases; channel padding scales
with the fold. Anything else in the graph: `Unfoldable`, and the caller keeps the plain graph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Unfoldable(Exception):
    pass


class Folded(NamedTuple):
    model: object  # onnx.ModelProto
    out_fold: int  # the fold of the graph's output
    macs_per_sample: float  # what its convolutions execute per input sample, the folding's zeros included


def fold_factor(model, multiple: int, width: int = 32) -> int:
    """The fold that makes the narrowest convolution of `model` (weights constant or dequantized
    constant) at least `width` channels wide: a power-of-two multiple of `multiple` (the graph's
    total stride). Measured on rhythm-cnn3-int8, ms per 40,000 trunk samples on one core:
    unfolded 10.1, fold 4: 4.4, 8: 2.3, 16: 1.9, 32: 2.3."""
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    widths = []
    for n in model.graph.node:
        if n.op_type == "Conv":
            w = producers[n.input[1]].input[0] if n.input[1] in producers else n.input[1]
            if w in inits:
                widths.append(inits[w].dims[0])
    if not widths:
        raise Unfoldable("no convolution with constant weights")
    p = multiple
    while min(widths) * p < width:
        p *= 2
    return p


ELEMENTWISE = {"QuantizeLinear", "DequantizeLinear", "Add", "Relu", "Clip", "Sub", "Mul"}


def folded_conv_weight(w: np.ndarray, stride: int, p_in: int, pad_left: int) -> tuple[np.ndarray, int, int]:
    """(weights [Cout * P_out, Cin * P_in, k'], folded left pad, folded right pad) of a
    convolution of `stride` with `pad_left` zeros on the left, its input folded by p_in."""
    c_out, c_in, k = w.shape
    p_out = p_in // stride
    lo = -pad_left // p_in  # floor: the first folded input position an output phase reaches, relative to its own
    hi = (stride * (p_out - 1) + k - 1 - pad_left) // p_in
    kf = hi - lo + 1
    out = np.zeros((c_out, p_out, c_in, p_in, kf), w.dtype)
    for q in range(p_out):
        for kk in range(kf):
            for r in range(p_in):
                j = p_in * (kk + lo) + r - stride * q + pad_left
                if 0 <= j < k:
                    out[:, q, :, r, kk] = w[:, :, j]
    return out.reshape(c_out * p_out, c_in * p_in, kf), -lo, hi


def _per_channel(a: np.ndarray | None) -> bool:
    return a is not None and a.ndim == 1 and a.size > 1


def fold(model, p0: int) -> Folded:
    """A copy of `model` (an onnx.ModelProto whose one input is [N, 1, T]) folded by p0 at its
    input. Raises Unfoldable."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    arr = {name: numpy_helper.to_array(i) for name, i in inits.items()}
    producers = {o: n for n in g.node for o in n.output}
    new_inits: list = []
    extra: list = []  # dequantizations of folded parameters: constants only, placed first
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13)

    made: set[str] = set()  # a constant shared by two nodes is folded once

    def add_init(name: str, value: np.ndarray) -> str:
        if name not in made:
            made.add(name)
            new_inits.append(numpy_helper.from_array(value, name))
        return name

    def repeat_param(name: str, p: int) -> str:
        """A per-channel parameter (an initializer or DequantizeLinear of one) repeated per phase."""
        if f"{name}__fold{p}" in made:
            return f"{name}__fold{p}"
        if name in arr:
            return add_init(f"{name}__fold{p}", np.repeat(arr[name], p, axis=0))
        dq = producers.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in arr:
            raise Unfoldable(f"parameter {name} is neither a constant nor a dequantized constant")
        ins = [repeat_param(i, p) if k == 0 or _per_channel(arr.get(i)) else i for k, i in enumerate(dq.input)]
        out = f"{name}__fold{p}"
        made.add(out)
        extra.append(helper.make_node("DequantizeLinear", ins, [out], name=f"{dq.name}__fold{p}",
                                      **{a.name: helper.get_attribute_value(a) for a in dq.attribute}))
        return out

    params = {i for n in g.node if n.op_type in ("Conv", "BatchNormalization") for i in n.input[1:]}
    if [d.dim_value for d in g.input[0].type.tensor_type.shape.dim][1:2] != [1]:
        raise Unfoldable("the input is not one channel")
    folds = {g.input[0].name: p0}
    channels = {g.input[0].name: p0}  # of each folded tensor: original channels x its fold
    nodes = []
    macs = 0  # per folded position; every folded convolution has stride 1 at 1/p0 of the input rate
    for n in list(g.node):
        if n.op_type == "DequantizeLinear" and n.input[0] in arr and all(o in params for o in n.output):
            continue  # a parameter's dequantization: a folded copy replaces it where it is used
        acts = [i for i in n.input if i in folds]
        if not acts:
            nodes.append(n)  # constants only
            continue
        p, ch = folds[acts[0]], channels[acts[0]]
        if any(folds[i] != p for i in acts):
            raise Unfoldable(f"{n.name}: inputs folded differently")
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ELEMENTWISE:
            # Layout-free only if every other operand is one number (or an activation folded alike).
            others = [i for i in n.input if i and i not in folds]
            if any(i not in arr or arr[i].size > 1 for i in others):
                raise Unfoldable(f"{n.name}: {n.op_type} with a per-channel or computed operand")
            nodes.append(n)
            out_p = p
        elif n.op_type == "Conv":
            stride = int(attrs.get("strides", [1])[0])
            if attrs.get("group", 1) != 1 or list(attrs.get("dilations", [1])) != [1] or p % stride:
                raise Unfoldable(f"{n.name}: grouped, dilated, or stride {stride} does not divide fold {p}")
            dq = producers.get(n.input[1])
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in arr:
                raise Unfoldable(f"{n.name}: weights are not a dequantized constant")
            pads = list(attrs.get("pads", [0, 0]))
            wf, pl, pr = folded_conv_weight(arr[dq.input[0]], stride, p, pads[0])
            out_p = p // stride
            ch = wf.shape[0]
            macs += wf.size
            w_ins = [add_init(f"{dq.input[0]}__fold{p}s{stride}l{pads[0]}", wf)] + [
                repeat_param(i, out_p) if _per_channel(arr.get(i)) else i for i in dq.input[1:]]
            w_out = f"{n.name}__weight"
            nodes.append(helper.make_node("DequantizeLinear", w_ins, [w_out], name=f"{n.name}__weight",
                                          **{a.name: helper.get_attribute_value(a) for a in dq.attribute}))
            ins = [n.input[0], w_out] + [repeat_param(b, out_p) for b in n.input[2:]]
            nodes.append(helper.make_node("Conv", ins, list(n.output), name=n.name, group=1, dilations=[1], strides=[1],
                                          kernel_shape=[wf.shape[-1]], pads=[pl, pr]))
        elif n.op_type == "BatchNormalization":
            ins = [n.input[0]] + [repeat_param(i, p) for i in n.input[1:]]
            nodes.append(helper.make_node("BatchNormalization", ins, list(n.output), name=n.name, **attrs))
            out_p = p
        elif n.op_type == "MaxPool":
            if (list(attrs.get("kernel_shape", [])) != [2] or list(attrs.get("strides", [])) != [2]
                    or any(attrs.get("pads", [0, 0])) or p % 2):
                raise Unfoldable(f"{n.name}: only 2-sample max pooling folds")
            out_p, ch = p // 2, ch // 2
            # channel c * p + 2 q + r -> [c * p / 2 + q, r]: the max over r pools sample pairs
            pairs = add_init(f"{n.name}__pairs", np.array([0, ch, 2, -1], np.int64))
            t0 = f"{n.output[0]}__pairs"
            reduce = (helper.make_node("ReduceMax", [t0, add_init(f"{n.name}__axes", np.array([2], np.int64))],
                                       list(n.output), name=f"{n.name}__max", keepdims=0) if opset >= 18 else
                      helper.make_node("ReduceMax", [t0], list(n.output), name=f"{n.name}__max", keepdims=0, axes=[2]))
            nodes += [helper.make_node("Reshape", [n.input[0], pairs], [t0], name=f"{n.name}__pairs"), reduce]
        elif n.op_type == "Pad":
            pads = arr.get(n.input[1])
            if pads is None or len(pads) != 6 or pads[[0, 2, 3, 5]].any() or attrs.get("mode", b"constant") != b"constant":
                raise Unfoldable(f"{n.name}: only constant channel padding folds")
            new = pads.copy()
            new[[1, 4]] *= p
            ch += int(new[1] + new[4])
            nodes.append(helper.make_node("Pad", [n.input[0], add_init(f"{n.input[1]}__fold{p}", new)] + list(n.input[2:]),
                                          list(n.output), name=n.name, **attrs))
            out_p = p
        else:
            raise Unfoldable(f"{n.name}: {n.op_type} does not fold")
        for o in n.output:
            folds[o], channels[o] = out_p, ch
    del g.node[:]
    g.node.extend(extra + nodes)
    g.initializer.extend(new_inits)
    out_fold = folds.get(g.output[0].name)
    if out_fold is None:
        raise Unfoldable("the output does not depend on the input")
    del g.value_info[:]  # the unfolded shapes
    for v in (*g.input, *g.output):
        for d, name in zip(v.type.tensor_type.shape.dim, ("batch", "channels", "time")):
            d.ClearField("dim_value")
            d.dim_param = name
    return Folded(m, out_fold, macs / p0)
