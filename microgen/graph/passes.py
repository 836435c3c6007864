"""Float graph passes: pure functions Graph -> Graph that simplify a float model before quantization.

`optimize(graph)` runs them in order. Each pass keeps what the graph computes (up to float32 rounding
of folded constants), returns a verified graph, and returns the same graph object when nothing
changed. They only touch float ops: quantized ops are left alone (their arithmetic is fixed by the
model's own params).

Why these three: a quantizer must see one op where the int8 kernel runs one op. A batch-norm left as
MUL + ADD after a conv would get its own int8 tensors (three roundings instead of one, and ops TFLM
runs slowly); a RELU left as a separate op would be quantized over the conv's full range, wasting
half the int8 codes on negatives the RELU throws away.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .ir import DType, Graph, Op, Tensor
from .verify import verify

# Ops whose output can absorb a following clamp as their fused `activation` (TFLite's fused ops; a
# TRANSPOSE_CONV is left out because TFLM ignores its fused activation).
FUSIBLE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL")
# (min, max) of a CLIP -> the fused activation that computes it.
CLIP_ACTIVATIONS = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}
# MAC ops and the axis of their weights that runs along the output channels.
OUT_CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}


def optimize(graph: Graph) -> Graph:
    """The float pipeline, in order.

    1. remove_dead_code: later passes match "only consumer" patterns, which dead ops would block.
    2. fold_batch_norm: MUL / ADD / SUB by per-channel constants after a conv or FC become its weights
       and bias (it also moves an ADD's fused activation onto the conv).
    3. fuse_activations: RELU / RELU6 / RELU_N1_TO_1 clamps after CONV / FC / ADD / SUB / MUL become
       their fused activation (after 2, so a batch-norm's RELU lands on the conv).
    4. remove_dead_code again: the folded constants nobody reads any more are dropped.
    """
    for step in (remove_dead_code, fold_batch_norm, fuse_activations, remove_dead_code):
        graph = step(graph)
    return graph


def remove_dead_code(graph: Graph) -> Graph:
    """Drop ops none of whose outputs reaches a graph output, and tensors nobody uses.

    Pre: a valid graph. Post: every op contributes to some graph output; the graph outputs are
    unchanged. Ops are side-effect free, so dropping an unused one never changes a result.
    """
    needed = set(graph.outputs)
    kept: list[Op] = []
    for op in reversed(graph.ops):
        if any(name in needed for name in op.outputs):
            kept.append(op)
            needed.update(n for n in op.inputs if n)
    if len(kept) == len(graph.ops) and len(graph.with_ops(graph.ops).tensors) == len(graph.tensors):
        return graph
    return verify(graph.with_ops(reversed(kept)))


def fold_batch_norm(graph: Graph) -> Graph:
    """Fold y = conv(x) * s + t (MUL, then ADD or SUB, by per-channel constants) into the conv.

    Matches CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with float32 constant weights (and constant
    bias, or none), no fused activation, whose output is read only by one MUL / ADD / SUB with a
    constant operand that is a scalar or runs along the last (channel) axis only, and is not a graph
    output. MUL scales the weights' output-channel slices and the bias; ADD / SUB shift the bias; the
    elementwise op's fused activation moves onto the conv. Repeats until nothing matches (MUL then
    ADD: a whole batch-norm).

    Pre: a valid graph. Post: a valid graph computing the same values (the folded weights and bias are
    computed in float64 and rounded once to float32); no MUL/ADD/SUB by a per-channel constant
    directly follows a foldable conv or FC.
    """
    changed = False
    while True:
        step = _fold_one(graph)
        if step is None:
            return verify(graph) if changed else graph
        graph, changed = step, True


def fuse_activations(graph: Graph) -> Graph:
    """Turn CLIP(0, inf) / CLIP(0, 6) / CLIP(-1, 1) after a FUSIBLE float op into its fused activation.

    Matches an op in FUSIBLE with activation NONE whose float output is read only by the CLIP and is
    not a graph output. The op then writes the CLIP's output tensor directly.

    Pre: a valid graph. Post: a valid graph computing the same values, with one op fewer per fusion.
    """
    consumers = graph.consumers()
    producers = graph.producers()
    drop: set[int] = set()
    replace: dict[int, Op] = {}
    for op in graph.ops:
        if op.kind != "CLIP":
            continue
        key = _clip_key(op)
        src = producers.get(op.inputs[0])
        if key not in CLIP_ACTIVATIONS or src is None or id(src) in replace:
            continue
        if not _single_float_use(graph, src, consumers):
            continue
        if src.kind not in FUSIBLE or src.attrs.get("activation", "NONE") != "NONE":
            continue
        attrs = dict(src.attrs, activation=CLIP_ACTIVATIONS[key])
        replace[id(src)] = dataclasses.replace(src, outputs=op.outputs, attrs=attrs)
        drop.add(id(op))
    if not replace:
        return graph
    ops = [replace.get(id(op), op) for op in graph.ops if id(op) not in drop]
    return verify(graph.with_ops(ops))


# -- helpers -------------------------------------------------------------------------------------------

def _clip_key(op: Op) -> tuple[float | None, float | None]:
    lo, hi = op.attrs.get("min"), op.attrs.get("max")
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def _single_float_use(graph: Graph, op: Op, consumers: dict[str, list[Op]]) -> bool:
    """Does op have one float output, read by exactly one op and not a graph output?"""
    if len(op.outputs) != 1:
        return False
    out = op.outputs[0]
    return (graph.tensors[out].dtype.is_float and out not in graph.outputs
            and len(consumers.get(out, [])) == 1)


def _channel_vector(t: Tensor | None, channels: int) -> np.ndarray | None:
    """A float constant that broadcasts along the last axis only, as a float64 [channels] vector."""
    if t is None or not t.is_const or not t.dtype.is_float:
        return None
    shape = tuple(t.shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    if shape not in ((), (1,), (channels,)):
        return None
    return np.broadcast_to(t.data.astype(np.float64).reshape(-1), (channels,)).copy()


def _fold_one(graph: Graph) -> Graph | None:
    """Fold the first matching (conv, MUL/ADD/SUB) pair; None when nothing matches."""
    consumers = graph.consumers()
    for op in graph.ops:
        axis = OUT_CHANNEL_AXIS.get(op.kind)
        if axis is None or op.attrs.get("activation", "NONE") != "NONE":
            continue
        ins = graph.op_inputs(op)
        w, b = ins[1], (ins[2] if len(ins) > 2 else None)
        if w is None or not w.is_const or w.dtype is not DType.FLOAT32 or (b is not None and not b.is_const):
            continue
        if not _single_float_use(graph, op, consumers):
            continue
        nxt = consumers[op.outputs[0]][0]
        if nxt.kind not in ("MUL", "ADD", "SUB") or len(nxt.inputs) != 2:
            continue
        out = op.outputs[0]
        other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
        if other == out or (nxt.kind == "SUB" and nxt.inputs[0] != out):
            continue  # x*x, or c - conv(x), which is not a bias shift
        channels = w.shape[axis]
        vec = _channel_vector(graph.tensors[other], channels)
        y = graph.tensors[nxt.outputs[0]]
        if vec is None or y.shape != graph.tensors[out].shape:
            continue  # not per-channel, or the constant broadcasts the output to a bigger shape
        bias = np.zeros(channels) if b is None else b.data.astype(np.float64)
        weights = w.data.astype(np.float64)
        if nxt.kind == "MUL":
            shape = [1] * weights.ndim
            shape[axis] = channels
            weights = weights * vec.reshape(shape)
            bias = bias * vec
        else:
            bias = bias + vec if nxt.kind == "ADD" else bias - vec
        tensors = dict(graph.tensors)
        w_name = _fresh(tensors, f"{w.name}/folded") if nxt.kind == "MUL" else w.name
        if nxt.kind == "MUL":
            tensors[w_name] = Tensor(w_name, w.shape, w.dtype, None, weights.astype(np.float32))
        b_name = _fresh(tensors, f"{op.outputs[0]}/bias_folded")
        tensors[b_name] = Tensor(b_name, (channels,), w.dtype, None, bias.astype(np.float32))
        attrs = dict(op.attrs, activation=nxt.attrs.get("activation", "NONE"))
        folded = dataclasses.replace(op, inputs=(op.inputs[0], w_name, b_name), outputs=nxt.outputs,
                                     attrs=attrs)
        ops = [folded if o is op else o for o in graph.ops if o is not nxt]
        return graph.with_ops(ops, tensors=tensors)
    return None


def _fresh(tensors: dict[str, Tensor], hint: str) -> str:
    name, k = hint, 1
    while name in tensors:
        k += 1
        name = f"{hint}_{k}"
    return name
