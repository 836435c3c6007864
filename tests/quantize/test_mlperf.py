"""The float MLPerf Tiny models quantize, export (TFLM bit-exact), build into C (bit-exact on the host)
and their per-layer / end-to-end SQNR against float is printed beside the official int8 model's on the
same inputs (a report, not a threshold: run with -s to read it).

No datasets ship with these models, so calibration and evaluation inputs are seeded synthetic data over
each model's documented input range (see benchmarks/quantize_mlperf.py, which prints the same table).
AD is small and runs in the default suite; ResNet-8 and VWW are marked slow.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from microgen.testing.corpus import require_model

from .checks import check_c, check_tflm, graph_inputs

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "quantize_mlperf.py"


def bench():
    spec = importlib.util.spec_from_file_location("quantize_mlperf", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("key", [
    "ad",
    pytest.param("resnet", marks=pytest.mark.slow),
    pytest.param("vww", marks=pytest.mark.slow),
])
def test_mlperf_float_model_quantizes_builds_and_runs_bit_exact(tmp_path, key):
    b = bench()
    for rel in b.MODELS[key]:
        require_model(rel)
    result, ours, theirs, seconds = b.compare(key, n_calib=32, n_eval=16)
    print("\n" + b.table(key, result, ours, theirs, seconds))
    q = result.graph
    assert all(t.dtype.value == "int8" for t in q.activations())
    assert len(ours.layers) == len(theirs.layers) == len(result.float_graph.ops)
    inputs = graph_inputs(q, 4)
    check_tflm(q, tmp_path / "q.tflite", inputs)
    check_c(tmp_path / "q.tflite", q, inputs, tmp_path / "c")
