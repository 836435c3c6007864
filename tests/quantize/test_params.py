"""Quantization parameter math (params.py), observers, plan rules: small hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from microgen.graph import DType, QuantParams
from microgen.quantize.observers import RangeStats
from microgen.quantize.params import (activation_params, bias_fit_scales, dequantize_array, quantize_array,
                                      quantize_bias, quantize_weights)
from microgen.quantize.plan import int16_candidates, make_plan, tie_groups

from .graphs import all_ops_graph


def test_activation_params_tflite_rules():
    q = activation_params(0.0, 1.0)               # digits inputs: the converter's 1/255, -128
    assert q.s == float(np.float32(1 / 255)) and q.zp == -128
    q = activation_params(-1.0, 1.0)               # zero point -0.5 rounds away from zero, as TFLite's
    assert q.zp == -1 and q.s == float(np.float32(2 / 255))
    q = activation_params(0.5, 2.0)               # 0 must be representable: the range grows to [0, 2]
    assert q.zp == -128 and q.s == float(np.float32(2 / 255))
    q = activation_params(-3.0, 0.0)
    assert q.zp == 127
    assert activation_params(0.0, 0.0).s > 0      # a dead tensor still gets a valid scale
    q16 = activation_params(-2.0, 1.0, DType.INT16)
    assert q16.zp == 0 and q16.s == float(np.float32(2 / 32767))


def test_quantize_array_rounds_half_away_and_saturates():
    q = QuantParams.per_tensor(0.5, 0)
    got = quantize_array(np.array([0.25, -0.25, 0.75, 1000.0, -1000.0]), q, DType.INT8)
    assert got.tolist() == [1, -1, 2, 127, -128]
    assert dequantize_array(got, q).tolist() == [0.5, -0.5, 1.0, 63.5, -64.0]


def test_weights_per_channel_symmetric():
    w = np.array([[1.0, -0.5], [0.0, 0.0], [0.25, -1.0]], dtype=np.float32)  # [out=3, in=2]
    q, p = quantize_weights(w, axis=0)
    assert p.axis == 0 and p.zero_point == (0, 0, 0)
    assert q[0].tolist() == [127, -64] and q[1].tolist() == [0, 0] and q[2].tolist() == [32, -127]
    assert p.scale[1] == 1.0                       # all-zero channel
    assert all(s == float(np.float32(s)) for s in p.scale)
    qt, pt = quantize_weights(w, axis=None)
    assert pt.axis is None and qt.min() >= -127 and abs(qt).max() == 127


def test_bias_scale_and_overflow_fit():
    w_q = QuantParams((0.01, 0.02), (0, 0), 0)
    b, bq = quantize_bias(np.array([1.0, -1.0]), 0.5, w_q, 2, DType.INT32)
    assert bq.scale == (float(np.float32(0.005)), float(np.float32(0.01))) and b.tolist() == [200, -100]
    # A bias this large does not fit int32 at in_scale * w_scale: the weight scale is raised.
    scales = bias_fit_scales(np.array([1e6, 1.0]), 1e-3, np.array([1e-6, 1e-6], np.float32), DType.INT32)
    assert scales[0] > 1e-6 and scales[1] == np.float32(1e-6)
    b, _ = quantize_bias(np.array([1e6, 1.0]), 1e-3, QuantParams(tuple(map(float, scales)), (0, 0), 0), 2,
                         DType.INT32)
    assert abs(int(b[0])) < 2 ** 31 - 1


def test_observers_minmax_percentile_mse():
    rng = np.random.default_rng(0)
    st = RangeStats()
    for _ in range(20):
        st.update(rng.normal(0, 1, size=5000))
    st.update(np.array([40.0]))                     # one outlier
    lo, hi = st.range("minmax")
    assert hi == 40.0 and lo < -3
    plo, phi = st.range("percentile", 99.99)
    assert 3.0 < phi < 5.0 and -5.0 < plo < -3.0
    # MSE keeps a lone outlier when clipping it costs more than the coarser step costs everyone else
    # (40^2 against 100k values * step^2 / 12) ...
    assert st.range("mse")[1] > 30
    # ... and clips a heavy tail, where many values share the cost of a wide range.
    lap = RangeStats()
    for _ in range(20):
        lap.update(np.maximum(rng.laplace(0, 1, size=5000), 0))
    mlo, mhi = lap.range("mse")
    assert mlo == 0.0 and 0.5 * lap.hi < mhi < lap.hi
    with pytest.raises(ValueError):
        st.range("nope")


def test_histogram_grows_without_losing_counts():
    st = RangeStats()
    st.update(np.linspace(0, 1, 1000))
    st.update(np.array([-50.0, 300.0]))
    assert st.counts.sum() == 1002 and st.h_lo <= -50 and st.h_hi >= 300
    assert st.range("minmax") == (-50.0, 300.0)


def test_plan_ties_same_ops_and_fixes_softmax():
    g = all_ops_graph()
    groups = tie_groups(g)
    # concatenation ties its inputs (and the conv feeding both) with pool, pad, avgpool
    assert groups["hswish"] == groups["concat"] == groups["maxpool"] == groups["pad"] == groups["conv1"]
    assert groups["mean"] == groups["flat"] and groups["mean"] != groups["avgpool"]
    ranges = {name: (-1.0, 2.0) for name in groups}
    plan = make_plan(g, ranges)
    assert plan.params["probs"] == QuantParams.per_tensor(float(np.float32(1 / 256)), -128)
    assert plan.params["tanh"] == QuantParams.per_tensor(1 / 128, 0)
    assert plan.params["concat"] == plan.params["conv1"]
    cands = int16_candidates(g)
    assert "dw" in cands and "logits" in cands and "x" not in cands and groups["concat"] not in cands
    plan16 = make_plan(g, ranges, int16=["dw"])
    assert plan16.dtypes["dw"] is DType.INT16 and plan16.params["dw"].zp == 0
