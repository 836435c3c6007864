"""Buffers and lifetimes for an op order, with in-place aliasing, and the search for a good op order.

A *buffer* is a set of activation tensors that share memory: a RESHAPE output is its input's buffer
(a reshape is a no-op in the generated code), and an elementwise op may write its output over an input
that dies at that op (same byte size, no broadcast). Everything else gets a buffer of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import Graph, Op

# Ops whose output may overwrite an input of the same byte size that dies at the op: every output
# element depends only on the input element at the same index, so the kernel can write in place.
ELEMENTWISE_UNARY = {"CLIP", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE"}
ELEMENTWISE_BINARY = {"ADD", "SUB", "MUL"}
ALIAS_OPS = {"RESHAPE"}


@dataclass(frozen=True)
class Buffer:
    """Memory shared by `tensors`, live from op step `first` to `last` (inclusive, positions in the
    execution order)."""

    name: str
    tensors: tuple[str, ...]
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def inplace_candidates(graph: Graph, op: Op) -> list[str]:
    """Inputs of `op` its output may share memory with (before checking that they die at the op)."""
    out = graph.tensors[op.outputs[0]]
    if op.kind in ALIAS_OPS:
        return [op.inputs[0]]
    if op.kind in ELEMENTWISE_UNARY | ELEMENTWISE_BINARY and len(op.outputs) == 1:
        result = []
        for name in op.inputs:
            t = graph.tensors[name] if name else None
            if t is None or t.is_const:
                continue
            # QUANTIZE/DEQUANTIZE change the element size; only same-size elementwise rewrites are safe.
            if t.shape == out.shape and t.dtype.itemsize == out.dtype.itemsize:
                result.append(name)
        return result
    return []


def build_buffers(graph: Graph, order: list[int], inplace: bool = True) -> list[Buffer]:
    """Group activation tensors into buffers and compute their lifetimes for `order`."""
    ops = [graph.ops[i] for i in order]
    n = len(ops)
    last_use: dict[str, int] = {}
    first_def: dict[str, int] = {name: 0 for name in graph.inputs}
    for step, op in enumerate(ops):
        for name in op.outputs:
            first_def[name] = step
        for name in op.inputs:
            if name and not graph.tensors[name].is_const:
                last_use[name] = step
    for name in graph.outputs:
        last_use[name] = n  # graph outputs outlive every op (n = "after the last op")
    for name in first_def:
        last_use.setdefault(name, first_def[name])

    # Union-find over tensor names: which tensors share a buffer.
    parent = {name: name for name in first_def}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    if inplace:
        for step, op in enumerate(ops):
            for cand in inplace_candidates(graph, op):
                if graph.tensors[cand].is_const:
                    continue
                if op.kind in ALIAS_OPS:
                    parent[root(op.outputs[0])] = root(cand)
                    break
                # In place only if nothing reads the input (or anything sharing its buffer) later.
                group = [t for t in first_def if root(t) == root(cand)]
                if all(last_use[t] <= step for t in group) and cand not in graph.outputs:
                    parent[root(op.outputs[0])] = root(cand)
                    break

    groups: dict[str, list[str]] = {}
    for name in first_def:
        groups.setdefault(root(name), []).append(name)
    buffers = []
    for key, members in groups.items():
        size = max(graph.tensors[t].nbytes for t in members)
        first = min(first_def[t] for t in members)
        last = max(last_use[t] for t in members)
        buffers.append(Buffer(key, tuple(sorted(members, key=lambda t: first_def[t])), size, first, last))
    return buffers


def peak_bytes(buffers: list[Buffer], align: int = 1) -> int:
    """Peak of simultaneously live bytes: no placement can do better than this."""
    if not buffers:
        return 0
    horizon = max(b.last for b in buffers) + 1
    live = [0] * (horizon + 1)
    for b in buffers:
        size = _round_up(b.size, align)
        for step in range(b.first, b.last + 1):
            live[step] += size
    return max(live)


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def best_order(graph: Graph, align: int, inplace: bool = True, max_states: int = 20000) -> list[int]:
    """A topological op order with the smallest live-bytes peak.

    Dynamic programming over the sets of ops already run (the downsets of the DAG): for chain-like
    models with a few branches (residual blocks) there are few of them, so the search is exact. When
    the number of states passes `max_states` the graph's own order is kept.
    """
    n = len(graph.ops)
    producers = {name: i for i, op in enumerate(graph.ops) for name in op.outputs}
    deps = [frozenset(producers[name] for name in op.inputs if name in producers) for op in graph.ops]
    consumers: dict[str, list[int]] = {}
    for i, op in enumerate(graph.ops):
        for name in op.inputs:
            if name and not graph.tensors[name].is_const:
                consumers.setdefault(name, []).append(i)
    size = {name: _round_up(t.nbytes, align) for name, t in graph.tensors.items() if not t.is_const}
    outputs = set(graph.outputs)

    def live_at(done: frozenset[int], op_index: int) -> int:
        """Bytes live while op_index runs, when `done` ran before it (in-place ignored: an estimate)."""
        total = 0
        running = done | {op_index}
        for name, nbytes in size.items():
            made = name in graph.inputs or producers.get(name) in running
            if not made:
                continue
            needed = name in outputs or any(c not in done for c in consumers.get(name, []))
            if needed or producers.get(name) == op_index:
                total += nbytes
        return total

    memo: dict[frozenset[int], tuple[int, int]] = {}

    def solve(done: frozenset[int]) -> tuple[int, int]:
        if len(done) == n:
            return 0, -1
        if done in memo:
            return memo[done]
        if len(memo) > max_states:
            raise _TooMany
        best = (1 << 62, -1)
        for i in range(n):
            if i not in done and deps[i] <= done:
                peak = max(live_at(done, i), solve(done | {i})[0])
                if peak < best[0]:
                    best = (peak, i)
        memo[done] = best
        return best

    try:
        order, done = [], frozenset()
        while len(done) < n:
            nxt = solve(done)[1]
            order.append(nxt)
            done = done | {nxt}
    except (_TooMany, RecursionError):
        return list(range(n))
    default = list(range(n))
    # Keep the model's own order unless the search found a strictly better one after aliasing.
    if peak_bytes(build_buffers(graph, order, inplace), align) < peak_bytes(build_buffers(graph, default, inplace), align):
        return order
    return default


class _TooMany(Exception):
    pass
