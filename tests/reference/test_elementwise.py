"""The elementwise / activation reference kernels (ADD, SUB, MUL, CLIP, LEAKY_RELU, HARD_SWISH, LOGISTIC,
TANH, SOFTMAX) and microgen.fixedpoint.gemmlowp.

1. gemmlowp.py against plain scalar Python re-statements of fixedpoint.h (hypothesis), plus accuracy
   against math.exp / tanh.
2. Hand-worked kernel cases: broadcasting, rounding, saturation at int8/int16 limits, zero-point
   extremes, wraparound of plain integers, and the exact errors for what TFLM refuses.
3. TFLM on synthetic single-op models built here (every quantized path incl. int16, inputs sweeping the
   whole int8/int16 range, fused activations, broadcasting), several ops per model to save launches.
4. TFLM per layer on the real corpus models: each op gets the oracle's own input tensors and must give
   the oracle's output tensor exactly (float: within 1e-5 relative); SEANet golden CSVs.
"""

from __future__ import annotations

import importlib
import math
import sys

import flatbuffers
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgen import importers
from microgen.errors import ModelFormatError, UnsupportedOpError
from microgen.fixedpoint import gemmlowp as gl
from microgen.fixedpoint import quantize_multiplier, saturating_rounding_doubling_high_mul
from microgen.graph import DType, Graph, Op, QuantParams, Tensor
from microgen.reference.registry import KERNELS
from microgen.testing.corpus import require_model, seeded_inputs
from microgen.testing.oracles import tflm_run

I32 = st.integers(-(1 << 31), (1 << 31) - 1)
I16 = st.integers(-(1 << 15), (1 << 15) - 1)
MY_KINDS = ("ADD", "SUB", "MUL", "CLIP", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH", "SOFTMAX")


# -- 1. gemmlowp.py vs scalar re-statements ----------------------------------------------------------

def s_srdhm(a: int, b: int, bits: int = 32) -> int:
    if a == b == -(1 << (bits - 1)):
        return (1 << (bits - 1)) - 1
    ab = a * b
    nudged = ab + ((1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2)))
    return int(nudged / (1 << (bits - 1))) if abs(nudged) < 2 ** 52 else \
        (abs(nudged) >> (bits - 1)) * (1 if nudged >= 0 else -1)


def s_rdbpot(x: int, e: int) -> int:
    """Round to nearest, halves away from zero."""
    q, r = divmod(abs(x), 1 << e)
    q += 2 * r >= (1 << e) if e else 0
    return q if x >= 0 else -q


def s_wrap(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def s_mul_pot(x: int, e: int) -> int:
    if e <= 0:
        return s_rdbpot(x, -e)
    return max(-(1 << 31), min((1 << 31) - 1, x << e))


def s_exp_on_negative_values(a: int, ib: int) -> int:
    frac = 31 - ib
    quarter = 1 << (frac - 2)
    amq = (a % quarter) - quarter                                  # (a & (quarter-1)) - quarter
    x = s_wrap(s_mul_pot(amq, ib) + (1 << 28))
    x2 = s_srdhm(x, x)
    x3 = s_srdhm(x2, x)
    x4 = s_srdhm(x2, x2)
    poly = s_rdbpot(s_wrap(s_srdhm(s_wrap(s_rdbpot(x4, 2) + x3), 715827883) + x2), 1)
    result = s_wrap(1895147668 + s_srdhm(1895147668, s_wrap(x + poly)))
    remainder = s_wrap(amq - a)
    for k, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
                    (3, 720401), (4, 242)):
        if ib > k and remainder & (1 << (frac + k)):
            result = s_srdhm(result, mult)
    if ib > 5 and a < -(1 << (36 - ib)):
        result = 0
    return (1 << 31) - 1 if a == 0 else result


def s_reciprocal_q2_29(d: int) -> int:
    x = s_wrap(1515870810 + s_srdhm(d, -1010580540))
    for _ in range(3):
        x = s_wrap(x + s_mul_pot(s_srdhm(x, s_wrap((1 << 29) - s_srdhm(d, x))), 2))
    return x


def s_half_sum(a: int, b: int) -> int:
    t = a + b
    t += 1 if t >= 0 else -1
    return int(t / 2) if abs(t) < 2 ** 52 else (abs(t) >> 1) * (1 if t >= 0 else -1)


def s_one_over_one_plus_x(a: int) -> int:
    return s_mul_pot(s_reciprocal_q2_29(s_half_sum(a, (1 << 31) - 1)), 1)


def s_one_minus_x_over_one_plus_x(a: int) -> int:
    return s_mul_pot(s_wrap(s_reciprocal_q2_29(s_half_sum(a, (1 << 31) - 1)) - (1 << 29)), 2)


@settings(max_examples=200, deadline=None)
@given(I32, I32)
def test_srdhm_and_half_sum_match_scalar(a, b):
    assert saturating_rounding_doubling_high_mul(a, b) == s_srdhm(a, b)
    assert gl.rounding_half_sum(a, b) == s_half_sum(a, b)


@settings(max_examples=200, deadline=None)
@given(I16, I16, st.integers(0, 15))
def test_int16_primitives_match_scalar(a, b, shift):
    assert gl.saturating_rounding_doubling_high_mul_int16(a, b) == s_srdhm(a, b, bits=16)
    sdhm = 32767 if a == b == -32768 else int(a * b / 32768)
    assert gl.saturating_doubling_high_mul_int16(a, b) == sdhm
    assert gl.saturating_left_shift_int16(a, shift) == max(-32768, min(32767, a * 2 ** shift))


@settings(max_examples=200, deadline=None)
@given(I32, st.integers(-31, 31))
def test_saturating_rounding_multiply_by_pot_matches_scalar(x, e):
    assert gl.saturating_rounding_multiply_by_pot(x, e) == s_mul_pot(x, e)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 31), 0), st.integers(0, 12))
def test_exp_on_negative_values_matches_scalar_and_math(a, ib):
    got = int(gl.exp_on_negative_values(np.array([a]), ib)[0])
    assert got == s_exp_on_negative_values(a, ib)
    assert abs(got / 2 ** 31 - math.exp(a / 2 ** (31 - ib))) < 2e-6


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 31) - 1))
def test_reciprocal_helpers_match_scalar_and_math(a):
    got = int(gl.one_over_one_plus_x_for_x_in_0_1(a))
    assert got == s_one_over_one_plus_x(a)
    assert abs(got / 2 ** 31 - 1 / (1 + a / 2 ** 31)) < 1e-8
    got = int(gl.one_minus_x_over_one_plus_x_for_x_in_0_1(a))
    assert got == s_one_minus_x_over_one_plus_x(a)
    real = a / 2 ** 31
    assert abs(got / 2 ** 31 - (1 - real) / (1 + real)) < 1e-8


@settings(max_examples=200, deadline=None)
@given(I32, st.integers(0, 6))
def test_logistic_and_tanh_match_scalar_and_math(a, ib):
    def neg(v):
        return s_wrap(-v)
    pos = s_one_over_one_plus_x(s_exp_on_negative_values(neg(a) if a > 0 else s_wrap(a), ib))
    want_logistic = 1 << 30 if a == 0 else pos if a > 0 else s_wrap((1 << 31) - 1 - pos)
    assert gl.logistic(a, ib) == want_logistic
    n = a if a < 0 else neg(a)
    t = s_one_minus_x_over_one_plus_x(s_exp_on_negative_values(n, ib + 1))
    assert gl.tanh(a, ib) == (0 if a == 0 else neg(t) if a < 0 else t)
    real = a / 2 ** (31 - ib)
    assert abs(int(gl.logistic(a, ib)) / 2 ** 31 - 1 / (1 + math.exp(-real))) < 1e-6
    assert abs(int(gl.tanh(a, ib)) / 2 ** 31 - math.tanh(real)) < 2e-6


@settings(max_examples=200, deadline=None)
@given(st.integers(1, (1 << 31) - 1), st.integers(0, 20))
def test_get_reciprocal_matches_scalar(x, digits):
    got, bits_over = gl.get_reciprocal(np.array([x]), digits)
    headroom = 32 - x.bit_length()
    assert gl.count_leading_zeros_u32(x) == headroom
    assert bits_over[0] == digits - headroom
    assert got[0] == s_one_over_one_plus_x(((x << headroom) & 0xFFFFFFFF) - (1 << 31))
    # 1/x = reciprocal * 2^-(bits over unit), x read with `digits` integer bits.
    inverse = 2 ** (31 - digits) / x
    assert abs(got[0] / 2 ** 31 * 2.0 ** -bits_over[0] - inverse) <= 1e-8 * inverse


EXP_LUT = gl.lut_populate_int16(np.float32(10 / 65535), 32767, np.float32(2 / 65535), 0, gl.expf)


@settings(max_examples=200, deadline=None)
@given(I16)
def test_lut_lookup_matches_scalar(v):
    lut = EXP_LUT
    index, offset = 256 + (v >> 7), v & 0x7F
    slope = int(lut[index + 1] - lut[index])
    assert gl.lut_lookup_int16(v, lut) == int(lut[index]) + ((slope * offset + 64) >> 7)


def test_small_helpers_by_hand():
    assert gl.calculate_input_radius(4, 3) == (15 << 27) >> 3
    assert gl.calculate_input_radius(5, 20) == math.floor(31 * 2 ** 26 / 2 ** 20)
    assert gl.checked_log2(1 / 4096) == (True, -12)
    assert gl.checked_log2(0.0003)[0] is False
    assert gl.downscale_int32_to_int16_multiplier(1 << 30) == 1 << 14
    assert gl.downscale_int32_to_int16_multiplier((1 << 31) - 1) == 32767
    assert gl.preprocess_softmax_scaling(1.0, 1 / 16, 5) == quantize_multiplier(2.0 ** 22)
    assert list(gl.SIGMOID_TABLE_UINT16[[0, 1, 255]]) == [32768, 33451, 65535]
    # exp LUT: exp(0) at the top end is 1.0 -> 32767 (saturated); exp(-10) * 32768 = 1.49 at the bottom
    # (2 after the midpoint-error bias).
    lut = EXP_LUT
    assert lut.shape == (513,) and lut[512] == 32767 and lut[0] == 2


# -- 2. hand-worked kernel cases ---------------------------------------------------------------------

def T(name: str, shape, dtype: str, scale: float | None = None, zp: int = 0) -> Tensor:
    q = None if scale is None else QuantParams.per_tensor(float(np.float32(scale)), zp)
    return Tensor(name, tuple(shape), DType(dtype), q)


def run_op(kind: str, ins: list[Tensor], out: Tensor, arrays: list, **attrs) -> np.ndarray:
    op = Op(kind, tuple(t.name for t in ins), (out.name,), attrs, name="op", index=0)
    graph = Graph("g", {t.name: t for t in [*ins, out]}, (op,), tuple(t.name for t in ins), (out.name,))
    arrays = [np.asarray(a, dtype=t.dtype.np).reshape(t.shape) for a, t in zip(arrays, ins)]
    return KERNELS[kind](op, graph, arrays)[0]


def test_quantized_add_by_hand_rounds_half_away_and_broadcasts():
    # s = 0.5, 0.5 -> 1.0: y = round(0.5 a + 0.5 b), halves away from zero; b [3] broadcasts over [2, 3].
    a, b, y = T("a", (2, 3), "int8", 0.5), T("b", (3,), "int8", 0.5), T("y", (2, 3), "int8", 1.0)
    got = run_op("ADD", [a, b], y, [[[3, 1, -1], [127, -128, 0]], [5, 2, -2]])
    np.testing.assert_array_equal(got, [[4, 2, -2], [66, -63, -1]])


def test_quantized_add_saturates_and_honours_extreme_zero_points():
    a, b = T("a", (4,), "int8", 0.1, -128), T("b", (4,), "int8", 0.1, 127)
    y = T("y", (4,), "int8", 0.1, 0)
    # Reals: a in [0, 25.5], b in [-25.5, 0]; output saturates past +-12.7.
    # 25.5 + 0, 25.5 - 25.5, 0 - 25.5, 12.8 - 10.0
    got = run_op("ADD", [a, b], y, [[127, 127, -128, 0], [127, -128, -128, 27]])
    np.testing.assert_array_equal(got, [127, 0, -128, 28])
    # RELU6 clamps to [0, round(6 / 0.1)]: 25.5, -25.5, -12.7, 2.0 - 6.0, 12.0 - 2.7
    a5, b5, y5 = T("a", (5,), "int8", 0.1, -128), T("b", (5,), "int8", 0.1, 127), T("y", (5,), "int8", 0.1, 0)
    relu6 = run_op("ADD", [a5, b5], y5, [[127, -128, 0, -108, -8], [127, -128, -128, 67, 100]],
                   activation="RELU6")
    np.testing.assert_array_equal(relu6, [60, 0, 0, 0, 60])


def test_int16_sub_broadcasts_a_vector_and_saturates():
    a = T("a", (1, 2, 3), "int16", 1 / 1024)
    b = T("b", (3,), "int16", 1 / 2048)
    y = T("y", (1, 2, 3), "int16", 1 / 1024)
    got = run_op("SUB", [a, b], y, [[[32767, -32768, 100], [0, 10, -10]], [-32768, 32767, 20]])
    np.testing.assert_array_equal(got, [[[32767, -32768, 90], [16384, -16374, -20]]])


def test_quantized_mul_by_hand():
    a, b = T("a", (3,), "int8", 0.5, 10), T("b", (3,), "int8", 0.5, -10)
    y = T("y", (3,), "int8", 0.25, -5)
    # real = (a - 10) * (b + 10) * 0.25 / 0.25 -> quantized (a-10)(b+10) - 5, clamped.
    got = run_op("MUL", [a, b], y, [[13, 7, 127], [-14, -10, 127]])
    np.testing.assert_array_equal(got, [-17, -5, 127])
    # int16: 2.0 * -1.5 = -3.0 -> -768; -128 * -128 saturates.
    a16, b16, y16 = (T(n, (2,), "int16", 2 ** -8) for n in "aby")
    got = run_op("MUL", [a16, b16], y16, [[512, -32768], [-384, -32768]])
    np.testing.assert_array_equal(got, [-768, 32767])


def test_plain_integer_arithmetic_wraps_like_numpy():
    for dtype, a, b, kind, want in [
        ("int8", [100, -100], [100, -100], "ADD", [-56, 56]),
        ("uint8", [200, 3], [100, 5], "SUB", [100, 254]),
        ("int16", [300, -2], [300, 3], "MUL", [24464, -6]),
        ("uint16", [65535, 1], [1, 1], "ADD", [0, 2]),
        ("uint32", [0, 7], [1, 2], "SUB", [4294967295, 5]),
        ("uint64", [2 ** 63, 3], [2, 2], "MUL", [0, 6]),
    ]:
        x, y, z = T("a", (2,), dtype), T("b", (2,), dtype), T("y", (2,), dtype)
        got = run_op(kind, [x, y], z, [a, b])
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, np.array(want, dtype=dtype))
    # TFLM's int32 SUB clamps to a fused RELU; its int32 ADD ignores it.
    x, y, z = T("a", (2,), "int32"), T("b", (2,), "int32"), T("y", (2,), "int32")
    np.testing.assert_array_equal(run_op("SUB", [x, y], z, [[1, 5], [4, 1]], activation="RELU"), [0, 4])
    np.testing.assert_array_equal(run_op("ADD", [x, y], z, [[1, 5], [-4, 1]], activation="RELU"), [-3, 6])


def test_float_ops_and_activation():
    a, b, y = T("a", (2, 2), "float32"), T("b", (2,), "float32"), T("y", (2, 2), "float32")
    got = run_op("MUL", [a, b], y, [[[1.5, -2.0], [4.0, 0.5]], [2.0, 4.0]], activation="RELU_N1_TO_1")
    np.testing.assert_array_equal(got, np.float32([[1.0, -1.0], [1.0, 1.0]]))


def test_clip_float_integer_and_quantized():
    x, y = T("x", (4,), "float32"), T("y", (4,), "float32")
    np.testing.assert_array_equal(run_op("CLIP", [x], y, [[-1, 0.5, 7, 3]], min=0.0, max=6.0), [0, 0.5, 6, 3])
    xi, yi = T("x", (4,), "int32"), T("y", (4,), "int32")
    np.testing.assert_array_equal(run_op("CLIP", [xi], yi, [[-5, 2, 9, 3]], min=-1.5, max=3.5), [-1, 2, 3, 3])
    # RELU6 on int8 s=0.05, zp=-100: bounds -100 and -100 + round(6 / 0.05) = 20.
    xq, yq = T("x", (4,), "int8", 0.05, -100), T("y", (4,), "int8", 0.05, -100)
    np.testing.assert_array_equal(run_op("CLIP", [xq], yq, [[-128, -60, 20, 127]], min=0.0, max=6.0),
                                  [-100, -60, 20, 20])
    # RELU with different output params requantizes: real 2.0 (x = -60) -> 2.0 / 0.1 - 128 = -108; real
    # 11.35 (x = 127) -> 113.5, the tie rounding up -> -14.
    yr = T("y", (4,), "int8", 0.1, -128)
    got = run_op("CLIP", [xq], yr, [[-128, -60, 20, 127]], min=0.0)
    np.testing.assert_array_equal(got, [-128, -108, -68, -14])


def test_leaky_relu_by_hand():
    x, y = T("x", (5,), "int8", 1.0), T("y", (5,), "int8", 1.0)
    # alpha 0.5 is the multiplier (2^30, shift 0), so only SRDHM rounds, and its ties go up: -3 -> -1.5 -> -1,
    # -1 -> -0.5 -> 0; -128 -> -64; positives pass through.
    got = run_op("LEAKY_RELU", [x], y, [[-3, -1, -128, 5, 127]], alpha=0.5)
    np.testing.assert_array_equal(got, [-1, 0, -64, 5, 127])
    # Output scale 0.5: identity (2^30, 2) doubles, alpha 0.125 gives (2^30, -1), whose RDBPOT rounds ties
    # away from zero: -6 -> -1.5 -> -2; -1 -> -0.25 -> 0; -128 -> -32; 127 -> 254 saturates.
    got = run_op("LEAKY_RELU", [x], T("y", (5,), "int8", 0.5), [[-6, -1, -128, 5, 127]], alpha=0.125)
    np.testing.assert_array_equal(got, [-2, 0, -32, 10, 127])
    x16, y16 = T("x", (3,), "int16", 1 / 1024), T("y", (3,), "int16", 1 / 4096)
    np.testing.assert_array_equal(run_op("LEAKY_RELU", [x16], y16, [[-32768, 10000, -8]], alpha=0.25),
                                  [-32768, 32767, -8])
    xf, yf = T("x", (2,), "float32"), T("y", (2,), "float32")
    got = run_op("LEAKY_RELU", [xf], yf, [[-2.0, 3.0]], alpha=0.1)
    np.testing.assert_array_equal(got, np.float32([-0.2, 3.0]))


def test_logistic_tanh_int8_at_zero_and_saturation():
    x = T("x", (5,), "int8", 0.1, 7)
    lg, th = T("y", (5,), "int8", 1 / 256, -128), T("y", (5,), "int8", 1 / 128, 0)
    vals = [7, -128, 127, 17, -3]
    # logistic(0) = 0.5 -> 0; logistic(+-1) = 0.731 / 0.269 -> 187 - 128, 69 - 128.
    np.testing.assert_array_equal(run_op("LOGISTIC", [x], lg, [vals]), [0, -128, 127, 59, -59])
    # tanh(0) = 0; tanh(+-1) = +-0.7616 -> +-97.
    np.testing.assert_array_equal(run_op("TANH", [x], th, [vals]), [0, -128, 127, 97, -97])


def test_softmax_int8_uniform_rows_and_axis():
    x, y = T("x", (2, 4), "int8", 0.1, 3), T("y", (2, 4), "int8", 1 / 256, -128)
    # Equal logits: 1/4 each -> 64 - 128. A logit 128 * 0.1 below the max: exp(-25.5) ~ 0 -> -128.
    got = run_op("SOFTMAX", [x], y, [[[5, 5, 5, 5], [127, -128, -128, -128]]])
    np.testing.assert_array_equal(got, [[-64] * 4, [127, -128, -128, -128]])
    xf, yf = T("x", (2, 3), "float32"), T("y", (2, 3), "float32")
    got = run_op("SOFTMAX", [xf], yf, [[[0, 1, 2], [0, 1, 2]]], axis=0, beta=2.0)
    np.testing.assert_allclose(got, np.full((2, 3), 0.5), rtol=1e-6)


@pytest.mark.parametrize("kind,ins,out,attrs,message", [
    ("MUL", [T("a", (2,), "int16", 0.1, 1), T("b", (2,), "int16", 0.1)], T("y", (2,), "int16", 0.1), {},
     'op #0 "op" MUL: 16-bit quantized MUL needs zero points 0 (TFLM), got 1, 0 -> 0'),
    ("ADD", [T("a", (2,), "int8", 0.1), T("b", (2,), "float32")], T("y", (2,), "int8", 0.1), {},
     "op #0 \"op\" ADD: unsupported mix of tensor types ('a' int8[2] s=0.1 zp=0, 'b' float32[2], 'y' int8[2] "
     "s=0.1 zp=0); expected all float, all quantized 8/16-bit, or all plain integer tensors"),
    ("ADD", [T("a", (2,), "int8", 0.1), T("b", (3,), "int8", 0.1)], T("y", (2,), "int8", 0.1), {},
     'op #0 "op" ADD: input shapes [2] and [3] do not broadcast'),
    ("LOGISTIC", [T("x", (2,), "int8", 0.1)], T("y", (2,), "int8", 1 / 256, 0), {},
     'op #0 "op" LOGISTIC: int8 LOGISTIC output zero point must be -128, got 0 (TFLite Micro refuses this '
     'quantization)'),
    ("TANH", [T("x", (2,), "int16", 1e-3)], T("y", (2,), "int16", 1e-3), {},
     'op #0 "op" TANH: int16 output scale 0.001 must be 2^-15 (TFLite Micro refuses this quantization)'),
    ("HARD_SWISH", [T("x", (2,), "int16", 1e-3)], T("y", (2,), "int16", 1e-3), {},
     'op #0 "op" HARD_SWISH: only float and 8-bit quantized tensors are supported (as in TFLite Micro), got '
     'int16[2] s=0.001 zp=0'),
    ("SOFTMAX", [T("x", (2,), "int8", 0.1)], T("y", (2,), "int8", 1 / 255, -128), {},
     'op #0 "op" SOFTMAX: int8 softmax output must have scale 1/256 and zero point -128, got int8[2] '
     's=0.00392157 zp=-128 (TFLite Micro refuses this quantization)'),
])
def test_refusals_name_the_op_and_the_reason(kind, ins, out, attrs, message):
    with pytest.raises((UnsupportedOpError, ModelFormatError)) as e:
        run_op(kind, ins, out, [np.zeros(t.shape) for t in ins], **attrs)
    assert str(e.value) == message


def test_per_axis_quantization_is_refused():
    a = Tensor("a", (2,), DType.INT8, QuantParams((0.1, 0.2), (0, 0), 0))
    with pytest.raises(UnsupportedOpError, match="per-axis quantization"):
        run_op("ADD", [a, T("b", (2,), "int8", 0.1)], T("y", (2,), "int8", 0.1), [[0, 0], [0, 0]])


# -- 3. TFLM on synthetic single-op models -----------------------------------------------------------

def _fb(name: str):
    importlib.import_module(f"tflite.{name}")
    return sys.modules[f"tflite.{name}"]


TFL_TYPES = {"float32": 0, "int32": 2, "int16": 7, "int8": 9}
TFL_OPS = dict(ADD=(0, 11, "AddOptions"), SUB=(41, 28, "SubOptions"), MUL=(18, 21, "MulOptions"),
               LOGISTIC=(14, 0, None), TANH=(28, 0, None), HARD_SWISH=(117, 0, None), RELU=(19, 0, None),
               RELU6=(21, 0, None), SOFTMAX=(25, 9, "SoftmaxOptions"),
               LEAKY_RELU=(98, 75, "LeakyReluOptions"))
TFL_ACT = dict(NONE=0, RELU=1, RELU_N1_TO_1=2, RELU6=3)


def _options(b: flatbuffers.Builder, kind: str, attrs: dict) -> int | None:
    table = TFL_OPS[kind][2]
    if table is None:
        return None
    m = _fb(table)
    getattr(m, table + "Start")(b)
    if kind in ("ADD", "SUB", "MUL"):
        getattr(m, table + "AddFusedActivationFunction")(b, TFL_ACT[attrs.get("activation", "NONE")])
    elif kind == "SOFTMAX":
        m.SoftmaxOptionsAddBeta(b, attrs.get("beta", 1.0))
    else:
        m.LeakyReluOptionsAddAlpha(b, attrs["alpha"])
    return getattr(m, table + "End")(b)


def build_tflite(tensors: list[Tensor], ops: list[tuple[str, list[int], int, dict]]) -> bytes:
    """A .tflite whose inputs are every tensor some op reads and whose outputs are all op outputs."""
    b = flatbuffers.Builder(4096)

    def vector(offsets, start):
        start(b, len(offsets))
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    fbt, fbq = _fb("Tensor"), _fb("QuantizationParameters")
    t_offs = []
    for t in tensors:
        name, shape = b.CreateString(t.name), b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int32))
        q = None
        if t.quant is not None:
            scale = b.CreateNumpyVector(np.asarray(t.quant.scale, dtype=np.float32))
            zp = b.CreateNumpyVector(np.asarray(t.quant.zero_point, dtype=np.int64))
            fbq.QuantizationParametersStart(b)
            fbq.QuantizationParametersAddScale(b, scale)
            fbq.QuantizationParametersAddZeroPoint(b, zp)
            q = fbq.QuantizationParametersEnd(b)
        fbt.TensorStart(b)
        fbt.TensorAddShape(b, shape)
        fbt.TensorAddType(b, TFL_TYPES[t.dtype.value])
        fbt.TensorAddBuffer(b, 0)
        fbt.TensorAddName(b, name)
        if q is not None:
            fbt.TensorAddQuantization(b, q)
        t_offs.append(fbt.TensorEnd(b))
    codes = sorted({TFL_OPS[k][0] for k, *_ in ops})
    fbc, fbo = _fb("OperatorCode"), _fb("Operator")
    c_offs = []
    for c in codes:
        fbc.OperatorCodeStart(b)
        fbc.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
        fbc.OperatorCodeAddBuiltinCode(b, c)
        fbc.OperatorCodeAddVersion(b, 1)
        c_offs.append(fbc.OperatorCodeEnd(b))
    o_offs = []
    for kind, ins, out, attrs in ops:
        opts = _options(b, kind, attrs)
        iv, ov = b.CreateNumpyVector(np.int32(ins)), b.CreateNumpyVector(np.int32([out]))
        fbo.OperatorStart(b)
        fbo.OperatorAddOpcodeIndex(b, codes.index(TFL_OPS[kind][0]))
        fbo.OperatorAddInputs(b, iv)
        fbo.OperatorAddOutputs(b, ov)
        if opts is not None:
            fbo.OperatorAddBuiltinOptionsType(b, TFL_OPS[kind][1])
            fbo.OperatorAddBuiltinOptions(b, opts)
        o_offs.append(fbo.OperatorEnd(b))
    fbs, fbm, fbb = _fb("SubGraph"), _fb("Model"), _fb("Buffer")
    tv, ov = vector(t_offs, fbs.SubGraphStartTensorsVector), vector(o_offs, fbs.SubGraphStartOperatorsVector)
    inputs = b.CreateNumpyVector(np.int32([i for _, ins, _, _ in ops for i in ins]))
    outputs = b.CreateNumpyVector(np.int32([o for _, _, o, _ in ops]))
    fbs.SubGraphStart(b)
    fbs.SubGraphAddTensors(b, tv)
    fbs.SubGraphAddInputs(b, inputs)
    fbs.SubGraphAddOutputs(b, outputs)
    fbs.SubGraphAddOperators(b, ov)
    sg = fbs.SubGraphEnd(b)
    fbb.BufferStart(b)
    empty = fbb.BufferEnd(b)
    sgv = vector([sg], fbm.ModelStartSubgraphsVector)
    cv = vector(c_offs, fbm.ModelStartOperatorCodesVector)
    bv = vector([empty], fbm.ModelStartBuffersVector)
    fbm.ModelStart(b)
    fbm.ModelAddVersion(b, 3)
    fbm.ModelAddOperatorCodes(b, cv)
    fbm.ModelAddSubgraphs(b, sgv)
    fbm.ModelAddBuffers(b, bv)
    b.Finish(fbm.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def check_against_tflm(tmp_path, cases: list[tuple], n_samples: int = 3, seed: int = 0) -> None:
    """cases: (tflite kind, input Tensors, output Tensor, attrs, [input arrays [n, *shape] or None]); None
    draws uniform values over the dtype range (normal for float). All cases go into one model."""
    rng = np.random.default_rng(seed)
    tensors, ops, feeds = [], [], []
    for kind, ins, out, attrs, arrays in cases:
        ids = []
        for t, arr in zip(ins, arrays or [None] * len(ins)):
            if arr is None:
                if t.dtype.is_float:
                    arr = rng.normal(0, 4, (n_samples, *t.shape))
                else:
                    lo, hi = t.dtype.limits()
                    arr = rng.integers(lo, hi + 1, (n_samples, *t.shape))
            ids.append(len(tensors))
            tensors.append(Tensor(f"t{len(tensors)}", t.shape, t.dtype, t.quant))
            feeds.append(np.broadcast_to(np.asarray(arr, dtype=t.dtype.np), (n_samples, *t.shape)).copy())
        tensors.append(Tensor(f"t{len(tensors)}", out.shape, out.dtype, out.quant))
        ops.append((kind, ids, len(tensors) - 1, attrs))
    path = tmp_path / "ops.tflite"
    path.write_bytes(build_tflite(tensors, ops))
    oracle = tflm_run(str(path), feeds, preserve_all=True)
    failures = []
    for kind, ids, out, attrs in ops:
        ir_kind, ir_attrs = {"RELU": ("CLIP", dict(min=0.0, max=None)),
                             "RELU6": ("CLIP", dict(min=0.0, max=6.0))}.get(kind, (kind, attrs))
        for s in range(n_samples):
            args = [oracle.tensors[i][s] for i in ids]
            got = run_op(ir_kind, [tensors[i] for i in ids], tensors[out], args, **ir_attrs)
            want = oracle.tensors[out][s].reshape(got.shape)
            bad = (np.abs(got - want) > 1e-5 * np.abs(want) + 1e-7) if got.dtype.kind == "f" else got != want
            if bad.any():
                desc = ", ".join(tensors[i].describe() for i in ids) + " -> " + tensors[out].describe()
                failures.append(f"{kind} {attrs} {desc}: sample {s}, {bad.sum()}/{bad.size} differ")
                break
    assert not failures, "\n".join(failures)


def every_value(dtype: str, shape: tuple) -> np.ndarray:
    """[1, *shape] holding every value of an 8/16-bit dtype once (shape must have that many elements)."""
    lo, hi = DType(dtype).limits()
    return np.arange(lo, hi + 1).reshape(1, *shape)


def test_int8_activations_sweep_all_inputs_against_tflm(tmp_path):
    cases = []
    allv = every_value("int8", (1, 256))
    for s, zp in [(0.0147876, -3), (0.1, 10), (0.002, -128), (0.5, 0), (0.03, 127)]:
        x = T("x", (1, 256), "int8", s, zp)
        cases += [("LOGISTIC", [x], T("y", (1, 256), "int8", 1 / 256, -128), {}, [allv]),
                  ("TANH", [x], T("y", (1, 256), "int8", 1 / 128, 0), {}, [allv]),
                  ("HARD_SWISH", [x], T("y", (1, 256), "int8", 0.02, -50), {}, [allv]),
                  ("RELU6", [x], T("y", (1, 256), "int8", s, zp), {}, [allv])]
    for s, zp, so, zo, alpha in [(0.0147, -13, 0.0087, -109, 0.2), (0.05, 3, 0.04, -20, -0.5),
                                 (0.01, 0, 0.01, 0, 1.5)]:
        x, y = T("x", (1, 256), "int8", s, zp), T("y", (1, 256), "int8", so, zo)
        cases += [("LEAKY_RELU", [x], y, dict(alpha=alpha), [allv]), ("RELU", [x], y, {}, [allv])]
    check_against_tflm(tmp_path, cases, n_samples=1)


def test_int16_activations_sweep_all_inputs_against_tflm(tmp_path):
    allv = every_value("int16", (256, 256))
    shape = (256, 256)
    y15 = T("y", shape, "int16", 2 ** -15)
    cases = []
    for s in [2 ** -12, 2 ** -11, 2 ** -10, 0.0003, 0.01, 3.1e-5]:      # power-of-two and general scales
        cases += [("LOGISTIC", [T("x", shape, "int16", s)], y15, {}, [allv]),
                  ("TANH", [T("x", shape, "int16", s)], y15, {}, [allv])]
    for s, so, alpha in [(0.0017488, 0.0017488, 0.3), (0.001, 0.0007, -0.2), (0.002, 0.003, 0.01)]:
        x, y = T("x", shape, "int16", s), T("y", shape, "int16", so)
        cases += [("LEAKY_RELU", [x], y, dict(alpha=alpha), [allv]), ("RELU", [x], y, {}, [allv])]
    cases.append(("RELU6", [T("x", shape, "int16", 0.001)], T("y", shape, "int16", 0.001), {}, [allv]))
    check_against_tflm(tmp_path, cases, n_samples=1)


def test_softmax_and_float_activations_against_tflm(tmp_path):
    cases = []
    for s, zp, beta in [(0.17, 24, 1.0), (0.07, 2, 1.0), (0.01, -128, 1.0), (0.3, 127, 0.5), (0.05, 0, 2.0)]:
        x = T("x", (16, 12), "int8", s, zp)
        cases += [("SOFTMAX", [x], T("y", (16, 12), "int8", 1 / 256, -128), dict(beta=beta), None),
                  ("SOFTMAX", [x], T("y", (16, 12), "int16", 1 / 65536, -32768), dict(beta=beta), None)]
    rng = np.random.default_rng(7)
    for s, beta in [(0.0017, 1.0), (0.0005, 1.0), (0.01, 0.5), (3e-5, 2.0)]:
        x, y = T("x", (16, 10), "int16", s), T("y", (16, 10), "int16", 1 / 32768)
        small = rng.integers(-512, 512, (3, 16, 10))      # differences inside the exp table's range
        cases += [("SOFTMAX", [x], y, dict(beta=beta), None), ("SOFTMAX", [x], y, dict(beta=beta), [small])]
    xf, yf = T("x", (8, 50), "float32"), T("y", (8, 50), "float32")
    cases += [(k, [xf], yf, {}, None) for k in ("LOGISTIC", "TANH", "SOFTMAX", "HARD_SWISH", "RELU", "RELU6")]
    cases.append(("LEAKY_RELU", [xf], yf, dict(alpha=0.1), None))
    check_against_tflm(tmp_path, cases)


BINARY_SHAPES = [((1, 4, 5, 8), (1, 4, 5, 8)), ((1, 4, 5, 8), (8,)), ((1, 1, 5, 1), (1, 4, 1, 8)),
                 ((4, 1), (1, 6))]
INT8_PARAMS = [(0.0148, -62, 0.0085, -12, 0.0211, -5), (0.039, -128, 0.104, 4, 0.05, -128),
               (0.5, 127, 0.001, -128, 0.2, 10)]
INT16_SCALES = [(0.000585, 0.000807, 0.001024), (0.00097, 8.7e-6, 0.000594), (0.001, 0.002, 0.5)]


@pytest.mark.parametrize("kind", ["ADD", "SUB", "MUL"])
def test_binary_ops_against_tflm(tmp_path, kind):
    cases = []
    for i, (sa, sb) in enumerate(BINARY_SHAPES):
        so = np.broadcast_shapes(sa, sb)
        attrs = dict(activation=["NONE", "RELU", "RELU6", "RELU_N1_TO_1"][i])
        for s1, z1, s2, z2, s3, z3 in INT8_PARAMS:
            ins = [T("a", sa, "int8", s1, z1), T("b", sb, "int8", s2, z2)]
            cases.append((kind, ins, T("y", so, "int8", s3, z3), attrs, None))
        for s1, s2, s3 in INT16_SCALES:
            ins = [T("a", sa, "int16", s1), T("b", sb, "int16", s2)]
            cases.append((kind, ins, T("y", so, "int16", s3), attrs, None))
        for dtype in ("float32", "int32"):      # int32: plain integers, TFLM's activation handling
            cases.append((kind, [T("a", sa, dtype), T("b", sb, dtype)], T("y", so, dtype), attrs, None))
    check_against_tflm(tmp_path, cases)


# -- 4. TFLM per layer on the real models --------------------------------------------------------------

N_SAMPLES = 20

LAYER_MODELS = {
    "extra/activations_fc_int8.tflite": {"LOGISTIC", "TANH", "SUB", "HARD_SWISH"},
    "extra/add_mul_concat_int8.tflite": {"ADD", "MUL"},
    "extra/transpose_conv_upsample_int8.tflite": {"LEAKY_RELU"},
    "extra/pad_conv_mean_fc_int8.tflite": {"SOFTMAX"},
    "mlperf_tiny/pretrainedResnet_quant.tflite": {"ADD", "SOFTMAX"},
    "mlperf_tiny/pretrainedResnet.tflite": {"ADD", "SOFTMAX"},
    "mlperf_tiny/kws_ref_model.tflite": {"SOFTMAX"},
    "mlperf_tiny/vww_96_int8.tflite": {"SOFTMAX"},
    "mlperf_tiny/vww_96_float.tflite": {"SOFTMAX"},
    "tflm/micro_speech_quantized.tflite": {"SOFTMAX"},
    "tflm/simple_add_model.tflite": {"ADD"},
    "tflm/seanet_int16/add0.tflite": {"ADD"},
    "tflm/seanet_int16/sub0.tflite": {"SUB"},
    "tflm/seanet_int16/leaky_relu0.tflite": {"LEAKY_RELU"},
    "digits/digits_cnn_int8_tfliteconv.tflite": {"SOFTMAX"},
    "digits/digits_mlp_int8_tfliteconv.tflite": {"SOFTMAX"},
    "digits/digits_cnn_float.tflite": {"SOFTMAX"},
    "digits/digits_mlp_float.tflite": {"SOFTMAX"},
}
# Models the importer refuses for other ops (LSTM, SVDF, Signal custom ops): their ops of interest are
# read here straight from the flatbuffer.
RAW_LAYER_MODELS = {
    "tflm/keyword_scrambled.tflite": {"SOFTMAX"},            # int8 -> int16
    "tflm/dtln_noise_suppression.tflite": {"LOGISTIC"},
    "tflm/trained_lstm_int8.tflite": {"SOFTMAX"},
    "tflm/trained_lstm.tflite": {"SOFTMAX"},
    "tflm/audio_preprocessor_int8.tflite": {"ADD", "MUL"},   # plain int32
    "tflm/audio_preprocessor_float.tflite": {"MUL"},
}


def _raw_graph(path) -> Graph:
    """The ops of MY_KINDS of subgraph 0 as an IR graph (tensor names t<index>, no constants' data)."""
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    ops_by_code = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k.lower() for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
    acts = {v: k for k, v in TFL_ACT.items()}
    tensors, ops = {}, []

    def tensor(i: int) -> str:
        t, name = sg.Tensors(i), f"t{i}"
        q = t.Quantization()
        quant = (QuantParams.per_tensor(float(q.Scale(0)), int(q.ZeroPoint(0)))
                 if q is not None and q.ScaleLength() == 1 else None)
        tensors[name] = Tensor(name, tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (),
                               DType(types[t.Type()]), quant)
        return name

    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = ops_by_code[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind not in MY_KINDS:
            continue
        attrs = {}
        if TFL_OPS[kind][2] is not None:
            opts = getattr(tflite, TFL_OPS[kind][2])()
            opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            attrs = (dict(activation=acts[opts.FusedActivationFunction()]) if kind in ("ADD", "SUB", "MUL")
                     else dict(beta=opts.Beta()) if kind == "SOFTMAX" else dict(alpha=opts.Alpha()))
        ins = tuple(tensor(int(i)) for i in op.InputsAsNumpy())
        ops.append(Op(kind, ins, (tensor(int(op.Outputs(0))),), attrs, name=f"op{k}", index=k))
    inputs = tuple(tensor(int(i)) for i in sg.InputsAsNumpy())
    return Graph(path.stem, tensors, tuple(ops), inputs, (),
                 metadata=dict(tflite_tensor_index={n: int(n[1:]) for n in tensors}))


def _model_inputs(graph: Graph) -> list[np.ndarray]:
    """N_SAMPLES seeded samples per input plus 4 uniform full-range ones that saturate activations."""
    rng = np.random.default_rng(4321)
    out = []
    for i, t in enumerate(graph.input_tensors()):
        x = seeded_inputs(t, N_SAMPLES, seed=100 + i)
        if t.dtype.is_int:
            lo, hi = t.dtype.limits()
            extreme = rng.integers(lo, hi + 1, (4, *t.shape)).astype(t.dtype.np)
        else:
            extreme = (rng.normal(0, 8, (4, *t.shape))).astype(t.dtype.np)
        out.append(np.concatenate([x, extreme]))
    return out


def _check_layers(path, graph: Graph, kinds: set[str]) -> None:
    index = graph.metadata["tflite_tensor_index"]
    oracle = tflm_run(str(path), _model_inputs(graph), preserve_all=True)
    mine = [op for op in graph.ops if op.kind in MY_KINDS]
    assert {op.kind for op in mine} >= kinds, (sorted(kinds), [op.kind for op in graph.ops])
    for op in mine:
        for s in range(len(oracle.outputs[0])):
            args = [oracle.tensors[index[n]][s].reshape(graph.tensors[n].shape) for n in op.inputs]
            got = KERNELS[op.kind](op, graph, args)[0]
            want = oracle.tensors[index[op.outputs[0]]][s].reshape(got.shape)
            where = f"sample {s}: {op.where()} {op.kind} ({graph.tensors[op.inputs[0]].describe()})"
            if got.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()),
                                           err_msg=where)
            else:
                bad = np.count_nonzero(got != want)
                assert bad == 0, f"{where}: {bad}/{got.size} elements differ"


@pytest.mark.parametrize("rel", sorted(LAYER_MODELS), ids=lambda r: r.split("/")[-1][:-7])
def test_layers_match_tflm_on_real_models(rel):
    path = require_model(rel)
    _check_layers(path, importers.load(path), LAYER_MODELS[rel])


@pytest.mark.parametrize("rel", sorted(RAW_LAYER_MODELS), ids=lambda r: r.split("/")[-1][:-7])
def test_layers_match_tflm_on_models_the_importer_refuses(rel):
    path = require_model(rel)
    _check_layers(path, _raw_graph(path), RAW_LAYER_MODELS[rel])


@pytest.mark.parametrize("name", ["add0", "sub0", "leaky_relu0"])
def test_seanet_golden_csvs(name):
    """TFLM's own golden outputs for the int16 SEANet ADD / SUB (a [64] vector broadcast) / LEAKY_RELU."""
    path = require_model(f"tflm/seanet_int16/{name}.tflite")
    graph = importers.load(path)
    (op,) = graph.ops
    args = []
    for k, n in enumerate(op.inputs):
        t = graph.tensors[n]
        csv = path.parent / f"{name}_input{k}_int16.csv"
        args.append(t.data if t.is_const else
                    np.loadtxt(csv, delimiter=",", dtype=np.int64).astype(np.int16).reshape(t.shape))
    got = KERNELS[op.kind](op, graph, args)[0]
    want = np.loadtxt(path.parent / f"{name}_golden_int16.csv", delimiter=",", dtype=np.int64)
    np.testing.assert_array_equal(got.reshape(-1), want)
