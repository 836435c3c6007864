"""16x8 mixed precision: keep the worst layers' activations in int16 when that buys accuracy back.

Which layers: a layer's own damage is the SQNR its input had minus the SQNR its output has (the
per-layer SQNR measures accumulated error, so the difference is what this layer added). The
candidates (plan.int16_candidates: outputs of ops with a 16x8 kernel, not a model input or output)
are ranked by own damage, and the choices tried are: all int8, the worst 1, 2, ... `max_layers`
groups cumulatively, and every candidate in int16. Each choice is re-planned from the same observers
(no new calibration run) and evaluated on the same samples.

Per choice the table shows the score (accuracy with labels, else top-1 agreement, else output SQNR),
size = constant bytes + arena bytes (memory_planner.plan), and an estimated cost in cycles from a
coarse model meant only for ranking the choices against each other:
    MAC ops: MACs x (1 for 8-bit, 2 for 16-bit activations: 16x8 kernels pair fewer MACs per SIMD
    instruction on Cortex-M); every other op: output elements x 4 (an inserted requantize included).
Real figures come from `microgen profile` on a board.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from .. import memory_planner
from ..graph import Graph
from ..graph.analysis import op_macs, weight_bytes
from .accuracy import Accuracy, evaluate
from .plan import int16_candidates, tie_groups

CAP_DB = 100.0  # stands in for an exact (infinite SQNR) tensor when taking differences


@dataclass(frozen=True)
class Choice:
    label: str
    int16: tuple[str, ...]
    score: float | None            # accuracy (labels) or top-1 agreement; None for non-classifiers
    output_sqnr_db: float
    drop_points: float | None
    size_bytes: int
    est_cycles: int
    pareto: bool = False
    result: object = None          # the QuantizeResult, to export the chosen one
    accuracy: Accuracy | None = None


def estimated_cycles(graph: Graph) -> int:
    """The coarse cost model of the module docstring."""
    total = 0
    for op in graph.ops:
        macs = op_macs(graph, op)
        if macs:
            wide = graph.tensors[op.inputs[0]].dtype.itemsize >= 2
            total += macs * (2 if wide else 1)
        else:
            total += 4 * sum(graph.tensors[n].size for n in op.outputs)
    return int(total)


def size_bytes(graph: Graph) -> int:
    return weight_bytes(graph) + memory_planner.plan(graph).arena_size


def own_damage(result, acc: Accuracy) -> dict[str, float]:
    """Group root -> the largest SQNR drop (dB) one of its producers adds (see module docstring)."""
    fg = result.float_graph
    groups = tie_groups(fg)
    by_name = {layer.name: min(layer.sqnr_db, CAP_DB) for layer in acc.layers}
    damage: dict[str, float] = {}
    for op in fg.ops:
        ins = [n for n in op.inputs if n and n in by_name]
        before = min((by_name[n] for n in ins), default=CAP_DB)
        for out in op.outputs:
            root = groups[out]
            damage[root] = max(damage.get(root, -math.inf), before - by_name[out])
    return damage


def search_int16(result, samples: Mapping[str, np.ndarray], labels: np.ndarray | None = None,
                 data: str = "calibration", max_layers: int = 3, base: Accuracy | None = None) -> list[Choice]:
    """Evaluate the int8 result and its 16x8 variants; returns the choices with the Pareto front marked."""
    from . import quantize

    base = base or evaluate(result, samples, labels, data)
    damage = own_damage(result, base)
    candidates = int16_candidates(result.float_graph)
    ranked = sorted(candidates, key=lambda r: -damage.get(r, 0.0))
    sets: list[tuple[str, tuple[str, ...]]] = [("all int8", ())]
    for k in range(1, min(max_layers, len(ranked)) + 1):
        sets.append((f"worst {k} in int16", tuple(ranked[:k])))
    if len(ranked) > max_layers:
        sets.append((f"all {len(ranked)} candidates in int16", tuple(ranked)))
    choices = []
    for label, wide in sets:
        if not wide:
            r, acc = result, base
        else:
            opts = replace(result.options, int16=wide)
            r = quantize(result.float_graph, _calib_like(samples), opts, stats=result.stats)
            r = replace(r, samples=result.samples)
            acc = evaluate(r, samples, labels, data)
        score = acc.quant_accuracy if acc.quant_accuracy is not None else acc.agreement
        choices.append(Choice(label, wide, score, acc.output_sqnr_db, acc.drop_points, size_bytes(r.graph),
                              estimated_cycles(r.graph), result=r, accuracy=acc))
    return _mark_pareto(choices)


def _calib_like(samples: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    # quantize() needs arrays only to check shapes when stats are given: one sample is enough.
    return {k: v[:1] for k, v in samples.items()}


def _mark_pareto(choices: list[Choice]) -> list[Choice]:
    def key(c: Choice) -> tuple[float, float, float]:
        score = c.score if c.score is not None else c.output_sqnr_db
        return (-score, c.size_bytes, c.est_cycles)

    out = []
    for c in choices:
        kc = key(c)
        dominated = any(all(a <= b for a, b in zip(key(o), kc)) and key(o) != kc for o in choices)
        out.append(replace(c, pareto=not dominated))
    return out


def pick(choices: list[Choice], max_drop: float) -> Choice | None:
    """The cheapest (estimated cycles, then size) choice whose drop is within max_drop points."""
    ok = [c for c in choices if c.drop_points is not None and c.drop_points <= max_drop]
    return min(ok, key=lambda c: (c.est_cycles, c.size_bytes)) if ok else None
