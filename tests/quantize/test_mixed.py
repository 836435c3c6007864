"""16x8 choices (quantize.mixed): ranking by own damage, the Pareto table, the pick within a drop."""

from __future__ import annotations

import numpy as np
import pytest

from microgen.errors import InvalidInputError
from microgen.quantize import QuantizeOptions, quantize
from microgen.quantize.mixed import Choice, _mark_pareto, estimated_cycles, pick, search_int16

from .graphs import all_ops_graph


def choice(label, score, size, cycles, drop=None):
    return Choice(label, (), score, 30.0, drop, size, cycles)


def test_pareto_and_pick():
    rows = _mark_pareto([choice("a", 0.90, 100, 100, 5.0), choice("b", 0.95, 120, 150, 0.5),
                         choice("c", 0.93, 130, 160, 2.0), choice("d", 0.96, 200, 300, 0.0)])
    assert [r.pareto for r in rows] == [True, True, False, True]
    assert pick(rows, 1.0).label == "b" and pick(rows, 0.0).label == "d" and pick(rows, -1.0) is None


def test_search_on_a_small_graph():
    g = all_ops_graph()
    rng = np.random.default_rng(0)
    x = {"x": rng.uniform(-1, 1, size=(12, 1, 8, 8, 3)).astype(np.float32)}
    r = quantize(g, x)
    rows = search_int16(r, x, max_layers=2)
    assert [c.label for c in rows][:3] == ["all int8", "worst 1 in int16", "worst 2 in int16"]
    assert rows[0].int16 == () and len(rows[2].int16) == 2 and rows[1].int16 == rows[2].int16[:1]
    assert any(c.pareto for c in rows)
    assert rows[-1].est_cycles > rows[0].est_cycles == estimated_cycles(r.graph)
    assert all(c.result.graph.tensors[c.int16[0]].dtype.value == "int16" for c in rows[1:])
    with pytest.raises(InvalidInputError, match="not an activation tensor"):
        quantize(g, x, QuantizeOptions(int16=("nope",)), stats=r.stats)
