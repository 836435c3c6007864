"""The fast requantization (SMMULR path) equals TFLM's double rounding wherever its bound admits it."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from microgen.fixedpoint import quantize_multiplier
from microgen.graph import DType
from microgen.tir.fast_requant import model, plan_fast_requant, reference
from microgen.tir.quant import Requant


@settings(max_examples=300, deadline=None)
@given(scale=st.floats(1e-6, 4.0), zp=st.integers(-128, 127), bound=st.integers(1, 2**24),
       act=st.sampled_from([(-128, 127), (0, 127), (-128, 50)]), seed=st.integers(0, 2**31))
def test_fast_path_equals_tflm(scale, zp, bound, act, seed):
    m, s = quantize_multiplier(scale)
    lo, hi = max(act[0], -128), act[1]
    rq = Requant(np.array([m]), np.array([s]), zp, max(lo, -128), hi, wide=False)
    fr = plan_fast_requant(rq, np.array([bound]), DType.INT8)
    if fr is None:  # the bound does not hold: the generic path is used instead
        assert bound * 2.0 ** (max(s, 0) + 1) >= 2**31 or -s > 30
        return
    rng = np.random.default_rng(seed)
    acc = np.concatenate([rng.integers(-bound, bound + 1, 2000), [-bound, bound, 0, 1, -1]])
    # Exact ties of the right shift are the delicate cases: include accumulators landing on them.
    np.testing.assert_array_equal(model(acc, fr), reference(acc, rq))


def test_per_channel_constants_and_fallback():
    pairs = [quantize_multiplier(v) for v in (0.001, 0.02, 0.7, 1.9)]
    rq = Requant(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), -5, -128, 127, wide=False)
    fr = plan_fast_requant(rq, np.array([10_000] * 4), DType.INT8)
    assert fr is not None and fr.per_channel and fr.full_range
    acc = np.arange(-10_000, 10_001, 7)
    for c in range(4):
        np.testing.assert_array_equal(model(acc, fr, c), reference(acc, rq, c))
    assert plan_fast_requant(rq, np.array([2**30] * 4), DType.INT8) is None  # bound fails: generic path
    wide = Requant(rq.multiplier, rq.shift, 0, -32768, 32767, wide=True)
    assert plan_fast_requant(wide, np.array([10] * 4), DType.INT16) is None
