"""`microgen inspect`: a per-op table of a model and its totals (MACs, weight bytes, live-bytes peak)."""

from __future__ import annotations

from typing import Any

from .graph import Graph
from .graph.analysis import op_macs, summarize
from .textui import num, table


def shapes(graph: Graph, names) -> str:
    return ", ".join("x".join(map(str, graph.tensors[n].shape)) for n in names if n and not graph.tensors[n].is_const)


def op_rows(graph: Graph) -> list[dict[str, Any]]:
    """One record per op: kind, name, activation shapes, dtypes, quantization, MACs, weight bytes."""
    rows = []
    for i, op in enumerate(graph.ops):
        ins = [t for t in graph.op_inputs(op) if t is not None]
        acts = [t for t in ins if not t.is_const]
        consts = [t for t in ins if t.is_const]
        out = graph.tensors[op.outputs[0]]
        weight_q = next((t.quant for t in consts if t.quant is not None), None)
        rows.append(dict(
            index=i, op=op.kind, name=op.name,
            inputs=[list(t.shape) for t in acts], outputs=[list(graph.tensors[n].shape) for n in op.outputs],
            dtype=out.dtype.value,
            input_dtypes=[t.dtype.value for t in acts],
            output_quant=str(out.quant) if out.quant else None,
            weight_quant=("per-channel" if weight_q.per_channel else "per-tensor") if weight_q else None,
            macs=op_macs(graph, op), weight_bytes=sum(t.nbytes for t in consts),
        ))
    return rows


def inspect_dict(graph: Graph) -> dict[str, Any]:
    s = summarize(graph)
    return dict(
        model=graph.name, format=graph.source_format,
        inputs=[dict(name=t.name, shape=list(t.shape), dtype=t.dtype.value,
                     quant=str(t.quant) if t.quant else None) for t in graph.input_tensors()],
        outputs=[dict(name=t.name, shape=list(t.shape), dtype=t.dtype.value,
                      quant=str(t.quant) if t.quant else None) for t in graph.output_tensors()],
        ops=op_rows(graph),
        totals=dict(ops=s.ops, macs=s.macs, weight_bytes=s.weight_bytes, peak_live_bytes=s.peak_live_bytes),
    )


def inspect_text(graph: Graph) -> str:
    d = inspect_dict(graph)
    lines = [f"model {d['model']} ({d['format']})"]
    for io in ("inputs", "outputs"):
        for t in d[io]:
            q = f"  {t['quant']}" if t["quant"] else ""
            lines.append(f"  {io[:-1]:6} {t['name']}: {t['dtype']}{t['shape']}{q}")
    rows = [[r["index"], r["op"], " ; ".join("x".join(map(str, s)) for s in r["inputs"]),
             " ; ".join("x".join(map(str, s)) for s in r["outputs"]), r["dtype"],
             r["weight_quant"] or "-", num(r["macs"]), num(r["weight_bytes"])] for r in d["ops"]]
    lines.append("")
    lines.append(table(["#", "op", "input", "output", "dtype", "weights", "MACs", "weight B"], rows,
                       right=(0, 6, 7)))
    t = d["totals"]
    lines.append("")
    lines.append(f"total: {t['ops']} ops, {num(t['macs'])} MACs, {num(t['weight_bytes'])} weight bytes, "
                 f"peak live activations {num(t['peak_live_bytes'])} bytes")
    return "\n".join(lines)
