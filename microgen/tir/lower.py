"""Lower a planned graph to PrimFuncs: one kernel per op (none for ops that are pure aliases).

A lowering is `fn(ctx, op) -> PrimFunc`, registered with `@lowering("KIND")`. It reads shapes, quant
params and constants from `ctx.graph`, computes every constant at build time (multipliers, shifts,
folded biases, clamp bounds) with microgen.fixedpoint, and builds the loop nest with tir.nodes. The
kernel's parameters are the op's activation tensors, inputs first then outputs, as `ctx.param` makes them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import DType, Graph, Op
from ..graph.ir import unique_name
from ..memory_planner import ArenaPlan
from ..memory_planner.liveness import scratch_name
from .nodes import Buffer, PrimFunc

LOWERINGS: dict[str, Callable[["LowerContext", Op], PrimFunc]] = {}

# Ops that need no code: their output shares the input's buffer (the planner aliases them).
ALIAS_KINDS = {"RESHAPE"}


def lowering(*kinds: str):
    """Register a lowering for one or more op kinds."""
    def register(fn):
        for kind in kinds:
            assert kind not in LOWERINGS, f"two lowerings for {kind}"
            LOWERINGS[kind] = fn
        return fn
    return register


@dataclass(frozen=True)
class Target:
    """What the code may use on the target. Board files map to one of these."""

    name: str = "host"
    dsp: bool = False   # Armv7E-M / Armv8-M DSP extension (SMLAD, SXTB16, ...)
    mve: bool = False   # Armv8.1-M Helium
    fpu: bool = True


def c_identifier(text: str) -> str:
    """A C identifier made from arbitrary text (tensor names like 'model/conv2d;bias:0')."""
    ident = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_") or "t"
    return ident if not ident[0].isdigit() else "t" + ident


@dataclass
class LowerContext:
    """What a lowering needs: the graph, the arena plan, a symbol prefix and the target."""

    graph: Graph
    plan: ArenaPlan
    prefix: str
    target: Target = field(default_factory=Target)
    layer: int = 0
    _names: set[str] = field(default_factory=set)
    _pending: list[Buffer] = field(default_factory=list)  # consts made for the op being lowered

    def param(self, tensor: str, name: str, readonly: bool = False) -> Buffer:
        """The kernel parameter `name` for an activation tensor: a pointer to its place in the arena.
        It is `restrict` when no other activation of the op overlaps it in the arena."""
        t = self.graph.tensors[tensor]
        assert not t.is_const, tensor
        return Buffer(name, t.dtype, t.size, "param", readonly=readonly, noalias=self._noalias(tensor),
                      doc=t.describe())

    def const(self, hint: str, values: np.ndarray, dtype: DType, doc: str = "") -> Buffer:
        """A `static const` array at file scope holding `values` (converted to dtype)."""
        name = self._unique(f"{self.prefix}_l{self.layer}_{hint}")
        data = np.ascontiguousarray(np.ravel(values)).astype(dtype.np)
        buf = Buffer(name, dtype, int(data.size), "const", data=data, doc=doc)
        self._pending.append(buf)
        return buf

    def func_name(self, op: Op) -> str:
        return self._unique(f"{self.prefix}_l{self.layer}_{op.kind.lower()}")

    def _unique(self, name: str) -> str:
        return unique_name(name, self._names)

    def _noalias(self, tensor: str) -> bool:
        """True when no other activation of the current op shares memory with this one."""
        op = self._current_op
        mine = self.plan.offsets[tensor], self.plan.offsets[tensor] + self.graph.tensors[tensor].nbytes
        for other in {*op.inputs, *op.outputs} - {tensor, ""}:
            t = self.graph.tensors[other]
            if t.is_const:
                continue
            lo = self.plan.offsets[other]
            if lo < mine[1] and mine[0] < lo + t.nbytes:
                return False
        return True

    def scratch(self, name: str, dtype: DType, size: int) -> Buffer:
        """The op's scratch buffer (planned in the arena from its template's `scratch` bytes), as the
        kernel's last parameter. At most one per op."""
        planned = self.plan.buffer_of(scratch_name(self.op_index)).size
        assert size * dtype.itemsize <= planned, (name, size, planned)
        assert not self._scratch_used, "one scratch buffer per op"
        self._scratch_used = True
        return Buffer(name, dtype, size, "param", noalias=True, doc="scratch")

    _current_op: Op = None  # type: ignore[assignment]
    op_index: int = -1
    schedule: object = None
    _scratch_used: bool = False


@dataclass(frozen=True)
class LoweredOp:
    """One step of the run function: the op, its kernel (None for aliases), the tensors passed to it."""

    op: Op
    func: PrimFunc | None
    args: tuple[str, ...]


def lower(graph: Graph, plan: ArenaPlan, prefix: str, target: Target | None = None,
          schedules: dict | None = None) -> list[LoweredOp]:
    """Lower every op in the plan's order with its schedule (op index -> tir.schedule.Schedule; the
    generic lowering when absent). Raises UnsupportedOpError listing every op without a lowering."""
    from .schedule import TEMPLATES, Schedule, _load_templates

    _import_lowerings()
    _load_templates()
    schedules = schedules or {}
    missing = [op for i, op in enumerate(graph.ops) if op.kind not in LOWERINGS and op.kind not in ALIAS_KINDS
               and schedules.get(i, Schedule("generic")).template == "generic"]
    if missing:
        kinds = sorted({op.kind for op in missing})
        where = "; ".join(f"{k} ({', '.join(op.where() for op in missing if op.kind == k)})" for k in kinds)
        raise UnsupportedOpError(f"{graph.name}: no C code generation yet for {where}")
    ctx = LowerContext(graph, plan, prefix, target or Target())
    steps = []
    for layer, index in enumerate(plan.order):
        op = graph.ops[index]
        ctx.layer = layer
        ctx._current_op = op
        args = tuple(n for n in op.inputs if n and not graph.tensors[n].is_const) + tuple(op.outputs)
        if op.kind in ALIAS_KINDS:
            steps.append(LoweredOp(op, None, args))
            continue
        ctx._pending = []
        ctx.op_index = index
        ctx.schedule = schedules.get(index, Schedule("generic"))
        ctx._scratch_used = False
        if ctx.schedule.template == "generic":
            func = LOWERINGS[op.kind](ctx, op)
        else:
            func = TEMPLATES[ctx.schedule.template].lower(ctx, op, ctx.schedule)
        if ctx._scratch_used:
            args = args + (scratch_name(index),)
        assert len(args) == len(func.params), (op.kind, args, [p.name for p in func.params])
        steps.append(LoweredOp(op, dataclasses.replace(func, consts=tuple(ctx._pending)), args))
    return steps


def _import_lowerings() -> None:
    """Import every lower_*.py module of this package so their @lowering registrations run."""
    import importlib
    import pkgutil

    from .. import tir
    for info in pkgutil.iter_modules(tir.__path__):
        if info.name.startswith("lower_"):
            importlib.import_module(f"{tir.__name__}.{info.name}")
