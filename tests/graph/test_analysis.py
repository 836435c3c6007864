"""MACs, weight bytes and live-bytes peak on a hand-built graph, and on the MLPerf Tiny models."""

import numpy as np
import pytest

from microgen import importers
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.analysis import lifetimes, live_bytes_per_op, op_macs, summarize
from microgen.testing.corpus import require_model


def small_graph() -> Graph:
    q = QuantParams.per_tensor(0.1, 0)
    t = {
        "x": Tensor("x", (1, 8, 8, 2), DType.INT8, q),
        "w": Tensor("w", (4, 3, 3, 2), DType.INT8, QuantParams((0.1,) * 4, (0,) * 4, 0),
                    np.ones((4, 3, 3, 2), np.int8)),
        "b": Tensor("b", (4,), DType.INT32, None, np.zeros(4, np.int32)),
        "c": Tensor("c", (1, 8, 8, 4), DType.INT8, q),
        "p": Tensor("p", (1, 4, 4, 4), DType.INT8, q),
        "f": Tensor("f", (1, 64), DType.INT8, q),
        "fw": Tensor("fw", (10, 64), DType.INT8, QuantParams.per_tensor(0.1), np.ones((10, 64), np.int8)),
        "y": Tensor("y", (1, 10), DType.INT8, q),
    }
    ops = (
        Op("CONV_2D", ("x", "w", "b"), ("c",), dict(strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1),
                                                    activation="NONE", rounding="tflm")),
        Op("MAX_POOL", ("c",), ("p",), dict(kernel=(2, 2), strides=(2, 2))),
        Op("RESHAPE", ("p",), ("f",)),
        Op("FULLY_CONNECTED", ("f", "fw", ""), ("y",), dict(activation="NONE")),
    )
    return verify(Graph("small", t, ops, ("x",), ("y",)))


def test_macs_weights_and_live_bytes_by_hand():
    g = small_graph()
    assert [op_macs(g, op) for op in g.ops] == [8 * 8 * 4 * 3 * 3 * 2, 0, 0, 10 * 64]
    s = summarize(g)
    assert s.weight_bytes == 4 * 3 * 3 * 2 + 4 * 4 + 10 * 64
    # x (128 B) and c (256 B) are both live at the conv; c and p (64 B) at the pool; p and f; f and y.
    assert live_bytes_per_op(g) == [128 + 256, 256 + 64, 64 + 64, 64 + 10]
    assert s.peak_live_bytes == 384
    assert {lt.name: (lt.first, lt.last) for lt in lifetimes(g)} == {
        "x": (0, 0), "c": (0, 1), "p": (1, 2), "f": (2, 3), "y": (3, 3)}


# MACs from ../shared/models/README.md; live-bytes peaks from ../shared/docs/baselines.md.
MLPERF = [
    ("mlperf_tiny/kws_ref_model.tflite", 2_656_768, 16_000),
    ("mlperf_tiny/vww_96_int8.tflite", 7_489_664, 55_296),
    ("mlperf_tiny/pretrainedResnet_quant.tflite", 12_501_632, 49_152),
    ("mlperf_tiny/ad01_int8.tflite", 264_192, 768),
]


@pytest.mark.parametrize("rel,macs,peak", MLPERF, ids=[m[0].split("/")[1] for m in MLPERF])
def test_mlperf_macs_and_peak(rel, macs, peak):
    s = summarize(importers.load(require_model(rel)))
    assert s.macs == macs
    assert s.peak_live_bytes == peak
