"""Static figures of a graph: MACs per op, weight bytes, and activation lifetimes / live-bytes peak.

MACs count the multiply-accumulates of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV and
BATCH_MATMUL from the static shapes (activations, pooling and softmax are not counted), the convention of
the model corpus README and of MLPerf Tiny.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ir import Graph, Op


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (0 for ops that are not MAC ops)."""
    ins = graph.op_inputs(op)
    outs = graph.op_outputs(op)
    if op.kind == "CONV_2D":
        w = ins[1]
        return outs[0].size * w.shape[1] * w.shape[2] * w.shape[3]
    if op.kind == "DEPTHWISE_CONV_2D":
        w = ins[1]
        return outs[0].size * w.shape[1] * w.shape[2]
    if op.kind == "FULLY_CONNECTED":
        return outs[0].size * ins[1].shape[1]
    if op.kind == "TRANSPOSE_CONV":
        w = ins[1]
        return ins[0].size * w.shape[0] * w.shape[1] * w.shape[2]
    if op.kind == "BATCH_MATMUL":
        a = ins[0]
        k = a.shape[-1]
        return outs[0].size * k
    return 0


def weight_tensors(graph: Graph) -> list:
    """The constant tensors the ops read (each once)."""
    seen: dict[str, object] = {}
    for op in graph.ops:
        for t in graph.op_inputs(op):
            if t is not None and t.is_const and t.name not in seen:
                seen[t.name] = t
    return list(seen.values())


def weight_bytes(graph: Graph) -> int:
    return sum(t.nbytes for t in weight_tensors(graph))


@dataclass(frozen=True)
class Lifetime:
    """An activation tensor lives from op `first` to op `last` inclusive (op indices in graph.ops).
    Graph inputs start at 0; graph outputs end at the last op."""

    name: str
    nbytes: int
    first: int
    last: int


def lifetimes(graph: Graph) -> list[Lifetime]:
    """Lifetimes of every activation tensor for the graph's op order."""
    n = len(graph.ops)
    first: dict[str, int] = {name: 0 for name in graph.inputs}
    last: dict[str, int] = {name: 0 for name in graph.inputs}
    for i, op in enumerate(graph.ops):
        for name in op.outputs:
            first.setdefault(name, i)
            last[name] = max(last.get(name, i), i)
        for name in op.inputs:
            if name and not graph.tensors[name].is_const:
                last[name] = max(last.get(name, i), i)
    for name in graph.outputs:
        if name in first:
            last[name] = max(n - 1, 0)
    return [Lifetime(name, graph.tensors[name].nbytes, first[name], last[name]) for name in first]


def live_bytes_per_op(graph: Graph) -> list[int]:
    """For each op, the bytes of all activations alive while it runs (its inputs and outputs included)."""
    live = [0] * max(len(graph.ops), 1)
    for lt in lifetimes(graph):
        for i in range(lt.first, lt.last + 1):
            live[i] += lt.nbytes
    return live


def peak_live_bytes(graph: Graph) -> int:
    """The peak of simultaneously live activation bytes: the lower bound for an arena without overlap."""
    return max(live_bytes_per_op(graph))


@dataclass(frozen=True)
class Summary:
    ops: int
    macs: int
    weight_bytes: int
    peak_live_bytes: int


def summarize(graph: Graph) -> Summary:
    return Summary(
        ops=len(graph.ops),
        macs=sum(op_macs(graph, op) for op in graph.ops),
        weight_bytes=weight_bytes(graph),
        peak_live_bytes=peak_live_bytes(graph),
    )
