"""Quantization reports: a short summary (always printed), and a full report as text or HTML.

The HTML is self-contained (inline CSS and SVG, no scripts, no external files): a per-layer SQNR bar
chart in graph order, the layers worst first, the end-to-end figures, and the 16x8 table when there
is one. Colours: red below 20 dB (a layer that visibly hurts), amber below 30 dB, green above.
"""

from __future__ import annotations

import html
import math

from ..graph.analysis import weight_bytes
from .accuracy import Accuracy

LOW_DB, OK_DB = 20.0, 30.0


def _db(v: float) -> str:
    return "exact" if math.isinf(v) and v > 0 else f"{v:.1f} dB"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100.0 * v:.1f}%"


def summary_lines(result, acc: Accuracy | None) -> list[str]:
    """A few lines: what was quantized, sizes, and the end-to-end figures."""
    g, fg, o = result.graph, result.float_graph, result.options
    int16 = sum(1 for t in g.activations() if t.dtype.value == "int16")
    kind = "int8" + (f" with {int16} int16 tensor(s) (16x8)" if int16 else "")
    lines = [f"quantized {fg.name} to {kind}: {len(g.ops)} ops, observer {o.observer}"
             + (f" {o.percentile:g}" if o.observer == "percentile" else "")
             + f", {result.samples} calibration sample(s), io {o.io}",
             f"  weights {weight_bytes(fg):,} B float -> {weight_bytes(g):,} B quantized"]
    if acc is None:
        return lines
    lines.append(f"  on {acc.samples} {acc.data} sample(s): output SQNR {_db(acc.output_sqnr_db)}"
                 + (f", top-1 agreement with float {_pct(acc.agreement)}" if acc.agreement is not None else ""))
    if acc.float_accuracy is not None:
        lines.append(f"  accuracy: float {_pct(acc.float_accuracy)}, quantized {_pct(acc.quant_accuracy)} "
                     f"(drop {acc.drop_points:.1f} points)")
    worst = [f"{_short(layer.name)} {_db(layer.sqnr_db)}" for layer in acc.worst(3)]
    if worst:
        lines.append("  worst layers: " + "; ".join(worst))
    return lines


def _short(name: str, width: int = 48) -> str:
    """Converter names are long ';'-joined lists: keep the first part, then cut."""
    first = name.split(";")[0]
    return first if len(first) <= width else "..." + first[-(width - 3):]


def to_text(result, acc: Accuracy, pareto: list | None = None) -> str:
    lines = summary_lines(result, acc) + ["", "per-layer SQNR, worst first (dequantized output vs float):"]
    top = max([layer.sqnr_db for layer in acc.layers if math.isfinite(layer.sqnr_db)] + [OK_DB])
    for layer in acc.worst():
        v = layer.sqnr_db if math.isfinite(layer.sqnr_db) else top
        bar = "#" * max(0, int(round(30 * max(v, 0.0) / top)))
        lines.append(f"  {layer.index:3d} {layer.op:18s} {layer.dtype:5s} {_db(layer.sqnr_db):>10s}  {bar:30s} "
                     f"{_short(layer.name)}")
    if pareto:
        lines += ["", "16x8 choices (int16 activations for the listed layers):", *pareto_lines(pareto)]
    return "\n".join(lines) + "\n"


def pareto_lines(rows: list) -> list[str]:
    lines = [f"  {'choice':34s} {'accuracy/agree':>14s} {'SQNR':>9s} {'weights+arena B':>16s} {'est. cycles':>12s}"]
    for r in rows:
        lines.append(f"  {r.label[:34]:34s} {_pct(r.score):>14s} {_db(r.output_sqnr_db):>9s} "
                     f"{r.size_bytes:>16,} {r.est_cycles:>12,}" + ("  *" if r.pareto else ""))
    lines.append("  * on the Pareto front (no other choice is better in accuracy, size and speed at once)")
    return lines


def _bar_chart(acc: Accuracy) -> str:
    """Inline SVG: one horizontal bar per layer in graph order, SQNR in dB."""
    finite = [layer.sqnr_db for layer in acc.layers if math.isfinite(layer.sqnr_db)]
    top = max(finite + [OK_DB]) * 1.05
    row, label_w, bar_w = 18, 300, 420
    h = row * len(acc.layers) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{h}" '
             f'font-family="sans-serif" font-size="11">']
    for k, layer in enumerate(acc.layers):
        y = 10 + k * row
        v = layer.sqnr_db if math.isfinite(layer.sqnr_db) else top
        w = max(1.0, bar_w * max(v, 0.0) / top)
        color = "#d9534f" if v < LOW_DB else "#f0ad4e" if v < OK_DB else "#5cb85c"
        label = html.escape(f"{layer.index}: {layer.op} {_short(layer.name, 36)}")
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{label}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{color}">'
                     f'<title>{html.escape(layer.name)}: {_db(layer.sqnr_db)}</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{_db(layer.sqnr_db)}</text>')
    for db in (LOW_DB, OK_DB):
        x = label_w + bar_w * db / top
        parts.append(f'<line x1="{x:.1f}" y1="5" x2="{x:.1f}" y2="{h - 15}" stroke="#999" stroke-dasharray="3,3"/>'
                     f'<text x="{x:.1f}" y="{h - 3}" text-anchor="middle" fill="#666">{db:.0f} dB</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(result, acc: Accuracy, pareto: list | None = None) -> str:
    e = html.escape
    summary = "".join(f"<li>{e(line.strip())}</li>" for line in summary_lines(result, acc))
    rows = "".join(f"<tr><td>{layer.index}</td><td>{e(layer.op)}</td><td>{layer.dtype}</td>"
                   f"<td class=n>{e(_db(layer.sqnr_db))}</td><td><code>{e(layer.name)}</code></td></tr>"
                   for layer in acc.worst())
    extra = ""
    if pareto:
        extra = "<h2>16x8 choices</h2><pre>" + e("\n".join(pareto_lines(pareto))) + "</pre>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>microgen quantization report: {e(result.float_graph.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}td,th{{padding:2px 8px;text-align:left}}
td.n{{text-align:right}}tr:nth-child(even){{background:#f4f4f4}}code{{font-size:90%}}</style></head>
<body><h1>Quantization report: {e(result.float_graph.name)}</h1><ul>{summary}</ul>
<h2>Per-layer SQNR (graph order)</h2>
<p>Dequantized int output vs float output of each op over {acc.samples} {e(acc.data)} sample(s); it shows the
error accumulated up to each layer. Red below {LOW_DB:.0f} dB, amber below {OK_DB:.0f} dB.</p>
{_bar_chart(acc)}
<h2>Layers, worst first</h2><table><tr><th>#</th><th>op</th><th>dtype</th><th>SQNR</th><th>tensor</th></tr>
{rows}</table>{extra}</body></html>
"""


def write_report(path: str, result, acc: Accuracy, pareto: list | None = None) -> None:
    """HTML for .html / .htm, text otherwise."""
    body = to_html(result, acc, pareto) if path.lower().endswith((".html", ".htm")) else to_text(result, acc, pareto)
    with open(path, "w", encoding="utf-8") as f:
        f.write(body)
