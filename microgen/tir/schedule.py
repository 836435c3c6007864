"""Schedules: how one op's loop nest is built, as a value the build takes and the tuner searches.

A *template* is one way to generate an op's kernel (e.g. "generic": the plain loop nests of the
lower_*.py modules; "dsp_gemm": a blocked SMLAD matmul). It declares, for an op on a target:
- `applies`: whether it can compute the op bit-exactly there;
- `space`: its knobs and the values each may take (the tuner's search space; {} = nothing to tune);
- `default`: knob values that are fast without tuning;
- `scratch`: arena bytes its kernel needs at that op (im2col rows, staging planes), planned like any buffer;
- `order`: how its kernel writes its output relative to the reads (for the planner's output-over-input
  overlap, memory_planner/overlap.py);
- `lower`: the PrimFunc for given knobs.

A `Schedule` is (template name, knob values): small, frozen, hashable, printable, and what tuning logs store.
`choose(graph, target)` picks one per op: the applicable template of highest priority with its defaults,
unless a tuning record says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..graph import Graph, Op


@dataclass(frozen=True)
class AccessOrder:
    """How a kernel writes its output, for the planner's overlap analysis.

    row_major: output pixels (row-major N, H, W order) are produced group by group, a group being at most
    `pixel_block` consecutive pixels, and every store of a group lands at or before the group's end. The
    planner then lets the writes of group g destroy only input bytes that neither group g nor any later
    group reads (the kernel may interleave loads and stores inside a group, e.g. by channel blocks).
    channel_major_staged: each input channel is copied out (staged) before any output element of that
    channel is written, channel by channel (in-place depthwise): the output may sit exactly on the input.
    none: the output must not share memory with the input.
    """

    kind: str = "row_major"
    pixel_block: int = 1

    def __post_init__(self) -> None:
        assert self.kind in ("row_major", "channel_major_staged", "none"), self.kind


ROW_MAJOR = AccessOrder("row_major", 1)
NO_OVERLAP = AccessOrder("none")


@dataclass(frozen=True)
class Schedule:
    """A template name and its knob values (sorted (name, value) pairs, JSON-able values)."""

    template: str
    knobs: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def make(template: str, knobs: Mapping[str, Any] | None = None) -> "Schedule":
        return Schedule(template, tuple(sorted((k, _freeze(v)) for k, v in (knobs or {}).items())))

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.knobs).get(name, default)

    def as_dict(self) -> dict[str, Any]:
        return {"template": self.template, "knobs": {k: v for k, v in self.knobs}}

    def __str__(self) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in self.knobs)
        return f"{self.template}({knobs})"


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, (list, tuple)) else v


@dataclass(frozen=True)
class Template:
    """One way to generate kernels for some op kinds (see the module docstring)."""

    name: str
    kinds: frozenset[str]
    priority: int
    applies: Callable[[Graph, Op, Any], bool]
    lower: Callable[..., Any]                                   # (ctx, op, schedule) -> PrimFunc
    space: Callable[[Graph, Op, Any], dict[str, list]] = field(default=lambda g, op, t: {})
    default: Callable[[Graph, Op, Any], dict[str, Any]] = field(default=lambda g, op, t: {})
    scratch: Callable[[Graph, Op, Schedule], int] = field(default=lambda g, op, s: 0)
    order: Callable[[Graph, Op, Schedule], AccessOrder] = field(default=lambda g, op, s: ROW_MAJOR)


TEMPLATES: dict[str, Template] = {}


def register(template: Template) -> Template:
    assert template.name not in TEMPLATES, f"two templates named {template.name}"
    TEMPLATES[template.name] = template
    return template


def templates_for(graph: Graph, op: Op, target) -> list[Template]:
    """Applicable templates for `op`, highest priority first."""
    _load_templates()
    found = [t for t in TEMPLATES.values() if op.kind in t.kinds and t.applies(graph, op, target)]
    return sorted(found, key=lambda t: -t.priority)


def default_schedule(graph: Graph, op: Op, target) -> Schedule:
    found = templates_for(graph, op, target)
    if not found:
        return Schedule("generic")
    best = found[0]
    return Schedule.make(best.name, best.default(graph, op, target))


def choose(graph: Graph, target, tuned: Mapping[int, Schedule] | None = None) -> dict[int, Schedule]:
    """A schedule per op index: tuned ones where given (and still applicable), defaults elsewhere."""
    out = {}
    for i, op in enumerate(graph.ops):
        s = (tuned or {}).get(i)
        if s is not None and s.template in TEMPLATES and TEMPLATES[s.template].applies(graph, op, target):
            out[i] = s
        else:
            out[i] = default_schedule(graph, op, target)
    return out


def scratch_bytes(graph: Graph, op: Op, schedule: Schedule) -> int:
    t = TEMPLATES.get(schedule.template)
    return t.scratch(graph, op, schedule) if t else 0


def access_order(graph: Graph, op: Op, schedule: Schedule) -> AccessOrder:
    t = TEMPLATES.get(schedule.template)
    return t.order(graph, op, schedule) if t else ROW_MAJOR


def task_key(graph: Graph, op: Op, target_name: str) -> str:
    """What makes two ops the same tuning task: kind, shapes, dtypes, attributes, quantization kind."""
    ins = graph.op_inputs(op)
    outs = graph.op_outputs(op)
    desc = {
        "op": op.kind,
        "target": target_name,
        "in": [[list(t.shape), t.dtype.value, _qkind(t)] for t in ins if t is not None],
        "out": [[list(t.shape), t.dtype.value, _qkind(t)] for t in outs],
        "attrs": {k: _jsonable(v) for k, v in sorted(op.attrs.items())},
    }
    return json.dumps(desc, sort_keys=True, separators=(",", ":"))


def _qkind(t) -> str:
    if t.quant is None:
        return "none"
    return "per-axis" if t.quant.per_channel else "per-tensor"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


_loaded = False


def _load_templates() -> None:
    """Import the template modules (sched_*.py) and the generic lowerings so their registrations run."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    from .. import tir
    from . import lower
    lower._import_lowerings()
    for info in pkgutil.iter_modules(tir.__path__):
        if info.name.startswith("sched_"):
            importlib.import_module(f"{tir.__name__}.{info.name}")
