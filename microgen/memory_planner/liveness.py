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


def scratch_name(op_index: int) -> str:
    """The arena name of op `op_index`'s scratch buffer (it is no graph tensor)."""
    return f"__scratch{op_index}"


def build_buffers(graph: Graph, order: list[int], inplace: bool = True,
                  scratch: dict[int, int] | None = None) -> list[Buffer]:
    """Group activation tensors into buffers and compute their lifetimes for `order`; each op with
    scratch bytes (op index -> bytes) gets a buffer of its own that lives only while the op runs."""
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
    for step, index in enumerate(order):
        nbytes = (scratch or {}).get(index, 0)
        if nbytes:
            buffers.append(Buffer(scratch_name(index), (scratch_name(index),), nbytes, step, step))
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


def best_order(graph: Graph, align: int, inplace: bool = True, max_states: int = 5000,
               seconds: float = 2.0, scratch: dict[int, int] | None = None) -> list[int]:
    """A topological op order with the smallest live-bytes peak.

    Dynamic programming over the sets of ops already run (the downsets of the DAG, as bitmasks): for
    chain-like models with a few branches (residual blocks) there are few of them, so the search is
    exact. When the states pass `max_states` or the search passes `seconds`, the graph's own order is kept.
    """
    import time

    n = len(graph.ops)
    producers = {name: i for i, op in enumerate(graph.ops) for name in op.outputs}
    deps = [0] * n
    for i, op in enumerate(graph.ops):
        for name in op.inputs:
            if name in producers:
                deps[i] |= 1 << producers[name]
    # Per activation tensor: size, producer bit (0 for graph inputs), consumer bits, kept to the end?
    entries = []
    for name, t in graph.tensors.items():
        if t.is_const:
            continue
        made = 1 << producers[name] if name in producers else 0
        used = 0
        for i, op in enumerate(graph.ops):
            if name in op.inputs:
                used |= 1 << i
        entries.append((_round_up(t.nbytes, align), made, used, name in graph.outputs))
    deadline = time.perf_counter() + seconds
    scratch_of = scratch or {}

    def live_at(done: int, op_index: int) -> int:
        """Bytes live while op_index runs after the ops in `done` (in-place ignored: an estimate)."""
        bit = 1 << op_index
        running = done | bit
        total = _round_up(scratch_of.get(op_index, 0), align)
        for size, made, used, keep in entries:
            if made and not made & running:
                continue  # not computed yet
            if keep or used & ~done or made == bit:
                total += size
        return total

    memo: dict[int, tuple[int, int]] = {}
    full = (1 << n) - 1

    def solve(done: int) -> tuple[int, int]:
        if done == full:
            return 0, -1
        hit = memo.get(done)
        if hit is not None:
            return hit
        if len(memo) > max_states or time.perf_counter() > deadline:
            raise _TooMany
        best = (1 << 62, -1)
        for i in range(n):
            if not done >> i & 1 and deps[i] & done == deps[i]:
                peak = max(live_at(done, i), solve(done | 1 << i)[0])
                if peak < best[0]:
                    best = (peak, i)
        memo[done] = best
        return best

    default = list(range(n))
    try:
        order, done = [], 0
        while done != full:
            nxt = solve(done)[1]
            order.append(nxt)
            done |= 1 << nxt
    except (_TooMany, RecursionError):
        return default
    # Keep the model's own order unless the search found a strictly better one after aliasing.
    if peak_bytes(build_buffers(graph, order, inplace, scratch), align) < \
            peak_bytes(build_buffers(graph, default, inplace, scratch), align):
        return order
    return default


class _TooMany(Exception):
    pass
