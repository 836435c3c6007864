"""Which params each activation gets: the op rules of the TFLite int8 spec, and tied tensor groups.

Three kinds of ops (OP_RULES):
- "own": the output gets params from its own observed range (conv, FC, add, mul, mean, clamps, ...).
- "fixed": the spec fixes the output params (int8 SOFTMAX and LOGISTIC: 1/256, zp -128; TANH: 1/128,
  zp 0), because TFLM's kernels only implement those.
- "same": the output must have exactly the input's params (pools, reshape, transpose, pad, slice,
  split, resize; concatenation: every input and the output), because TFLM's kernels move or compare
  raw integers without rescaling.

"same" ops tie tensors into groups (union-find); a group gets the union of its members' ranges, or
the fixed params of a member. Two members with different fixed params are not tied (the rewrite then
inserts a requantizing QUANTIZE). Each group is int8, or int16 (symmetric, zp 0) when chosen for a
16x8 layer: only groups whose producers all have a 16x8 kernel (INT16_OPS) and that hold no graph
input or output (the io stays int8) can be int16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..errors import InvalidInputError, UnsupportedOpError
from ..graph import DType, Graph, QuantParams
from .params import activation_params, f32

OP_RULES: dict[str, str] = {
    **{k: "own" for k in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
                          "ADD", "SUB", "MUL", "MEAN", "CLIP", "LEAKY_RELU", "HARD_SWISH")},
    **{k: "fixed" for k in ("SOFTMAX", "LOGISTIC", "TANH")},
    **{k: "same" for k in ("MAX_POOL", "AVERAGE_POOL", "RESHAPE", "TRANSPOSE", "PAD", "SLICE", "SPLIT",
                           "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION")},
}
FIXED_INT8 = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128), "TANH": (1.0 / 128, 0)}
# Producers that have a 16x8 kernel in TFLM (int16 activations, int8 weights) and in microgen's C.
INT16_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MAX_POOL", "AVERAGE_POOL", "RESHAPE")


@dataclass(frozen=True)
class Plan:
    """Quantized dtype and params of every float activation tensor of the graph, and its group."""

    params: Mapping[str, QuantParams]
    dtypes: Mapping[str, DType]
    group: Mapping[str, str]          # tensor -> its group's root tensor name
    ranges: Mapping[str, tuple[float, float]]  # tensor -> its group's real range


def check_supported(graph: Graph) -> None:
    """Raise one UnsupportedOpError naming every op the quantizer cannot handle (and why)."""
    problems = []
    for op in graph.ops:
        if op.kind not in OP_RULES:
            problems.append(f"{op.where()} {op.kind}")
            continue
        for t in graph.op_outputs(op) + [t for t in graph.op_inputs(op) if t is not None and not t.is_const]:
            if not t.dtype.is_float:
                problems.append(f"{op.where()} {op.kind} ({t.name!r} is {t.describe()}: the model is "
                                f"already quantized)")
                break
    if problems:
        raise UnsupportedOpError(f"graph {graph.name!r}: cannot quantize {len(problems)} op(s): "
                                 + "; ".join(problems))


def activation_order(graph: Graph) -> list[str]:
    """Float activation tensors: graph inputs, then op outputs in execution order."""
    order = [n for n in graph.inputs]
    for op in graph.ops:
        order.extend(op.outputs)
    return [n for n in dict.fromkeys(order) if not graph.tensors[n].is_const]


def tie_groups(graph: Graph) -> dict[str, str]:
    """tensor -> group root: the tensors "same" ops force to share params (see module docstring)."""
    order = activation_order(graph)
    rank = {n: i for i, n in enumerate(order)}
    parent = {n: n for n in order}
    fixed: dict[str, tuple[float, int]] = {}
    for op in graph.ops:
        if OP_RULES.get(op.kind) == "fixed":
            fixed[op.outputs[0]] = FIXED_INT8[op.kind]

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for op in graph.ops:
        if OP_RULES.get(op.kind) != "same":
            continue
        members = [n for n in (op.inputs if op.kind == "CONCATENATION" else op.inputs[:1]) if n and n in parent]
        members += list(op.outputs)
        for other in members[1:]:
            a, b = find(members[0]), find(other)
            if a == b or (a in fixed and b in fixed and fixed[a] != fixed[b]):
                continue  # already tied, or two fixed params that cannot be one: requantize instead
            root, child = (a, b) if rank[a] <= rank[b] else (b, a)
            parent[child] = root
            if child in fixed:
                fixed.setdefault(root, fixed[child])
    return {n: find(n) for n in order}


def int16_candidates(graph: Graph, groups: Mapping[str, str] | None = None) -> list[str]:
    """Group roots that may become int16 (16x8), in execution order."""
    groups = groups or tie_groups(graph)
    producers = graph.producers()
    blocked = {groups[n] for n in (*graph.inputs, *graph.outputs) if n in groups}
    ok: dict[str, bool] = {}
    for name, root in groups.items():
        op = producers.get(name)
        good = op is not None and op.kind in INT16_OPS
        ok[root] = ok.get(root, True) and good and root not in blocked
    return [r for r in dict.fromkeys(groups.values()) if ok[r]]


def make_plan(graph: Graph, ranges: Mapping[str, tuple[float, float]], int16: Iterable[str] = ()) -> Plan:
    """Params for every float activation. ranges: observed (lo, hi) per tensor; int16: tensor names
    whose groups become int16 (each must be in int16_candidates)."""
    groups = tie_groups(graph)
    allowed = set(int16_candidates(graph, groups))
    unknown = [n for n in int16 if n not in groups]
    if unknown:
        raise InvalidInputError(f"--int16 {unknown[0]!r} is not an activation tensor of {graph.name!r}; "
                                f"candidates: {', '.join(sorted(allowed)) or 'none'}")
    wide = {groups[n] for n in int16}
    bad = sorted(wide - allowed)
    if bad:
        raise UnsupportedOpError(f"cannot keep {', '.join(repr(b) for b in bad)} in int16: only outputs of "
                                 f"{', '.join(INT16_OPS)} that are not a model input or output can be")
    fixed: dict[str, tuple[float, int]] = {}
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for op in graph.ops:
        if OP_RULES.get(op.kind) == "fixed":
            fixed.setdefault(groups[op.outputs[0]], FIXED_INT8[op.kind])
    for name, root in groups.items():
        r = ranges.get(name)
        if r is not None:
            lo[root] = min(lo.get(root, 0.0), r[0])
            hi[root] = max(hi.get(root, 0.0), r[1])
    params: dict[str, QuantParams] = {}
    dtypes: dict[str, DType] = {}
    real: dict[str, tuple[float, float]] = {}
    for name, root in groups.items():
        dtype = DType.INT16 if root in wide else DType.INT8
        real[name] = (lo.get(root, 0.0), hi.get(root, 0.0))
        if root in fixed:
            scale, zp = fixed[root]
            q = QuantParams.per_tensor(f32(scale), zp)
            real[name] = (scale * (-128 - zp), scale * (127 - zp))
        else:
            q = activation_params(*real[name], dtype)
        params[name], dtypes[name] = q, dtype
    return Plan(params, dtypes, groups, real)
