"""Structural checks on a Graph: run after every importer and pass in tests (and with --verify).

Invalid IR fails where it is made, not three stages later. These are internal invariants, so they
raise AssertionError-like `GraphInvariantError`, not a user-facing MicrogenError.
"""

from __future__ import annotations

from .ir import Graph
from .ops import OPS, REQUIRED


class GraphInvariantError(AssertionError):
    """The graph breaks an IR invariant: a bug in whoever produced it."""


def verify(graph: Graph) -> Graph:
    """Check names, op kinds and attributes, and execution order. Returns the graph unchanged."""

    def fail(msg: str) -> None:
        raise GraphInvariantError(f"graph {graph.name}: {msg}")

    for name, t in graph.tensors.items():
        if name != t.name:
            fail(f"tensor key {name!r} holds tensor named {t.name!r}")
        if any((not isinstance(d, int)) or d < 0 for d in t.shape):
            fail(f"tensor {name!r} has a non-static shape {t.shape}")
        if t.quant is not None and t.quant.axis is not None:
            if not (0 <= t.quant.axis < len(t.shape)) or len(t.quant.scale) != t.shape[t.quant.axis]:
                fail(f"tensor {name!r}: per-axis params do not match shape {t.shape} ({t.quant})")
    available = {n for n, t in graph.tensors.items() if t.is_const} | set(graph.inputs)
    for name in graph.inputs:
        if name not in graph.tensors:
            fail(f"graph input {name!r} is not a tensor")
    produced: set[str] = set()
    for op in graph.ops:
        spec = OPS.get(op.kind)
        if spec is None:
            fail(f"{op.where()}: unknown op kind {op.kind!r}")
            return graph
        if len(op.inputs) < spec.min_inputs or (not spec.variadic_inputs and len(op.inputs) > len(spec.inputs)):
            fail(f"{op.where()} {op.kind}: {len(op.inputs)} inputs, spec {spec.inputs}")
        for key, default in spec.attrs.items():
            if default is REQUIRED and key not in op.attrs:
                fail(f"{op.where()} {op.kind}: missing attribute {key!r}")
        for key in op.attrs:
            if key not in spec.attrs:
                fail(f"{op.where()} {op.kind}: unknown attribute {key!r}")
        for name in op.inputs:
            if name and name not in available:
                fail(f"{op.where()} {op.kind}: input {name!r} is not computed before it")
        for name in op.outputs:
            if name not in graph.tensors:
                fail(f"{op.where()} {op.kind}: output {name!r} is not a tensor")
            if name in produced or name in graph.inputs or graph.tensors[name].is_const:
                fail(f"{op.where()} {op.kind}: output {name!r} is written twice")
            produced.add(name)
            available.add(name)
    for name in graph.outputs:
        if name not in available:
            fail(f"graph output {name!r} is never computed")
    return graph
