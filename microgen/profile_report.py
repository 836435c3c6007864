"""`microgen profile` output: per-layer cost of one inference as text, JSON or a self-contained HTML page.

The figures come from the board (device/runner.Measurement); the op, shapes and MACs of each layer from
the build. Units are stated as measured: "cycles" on real boards, "emulated instructions" on QEMU
(instruction counts with -icount, not cycles). Every cost excludes the measurement harness.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from .graph.analysis import op_macs
from .textui import num, table

UNIT_LABELS = {"cycles": "cycles", "emulated_instructions": "emulated instructions"}


@dataclass(frozen=True)
class LayerCost:
    index: int
    op: str
    name: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    macs: int
    cost: int


@dataclass(frozen=True)
class Profile:
    model: str
    board: str
    unit: str                       # "cycles" | "emulated_instructions"
    total: int                      # one inference, harness excluded
    layers: tuple[LayerCost, ...]
    resolution: float               # counter tick in units
    repeats: int
    plan: object = None             # the build's ArenaPlan, for the HTML memory picture
    op_labels: tuple[str, ...] = ()  # op kind per plan step, for the same picture

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def layers_total(self) -> int:
        return sum(layer.cost for layer in self.layers)


def make_profile(build_result, board: str, measurement) -> Profile:
    """Join a Measurement with the build: layer i is the i-th kernel call (steps with a function)."""
    graph = build_result.graph
    kernels = [st for st in build_result.steps if st.func is not None]
    assert len(kernels) == len(measurement.layer_costs), (len(kernels), len(measurement.layer_costs))
    layers = []
    for i, (step, cost) in enumerate(zip(kernels, measurement.layer_costs)):
        op = step.op
        ins = tuple(tuple(graph.tensors[n].shape) for n in op.inputs if n and not graph.tensors[n].is_const)
        layers.append(LayerCost(i, op.kind, op.name, ins, tuple(graph.tensors[op.outputs[0]].shape),
                                op_macs(graph, op), int(cost)))
    labels = tuple(graph.ops[i].kind for i in build_result.plan.order)
    return Profile(graph.name, board, measurement.unit, measurement.total, tuple(layers), measurement.resolution,
                   measurement.repeats, build_result.plan, labels)


def _share(cost: int, total: int) -> float:
    return cost / total if total else 0.0


def _per_mac(cost: int, macs: int) -> float | None:
    return round(cost / macs, 3) if macs else None


def to_dict(p: Profile) -> dict:
    """The --json object. `total` is one inference with the harness excluded; `layers_total` is the
    sum of the layers (the rest is the invoke function itself: calls, aliases)."""
    return dict(
        model=p.model, board=p.board, unit=p.unit, unit_label=UNIT_LABELS.get(p.unit, p.unit),
        total=p.total, layers_total=p.layers_total, macs=p.macs, cost_per_mac=_per_mac(p.total, p.macs),
        resolution=p.resolution, repeats=p.repeats,
        layers=[dict(index=l.index, op=l.op, name=l.name, input_shapes=[list(s) for s in l.input_shapes],
                     output_shape=list(l.output_shape), macs=l.macs, cost=l.cost,
                     share=round(_share(l.cost, p.total), 5), cost_per_mac=_per_mac(l.cost, l.macs))
                for l in p.layers],
    )


def _shape(s) -> str:
    return "x".join(map(str, s))


def to_text(p: Profile) -> str:
    label = UNIT_LABELS.get(p.unit, p.unit)
    rows = [[l.index, l.op, " ; ".join(map(_shape, l.input_shapes)) or "-", _shape(l.output_shape),
             num(l.macs), num(l.cost), f"{100 * _share(l.cost, p.total):.1f}%",
             f"{l.cost / l.macs:.2f}" if l.macs else "-"] for l in p.layers]
    other = p.total - p.layers_total
    lines = [f"profile of {p.model} on {p.board}: cost in {label} (one inference, harness excluded; "
             f"min of {p.repeats} run{'s' if p.repeats != 1 else ''}, counter resolution {p.resolution:g})",
             "", table(["#", "op", "input", "output", "MACs", label, "share", "per MAC"], rows,
                       right=(0, 4, 5, 6, 7)), ""]
    lines.append(f"total {num(p.total)} {label}; layers {num(p.layers_total)}, invoke glue {num(other)}; "
                 f"MACs {num(p.macs)}" + (f", {p.total / p.macs:.2f} {label} per MAC" if p.macs else ""))
    if p.unit == "emulated_instructions":
        lines.append("note: QEMU counts executed instructions, not cycles; real boards report cycles.")
    return "\n".join(lines)


# ---- HTML ----

_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
_OP_COLOR: dict[str, str] = {}


def _color(key: str) -> str:
    if key not in _OP_COLOR:
        _OP_COLOR[key] = _COLORS[len(_OP_COLOR) % len(_COLORS)]
    return _OP_COLOR[key]


def _bar_chart(p: Profile) -> str:
    """Horizontal bars, one per layer, length proportional to cost."""
    row, left, width = 22, 190, 520
    biggest = max((l.cost for l in p.layers), default=1) or 1
    height = row * len(p.layers) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" height="{height}" '
           f'role="img" aria-label="cost per layer">']
    for i, l in enumerate(p.layers):
        y = 10 + i * row
        w = max(1.0, width * l.cost / biggest)
        tip = html.escape(f"layer {l.index} {l.op} {l.name}: {l.cost:,} ({100 * _share(l.cost, p.total):.1f}%)")
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{l.index} {html.escape(l.op)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{_color(l.op)}">'
                   f'<title>{tip}</title></rect>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}">{l.cost:,} '
                   f'({100 * _share(l.cost, p.total):.1f}%)</text>')
    out.append("</svg>")
    return "\n".join(out)


def _arena_picture(p: Profile) -> str:
    """The arena over time: op steps across, byte offsets up, one rectangle per buffer while it lives."""
    plan = p.plan
    if plan is None or not plan.buffers:
        return "<p>(no activation buffers)</p>"
    steps = max(b.last for b in plan.buffers) + 1
    left, bottom, width, height = 70, 40, 720, 320
    size = max(plan.arena_size, 1)
    col = width / steps
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height + bottom + 20}" '
           f'role="img" aria-label="arena layout over time">',
           f'<rect x="{left}" y="10" width="{width}" height="{height}" fill="#f4f4f4" stroke="#999"/>']
    for b in plan.buffers:
        off = plan.offsets[b.tensors[0]]
        x = left + b.first * col
        w = (b.last - b.first + 1) * col
        y = 10 + height * (1 - (off + b.size) / size)
        h = max(1.0, height * b.size / size)
        tip = html.escape(f"{', '.join(b.tensors)}: {b.size:,} B at offset {off:,}, steps {b.first}-{b.last}")
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{_color(b.name)}" '
                   f'fill-opacity="0.8" stroke="#333" stroke-width="0.5"><title>{tip}</title></rect>')
    for s in range(steps):
        label = p.op_labels[s] if s < len(p.op_labels) else ""
        x = left + (s + 0.5) * col
        out.append(f'<text x="{x:.1f}" y="{height + 26}" text-anchor="middle" font-size="10">{s}</text>')
        if label and col >= 40:
            out.append(f'<text x="{x:.1f}" y="{height + 40}" text-anchor="middle" font-size="9">'
                       f'{html.escape(label[:10])}</text>')
    out.append(f'<text x="{left - 6}" y="{10 + height}" text-anchor="end" font-size="10">0</text>')
    out.append(f'<text x="{left - 6}" y="20" text-anchor="end" font-size="10">{plan.arena_size:,} B</text>')
    out.append(f'<text x="{left + width / 2}" y="{height + bottom + 14}" text-anchor="middle" '
               f'font-size="11">op step</text>')
    out.append("</svg>")
    return "\n".join(out)


def to_html(p: Profile) -> str:
    """One page, no external assets: header, bar chart, table, arena picture."""
    label = UNIT_LABELS.get(p.unit, p.unit)
    d = to_dict(p)
    rows = "\n".join(
        f"<tr><td>{l['index']}</td><td>{html.escape(l['op'])}</td><td>{html.escape(l['name'][:60])}</td>"
        f"<td>{' ; '.join(map(_shape, l['input_shapes']))}</td><td>{_shape(l['output_shape'])}</td>"
        f"<td class=n>{l['macs']:,}</td><td class=n>{l['cost']:,}</td><td class=n>{100 * l['share']:.1f}%</td>"
        f"<td class=n>{l['cost_per_mac'] if l['cost_per_mac'] is not None else '-'}</td></tr>"
        for l in d["layers"])
    note = ("<p class=note>QEMU counts executed instructions (<code>-icount shift=0</code>), not cycles: "
            "real boards report cycles.</p>" if p.unit == "emulated_instructions" else "")
    title = html.escape(f"microgen profile: {p.model} on {p.board}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
svg text {{ font-size: 12px; font-family: system-ui, sans-serif; }}
.note {{ color: #a05a00; }}
</style></head><body>
<h1>{title}</h1>
<p>One inference: <b>{p.total:,} {html.escape(label)}</b> (harness excluded; minimum of {p.repeats} runs;
counter resolution {p.resolution:g}). Layers {p.layers_total:,}, invoke glue {p.total - p.layers_total:,}.
MACs {p.macs:,}{f", {p.total / p.macs:.2f} {html.escape(label)} per MAC" if p.macs else ""}.</p>
{note}
<h2>Cost per layer</h2>
{_bar_chart(p)}
<table><thead><tr><th>#</th><th>op</th><th>name</th><th>input</th><th>output</th><th>MACs</th>
<th>{html.escape(label)}</th><th>share</th><th>per MAC</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<h2>Arena layout over time</h2>
<p>Arena {getattr(p.plan, 'arena_size', 0):,} B. Each rectangle is one activation buffer: across, the op steps
it is live for; up, its byte offsets in the arena.</p>
{_arena_picture(p)}
</body></html>
"""
