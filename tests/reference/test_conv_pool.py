"""Reference kernels for the MAC ops and pooling: tiny graphs against straightforward loop implementations
written here, ONNX QLinear*/pool cases against the onnx reference implementation, then per-layer exactness
against the TFLM interpreter on real models (each op fed the oracle's own input tensors) and TFLM's golden
CSVs for the SEANet int16 conv layers."""

import time

import numpy as np
import pytest

from microgen import importers, reference
from microgen.errors import UnsupportedOpError
from microgen.fixedpoint import (
    activation_range_quantized,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multiplier,
    wrap_int32,
)
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.ops import with_defaults
from microgen.reference.conv import _int_matmul
from microgen.reference.registry import KERNELS
from microgen.testing.corpus import require_model, seeded_inputs
from microgen.testing.oracles import tflm_run

N_SAMPLES = 20
F32 = np.float32
MY_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
            "AVERAGE_POOL", "MAX_POOL", "MEAN")


# -- helpers ---------------------------------------------------------------------------------------
def pt(scale, zp=0):
    return QuantParams.per_tensor(scale, zp)


def pc(scales, axis):
    return QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)


def run_op(kind, acts, consts, out, attrs=None):
    """One-op graph. acts / consts: lists of (array, quant or None), in op input order: activations
    first, then constants (None for an omitted optional input). out: (shape, dtype, quant)."""
    tensors, names, feeds = {}, [], {}
    for i, (x, q) in enumerate(acts):
        x = np.asarray(x)
        tensors[f"a{i}"] = Tensor(f"a{i}", x.shape, DType.from_numpy(x.dtype), q)
        names.append(f"a{i}")
        feeds[f"a{i}"] = x
    for i, c in enumerate(consts):
        if c is None:
            names.append("")
            continue
        x, q = np.asarray(c[0]), c[1]
        tensors[f"c{i}"] = Tensor(f"c{i}", x.shape, DType.from_numpy(x.dtype), q, x)
        names.append(f"c{i}")
    shape, dtype, q = out
    tensors["y"] = Tensor("y", tuple(shape), DType(dtype), q)
    op = Op(kind, tuple(names), ("y",), with_defaults(kind, dict(attrs or {})), name="t", index=0)
    graph = verify(Graph("t", tensors, (op,), tuple(feeds), ("y",)))
    return reference.run(graph, feeds)["y"]


def rand_int(rng, shape, dtype, lo=None, hi=None):
    info = np.iinfo(dtype)
    return rng.integers(info.min if lo is None else lo, (info.max if hi is None else hi) + 1,
                        size=shape).astype(dtype)


def multipliers(in_s, w_scales, out_s):
    """TFLM's per-channel (m, shift), computed here with Python floats."""
    return [quantize_multiplier(float(F32(in_s)) * float(F32(w)) / float(F32(out_s))) for w in w_scales]


def requant(acc, mults, zp, lo, hi, wide=False):
    """Per-channel (last axis) TFLM requantization of exact integer accumulators."""
    m = np.array([p[0] for p in mults])
    s = np.array([p[1] for p in mults])
    if wide:
        y = multiply_by_quantized_multiplier_int64(acc, m, s)
    else:
        y = multiply_by_quantized_multiplier(wrap_int32(acc), m, s)
    return np.clip(y + zp, lo, hi)


def loop_conv(xo, wo, stride, dil, top_left, out_hw, groups=1):
    """Straight TFLM-order loops: acc[n, oy, ox, co] = sum over in-image taps of x . w."""
    n_, h, w_, _ = xo.shape
    cout, kh, kw, cg = wo.shape
    og = cout // groups
    acc = np.zeros((n_,) + tuple(out_hw) + (cout,), dtype=np.result_type(xo, wo))
    for n in range(n_):
        for oy in range(out_hw[0]):
            for ox in range(out_hw[1]):
                for co in range(cout):
                    g = co // og
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - top_left[0] + ky * dil[0]
                            ix = ox * stride[1] - top_left[1] + kx * dil[1]
                            if 0 <= iy < h and 0 <= ix < w_:
                                xs = xo[n, iy, ix, g * cg:(g + 1) * cg]
                                acc[n, oy, ox, co] += np.dot(xs, wo[co, ky, kx])
    return acc


def loop_transpose_conv(xo, wo, stride, top_left, out_hw):
    """TFLM's scatter loop."""
    n_, h, w_, _ = xo.shape
    cout, kh, kw, _ = wo.shape
    acc = np.zeros((n_,) + tuple(out_hw) + (cout,), dtype=np.result_type(xo, wo))
    for n in range(n_):
        for iy in range(h):
            for ix in range(w_):
                for ky in range(kh):
                    for kx in range(kw):
                        oy, ox = iy * stride[0] - top_left[0] + ky, ix * stride[1] - top_left[1] + kx
                        if 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]:
                            acc[n, oy, ox] += wo[:, ky, kx, :] @ xo[n, iy, ix]
    return acc


def test_kernels_registered():
    for kind in MY_KINDS:
        assert kind in KERNELS, kind


# -- CONV_2D / DEPTHWISE / TRANSPOSE_CONV ----------------------------------------------------------
@pytest.mark.parametrize("groups,stride,dil,pads,act,per_channel", [
    (1, (1, 1), (1, 1), (1, 1, 1, 1), "NONE", True),
    (1, (2, 1), (1, 2), (0, 2, 1, 0), "RELU6", True),
    (2, (2, 2), (2, 1), (2, 1, 1, 2), "RELU", False),
    (4, (1, 2), (1, 1), (0, 0, 0, 0), "RELU_N1_TO_1", True),
])
def test_conv2d_int8_matches_loops(groups, stride, dil, pads, act, per_channel):
    rng = np.random.default_rng(groups * 7 + stride[0])
    x = rand_int(rng, (2, 7, 6, 4), np.int8)
    cout, cg = 6 if groups != 4 else 8, 4 // groups
    w = rand_int(rng, (cout, 3, 2, cg), np.int8, -127, 127)
    bias = rng.integers(-3000, 3000, size=cout).astype(np.int32)
    w_scales = rng.uniform(0.002, 0.02, size=cout) if per_channel else [0.01]
    wq = pc(w_scales, 0) if per_channel else pt(w_scales[0])
    in_q, out_q = pt(0.05, -3), pt(0.11, 7)
    oh = (7 + pads[0] + pads[2] - (2 * dil[0] + 1)) // stride[0] + 1
    ow = (6 + pads[1] + pads[3] - (dil[1] + 1)) // stride[1] + 1
    got = run_op("CONV_2D", [(x, in_q)], [(w, wq), (bias, None)], ((2, oh, ow, cout), "int8", out_q),
                 dict(strides=stride, dilations=dil, pads=pads, activation=act))
    acc = loop_conv(x.astype(np.int64) + 3, w.astype(np.int64), stride, dil, pads[:2], (oh, ow), groups)
    acc += bias
    lo, hi = activation_range_quantized(act, 0.11, 7, -128, 127)
    want = requant(acc, multipliers(0.05, np.broadcast_to(w_scales, cout), 0.11), 7, lo, hi)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bias_dtype,wide", [(np.int64, True), (np.int32, False), (None, True)])
def test_conv2d_16x8_accumulator_follows_bias_type(bias_dtype, wide):
    """TFLM (measured): int64 or no bias -> int64 accumulator and the 16-bit-multiplier requantization;
    int32 bias -> int32 accumulator and the Q31 one. The two differ on these values."""
    rng = np.random.default_rng(3)
    x = rand_int(rng, (1, 5, 5, 3), np.int16)
    w = rand_int(rng, (4, 3, 3, 3), np.int8, -127, 127)
    bias = None if bias_dtype is None else rng.integers(-10 ** 5, 10 ** 5, size=4).astype(bias_dtype)
    w_scales = [0.0031, 0.0017, 0.0049, 0.0023]
    consts = [(w, pc(w_scales, 0))] + ([] if bias is None else [(bias, None)])
    got = run_op("CONV_2D", [(x, pt(0.0007))], consts, ((1, 5, 5, 4), "int16", pt(0.0011)),
                 dict(pads=(1, 1, 1, 1)))
    acc = loop_conv(x.astype(np.int64), w.astype(np.int64), (1, 1), (1, 1), (1, 1), (5, 5))
    acc = acc + (0 if bias is None else bias)
    mults = multipliers(0.0007, w_scales, 0.0011)
    want = requant(acc, mults, 0, -32768, 32767, wide=wide)
    np.testing.assert_array_equal(got, want)
    assert np.any(want != requant(acc, mults, 0, -32768, 32767, wide=not wide))


@pytest.mark.parametrize("dtype,mult", [(np.int8, 1), (np.int8, 2), (np.int16, 3)])
def test_depthwise_matches_loops(dtype, mult):
    rng = np.random.default_rng(mult)
    x = rand_int(rng, (1, 6, 5, 3), dtype)
    cout = 3 * mult
    w = rand_int(rng, (1, 3, 3, cout), np.int8, -127, 127)
    bias = rng.integers(-500, 500, size=cout).astype(np.int32 if dtype == np.int8 else np.int64)
    w_scales = rng.uniform(0.001, 0.01, size=cout)
    zp_in, zp_out = (5, -9) if dtype == np.int8 else (0, 0)
    got = run_op("DEPTHWISE_CONV_2D", [(x, pt(0.02, zp_in))], [(w, pc(w_scales, 3)), (bias, None)],
                 ((1, 3, 3, cout), np.dtype(dtype).name, pt(0.03, zp_out)),
                 dict(strides=(2, 2), pads=(1, 1, 0, 1), depth_multiplier=mult, activation="RELU"))
    # Depthwise == grouped conv with one input channel per group.
    w_grouped = w[0].transpose(2, 0, 1)[..., None].astype(np.int64)
    acc = loop_conv(x.astype(np.int64) - zp_in, w_grouped, (2, 2), (1, 1), (1, 1), (3, 3), groups=3) + bias
    lo, hi = activation_range_quantized("RELU", 0.03, zp_out, *DType.from_numpy(dtype).limits())
    want = requant(acc, multipliers(0.02, w_scales, 0.03), zp_out, lo, hi, wide=dtype == np.int16)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_transpose_conv_matches_scatter_loop(dtype):
    rng = np.random.default_rng(11)
    x = rand_int(rng, (1, 3, 4, 5), dtype)
    w = rand_int(rng, (3, 3, 4, 5), np.int8, -127, 127)
    bias = rng.integers(-900, 900, size=3).astype(np.int32 if dtype == np.int8 else np.int64)
    w_scales = [0.004, 0.007, 0.002]
    zp_in, zp_out = (-6, 4) if dtype == np.int8 else (0, 0)
    # Output 7x9 from a full 7x10 result (pad left 1), plus one row nobody reaches (bias only).
    out_shape = (1, 8, 9, 3)
    got = run_op("TRANSPOSE_CONV", [(x, pt(0.03, zp_in))], [(w, pc(w_scales, 0)), (bias, None)],
                 (out_shape, np.dtype(dtype).name, pt(0.05, zp_out)), dict(strides=(2, 2), pads=(0, 1, 0, 0)))
    acc = loop_transpose_conv(x.astype(np.int64) - zp_in, w.astype(np.int64), (2, 2), (0, 1), (8, 9)) + bias
    limits = DType.from_numpy(dtype).limits()
    want = requant(acc, multipliers(0.03, w_scales, 0.05), zp_out, *limits, wide=dtype == np.int16)
    np.testing.assert_array_equal(got, want)


def test_float_conv_and_transpose_conv_match_loops():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 6, 6, 4)).astype(F32)
    w = rng.normal(size=(6, 3, 3, 2)).astype(F32)
    b = rng.normal(size=6).astype(F32)
    got = run_op("CONV_2D", [(x, None)], [(w, None), (b, None)], ((1, 3, 3, 6), "float32", None),
                 dict(strides=(2, 2), pads=(1, 1, 0, 0), activation="RELU6"))
    want = loop_conv(x.astype(np.float64), w.astype(np.float64), (2, 2), (1, 1), (1, 1), (3, 3), groups=2)
    want = np.clip(want + b, 0, 6)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    wt = rng.normal(size=(2, 2, 3, 4)).astype(F32)
    got = run_op("TRANSPOSE_CONV", [(x, None)], [(wt, None)], ((1, 12, 13, 2), "float32", None),
                 dict(strides=(2, 2)))
    want = loop_transpose_conv(x.astype(np.float64), wt.astype(np.float64), (2, 2), (0, 0), (12, 13))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_plain_integer_conv_is_exact_past_float64():
    """No quant params: int32 accumulation (wrapped). Values this large overflow float64's 53 bits, so the
    kernel must take its int64 path."""
    rng = np.random.default_rng(9)
    x = rng.integers(-2 ** 30, 2 ** 30, size=(1, 4, 4, 3)).astype(np.int32)
    w = rng.integers(-2 ** 30, 2 ** 30, size=(2, 2, 2, 3)).astype(np.int32)
    got = run_op("CONV_2D", [(x, None)], [(w, None)], ((1, 3, 3, 2), "int32", None))
    want = wrap_int32(loop_conv(x.astype(np.int64), w.astype(np.int64), (1, 1), (1, 1), (0, 0), (3, 3)))
    np.testing.assert_array_equal(got, want)
    a = np.array([[2.0 ** 40, 3.0]])
    b = np.array([[2.0 ** 20 + 1], [5.0]])
    assert _int_matmul(a, b)[0, 0] == 2 ** 60 + 2 ** 40 + 15


# -- FULLY_CONNECTED / BATCH_MATMUL ----------------------------------------------------------------
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_int8_flattens_rows(per_channel):
    """Per-tensor weights: TFLM rounds the scale product to float32 first; per-channel: double."""
    rng = np.random.default_rng(21 + per_channel)
    x = rand_int(rng, (2, 3, 8), np.int8)
    w = rand_int(rng, (5, 8), np.int8, -127, 127)
    bias = rng.integers(-2000, 2000, size=5).astype(np.int32)
    w_scales = rng.uniform(0.001, 0.01, size=5) if per_channel else [0.0063]
    wq = pc(w_scales, 0) if per_channel else pt(w_scales[0])
    got = run_op("FULLY_CONNECTED", [(x, pt(0.047, 12))], [(w, wq), (bias, None)],
                 ((2, 3, 5), "int8", pt(0.09, -20)), dict(activation="RELU"))
    acc = (x.reshape(-1, 8).astype(np.int64) - 12) @ w.T.astype(np.int64) + bias
    mults = multipliers(0.047, np.broadcast_to(w_scales, 5), 0.09)
    lo, hi = activation_range_quantized("RELU", 0.09, -20, -128, 127)
    np.testing.assert_array_equal(got, requant(acc, mults, -20, lo, hi).reshape(2, 3, 5))


IN_S, W_S, OUT_S = 0.0012677324702963233, 0.001925695571117103, 0.2576638460159302


def test_per_tensor_multiplier_uses_double_product():
    """Some TFLM sources take the per-tensor FC / BATCH_MATMUL scale product in float32; with these scales
    and accumulators that gives 17, 60, 96. The TFLM interpreter gives 16, 59, 95 (measured with one-op
    models), i.e. the all-double product per-channel weights get."""
    bias = np.array([1741494, 6279935, 10079560], np.int32)
    x, w = np.zeros((1, 1), np.int8), np.ones((3, 1), np.int8)
    for wq in (pt(W_S), pc([W_S] * 3, 0)):
        got = run_op("FULLY_CONNECTED", [(x, pt(IN_S))], [(w, wq), (bias, None)], ((1, 3), "int8", pt(OUT_S)))
        np.testing.assert_array_equal(got, [[16, 59, 95]])
    a = np.array([127] * 108 + [1], np.int8).reshape(1, 1, 109)
    b = np.array([127] * 107 + [123, 70], np.int8).reshape(1, 109, 1)  # a @ b = 1741494
    got = run_op("BATCH_MATMUL", [(a, pt(IN_S)), (b, pt(W_S))], [], ((1, 1, 1), "int8", pt(OUT_S)))
    assert got.item() == 16


@pytest.mark.parametrize("bias_dtype,wide", [(np.int64, True), (np.int32, False), (None, True)])
def test_fully_connected_16x8_and_float(bias_dtype, wide):
    """16x8 FC: the accumulator width follows the bias type as for CONV_2D (measured on TFLM)."""
    rng = np.random.default_rng(4)
    x = rand_int(rng, (30, 16), np.int16)
    w = rand_int(rng, (4, 16), np.int8, -127, 127)
    bias = None if bias_dtype is None else rng.integers(-10 ** 6, 10 ** 6, size=4).astype(bias_dtype)
    w_scales = [0.002, 0.005, 0.001, 0.003]
    consts = [(w, pc(w_scales, 0))] + ([] if bias is None else [(bias, None)])
    got = run_op("FULLY_CONNECTED", [(x, pt(0.0004))], consts, ((30, 4), "int16", pt(0.00021)))
    acc = x.astype(np.int64) @ w.T.astype(np.int64) + (0 if bias is None else bias)
    mults = multipliers(0.0004, w_scales, 0.00021)
    want = requant(acc, mults, 0, -32768, 32767, wide=wide)
    np.testing.assert_array_equal(got, want)
    assert np.any(want != requant(acc, mults, 0, -32768, 32767, wide=not wide))
    xf, wf = rng.normal(size=(2, 16)).astype(F32), rng.normal(size=(4, 16)).astype(F32)
    got = run_op("FULLY_CONNECTED", [(xf, None)], [(wf, None), None], ((2, 4), "float32", None))
    np.testing.assert_allclose(got, xf.astype(np.float64) @ wf.T.astype(np.float64), rtol=1e-6)


def test_fully_connected_bad_feature_count():
    with pytest.raises(UnsupportedOpError, match=r'op #0 "t" FULLY_CONNECTED: input float32\[1x10\] does not '
                                                 r'split into rows of 4 features'):
        run_op("FULLY_CONNECTED", [(np.zeros((1, 10), F32), None)], [(np.zeros((3, 4), F32), None)],
               ((2, 3), "float32", None))


@pytest.mark.parametrize("a_shape,b_shape", [((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))])
def test_batch_matmul_float_broadcasting(a_shape, b_shape):
    rng = np.random.default_rng(len(a_shape))
    a, b = rng.normal(size=a_shape).astype(F32), rng.normal(size=b_shape).astype(F32)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    got = run_op("BATCH_MATMUL", [(a, None), (b, None)], [], (want.shape, "float32", None))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_batch_matmul_quantized_tflm(dtype):
    rng = np.random.default_rng(2)
    a, b = rand_int(rng, (2, 3, 6), dtype), rand_int(rng, (2, 6, 4), dtype)
    zps = (3, -5, 1) if dtype == np.int8 else (0, 0, 0)
    got = run_op("BATCH_MATMUL", [(a, pt(0.013, zps[0])), (b, pt(0.021, zps[1]))], [],
                 ((2, 3, 4), np.dtype(dtype).name, pt(0.2 if dtype == np.int8 else 3.0, zps[2])))
    acc = np.matmul(a.astype(np.int64) - zps[0], b.astype(np.int64) - zps[1])
    out_s = 0.2 if dtype == np.int8 else 3.0
    mults = multipliers(0.013, [0.021], out_s) * 4
    limits = DType.from_numpy(dtype).limits()
    np.testing.assert_array_equal(got, requant(acc, mults, zps[2], *limits, wide=dtype == np.int16))


def test_unknown_rounding_is_reported():
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(UnsupportedOpError,
                       match=r"FULLY_CONNECTED: unknown rounding 'banker' \(expected 'tflm' or 'onnx'\)"):
        run_op("FULLY_CONNECTED", [(x, pt(0.1))], [(np.ones((2, 4), np.int8), pt(0.1))],
               ((1, 2), "int8", pt(0.1)), dict(rounding="banker"))


# -- pooling and MEAN ------------------------------------------------------------------------------
def test_average_pool_int8_rounds_half_away_from_zero():
    # Windows of 2: sums 5 and -5 -> 2.5 -> 3 and -2.5 -> -3; 3 and -3 -> 1.5 -> 2, -2; padded right
    # column counts 1 cell only.
    x = np.array([[2, 3, -2, -3, 1], [1, 0, -1, 0, 2]], np.int8).reshape(1, 2, 5, 1)
    got = run_op("AVERAGE_POOL", [(x, pt(0.1, 0))], [], ((1, 1, 3, 1), "int8", pt(0.1, 0)),
                 dict(kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 1)))
    np.testing.assert_array_equal(got.ravel(), [2, -2, 2])  # 6/4=1.5->2, -6/4=-1.5->-2, 3/2=1.5->2
    y = np.array([5, -5, 3, -3, 7, 1], np.int8).reshape(1, 1, 6, 1)
    pairs = dict(kernel=(1, 2), strides=(1, 2))
    got = run_op("AVERAGE_POOL", [(y, None)], [], ((1, 1, 3, 1), "int8", None), pairs)
    np.testing.assert_array_equal(got.ravel(), [0, 0, 4])
    z = np.array([3, 2, -3, -2], np.int8).reshape(1, 1, 4, 1)
    got = run_op("AVERAGE_POOL", [(z, None)], [], ((1, 1, 2, 1), "int8", None), pairs)
    np.testing.assert_array_equal(got.ravel(), [3, -3])  # 2.5 -> 3, -2.5 -> -3


def loop_pool(x, kernel, strides, dil, pads, out_sp, reduce_, fill=None):
    """Generic N-D loop pool over in-image cells (or all cells, padded with `fill`)."""
    nd = len(kernel)
    out = np.zeros((x.shape[0],) + tuple(out_sp) + (x.shape[-1],))
    for pos in np.ndindex(*out_sp):
        cells = []
        for tap in np.ndindex(*kernel):
            idx = [pos[i] * strides[i] - pads[i] + tap[i] * dil[i] for i in range(nd)]
            if all(0 <= idx[i] < x.shape[1 + i] for i in range(nd)):
                cells.append(x[(slice(None),) + tuple(idx)].astype(np.float64))
            elif fill is not None:
                cells.append(np.full((x.shape[0], x.shape[-1]), fill, np.float64))
        out[(slice(None),) + pos] = reduce_(np.stack(cells))
    return out


def tflm_int_avg(cells):
    s, n = cells.sum(0), len(cells)
    return np.sign(s) * ((np.abs(s) + n // 2) // n)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_pools_nd_match_loops(nd):
    rng = np.random.default_rng(nd)
    spatial = (7, 6, 5)[:nd]
    kernel, strides, dil = (3, 2, 2)[:nd], (2, 1, 2)[:nd], (1, 2, 1)[:nd]
    pads = (1, 0, 1)[:nd] + (1, 1, 0)[:nd]
    out_sp = tuple((spatial[i] + pads[i] + pads[nd + i] - (kernel[i] - 1) * dil[i] - 1) // strides[i] + 1
                   for i in range(nd))
    x = rand_int(rng, (2,) + spatial + (3,), np.int8)
    q = pt(0.05, -4)
    attrs = dict(kernel=kernel, strides=strides, dilations=dil, pads=pads)
    got = run_op("MAX_POOL", [(x, q)], [], ((2,) + out_sp + (3,), "int8", q), attrs)
    np.testing.assert_array_equal(got, loop_pool(x, kernel, strides, dil, pads, out_sp, lambda c: c.max(0)))
    got = run_op("AVERAGE_POOL", [(x, q)], [], ((2,) + out_sp + (3,), "int8", q), attrs)
    np.testing.assert_array_equal(got, loop_pool(x, kernel, strides, dil, pads, out_sp, tflm_int_avg))
    # count_include_pad: padded cells hold the zero point (real 0) and count.
    got = run_op("AVERAGE_POOL", [(x, q)], [], ((2,) + out_sp + (3,), "int8", q),
                 dict(attrs, count_include_pad=True))
    want = loop_pool(x, kernel, strides, dil, pads, out_sp, tflm_int_avg, fill=-4)
    np.testing.assert_array_equal(got, want)
    xf = rng.normal(size=x.shape).astype(F32)
    got = run_op("AVERAGE_POOL", [(xf, None)], [], ((2,) + out_sp + (3,), "float32", None), attrs)
    np.testing.assert_allclose(got, loop_pool(xf, kernel, strides, dil, pads, out_sp, lambda c: c.mean(0)),
                               rtol=1e-6)


def test_pool_fused_activation_and_param_mismatch():
    x = np.array([-128, -100, 0, 50, 127, 127], np.int8).reshape(1, 1, 6, 1)
    q = pt(0.05, -28)  # RELU6 -> [-28, -28 + 120]
    got = run_op("MAX_POOL", [(x, q)], [], ((1, 1, 3, 1), "int8", q),
                 dict(kernel=(1, 2), strides=(1, 2), activation="RELU6"))
    np.testing.assert_array_equal(got.ravel(), [-28, 50, 92])
    msg = (r'op #0 "t" AVERAGE_POOL: input and output quantization differ '
           r'\(int8\[1x1x6x1\] s=0.05 zp=-28 -> int8\[1x1x3x1\] s=0.05 zp=0\)')
    with pytest.raises(UnsupportedOpError, match=msg):
        run_op("AVERAGE_POOL", [(x, q)], [], ((1, 1, 3, 1), "int8", pt(0.05, 0)),
               dict(kernel=(1, 2), strides=(1, 2)))


def test_mean_equal_params_still_requantizes():
    """Equal input/output params take the requantizing path too (values measured on the TFLM interpreter;
    a truncating sum / count would give 3 for mean(3, 4))."""
    x = np.array([[-3, -4], [3, 4], [-128, -127], [1, 1]], np.int8).reshape(1, 4, 2, 1)
    q = pt(0.02, -5)
    got = run_op("MEAN", [(x, q)], [], ((1, 4, 1, 1), "int8", q), dict(axes=(-2,), keepdims=True))
    np.testing.assert_array_equal(got.ravel(), [-3, 4, -127, 1])
    plain = run_op("MEAN", [(x, None)], [], ((1, 4, 1, 1), "int8", None), dict(axes=(2,), keepdims=True))
    np.testing.assert_array_equal(plain.ravel(), [-3, 3, -127, 1])  # no quant params: truncation


def test_mean_requantizing_matches_tflm_recipe():
    rng = np.random.default_rng(8)
    x = rand_int(rng, (2, 5, 7, 6), np.int8)
    in_q, out_q = pt(0.0063, -11), pt(0.0021, 17)
    got = run_op("MEAN", [(x, in_q)], [], ((2, 6), "int8", out_q), dict(axes=(1, 2), keepdims=False))
    count = 35
    m, s = quantize_multiplier(float(F32(0.0063)) / float(F32(0.0021)))
    fold = min(count.bit_length() - 1, 32, 31 + s)
    total = x.astype(np.int64).sum(axis=(1, 2)) + 11 * count
    want = multiply_by_quantized_multiplier(total, (m << fold) // count, s - fold) + 17
    np.testing.assert_array_equal(got, np.clip(want, -128, 127))
    xf = rng.normal(size=(2, 3, 4)).astype(F32)
    got = run_op("MEAN", [(xf, None)], [], ((2, 1, 4), "float32", None), dict(axes=(1,), keepdims=True))
    np.testing.assert_allclose(got, xf.astype(np.float64).mean(axis=1, keepdims=True), rtol=1e-6)


# -- ONNX QLinear* and pools against the onnx reference implementation ---------------------------
def _onnx_case(name):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper
    folder = require_model(f"onnx/onnx_node_tests/{name}") / "test_data_set_0"
    arrays = {}
    for f in sorted(folder.glob("*.pb")):
        t = onnx.TensorProto()
        t.ParseFromString(f.read_bytes())
        arrays[f.stem] = numpy_helper.to_array(t)
    return arrays


def test_onnx_qlinearconv_node_test():
    """uint8 activations, uint8 weights with zero point 255."""
    d = _onnx_case("test_qlinearconv")
    x, w = d["input_0"].transpose(0, 2, 3, 1), d["input_3"].transpose(0, 2, 3, 1)
    wq = pt(d["input_4"][0], d["input_5"][0])
    got = run_op("CONV_2D", [(x, pt(d["input_1"], d["input_2"]))], [(w, wq)],
                 (x.shape, "uint8", pt(d["input_6"], d["input_7"])), dict(rounding="onnx"))
    np.testing.assert_array_equal(got, d["output_0"].transpose(0, 2, 3, 1))


QLINEARMATMUL = [f"test_qlinearmatmul_{n}D_{t}_{f}" for n in (2, 3) for t in ("int8", "uint8")
                 for f in ("float16", "float32")]


@pytest.mark.parametrize("case", QLINEARMATMUL)
def test_onnx_qlinearmatmul_node_tests(case):
    d = _onnx_case(case)
    got = run_op("BATCH_MATMUL", [(d["input_0"], pt(d["input_1"][0], d["input_2"][0])),
                                  (d["input_3"], pt(d["input_4"][0], d["input_5"][0]))], [],
                 (d["output_0"].shape, d["output_0"].dtype.name, pt(d["input_6"][0], d["input_7"][0])),
                 dict(rounding="onnx"))
    np.testing.assert_array_equal(got, d["output_0"])


QLINEARCONV_INPUTS = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"]


def _onnx_reference(node, inputs):
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in inputs.items()]
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", 0, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ReferenceEvaluator(model).run(None, {})[0]


@pytest.mark.parametrize("dtype,groups", [(np.uint8, 1), (np.int8, 2), (np.uint8, 3)])
def test_onnx_qlinearconv_per_channel_matches_onnx_reference(dtype, groups):
    """Per-channel weight scales and zero points, groups, strides, dilations, asymmetric pads."""
    helper = pytest.importorskip("onnx.helper")
    rng = np.random.default_rng(groups)
    cin, cout = 3 * groups, 4 * groups
    x = rand_int(rng, (2, cin, 9, 8), dtype)
    w = rand_int(rng, (cout, 3, 3, 2), dtype)
    w_zp = rand_int(rng, (cout,), dtype, 100, 150) if dtype == np.uint8 else np.zeros(cout, dtype)
    w_s = rng.uniform(0.001, 0.01, size=cout).astype(F32)
    bias = rng.integers(-5000, 5000, size=cout).astype(np.int32)
    x_s, x_zp, y_s, y_zp = F32(0.031), dtype(7), F32(0.045), dtype(120 if dtype == np.uint8 else -3)
    attrs = dict(strides=(2, 1), dilations=(1, 2), pads=(1, 0, 2, 1), group=groups)
    node = helper.make_node("QLinearConv", QLINEARCONV_INPUTS, ["y"], **attrs)
    want = _onnx_reference(node, dict(x=x, xs=x_s, xz=x_zp, w=w, ws=w_s, wz=w_zp, ys=y_s, yz=y_zp, b=bias))
    wq = QuantParams(tuple(float(s) for s in w_s), tuple(int(z) for z in w_zp), 0)
    got = run_op("CONV_2D", [(x.transpose(0, 2, 3, 1), pt(x_s, x_zp))],
                 [(w.transpose(0, 2, 3, 1), wq), (bias, None)],
                 (want.transpose(0, 2, 3, 1).shape, np.dtype(dtype).name, pt(y_s, y_zp)),
                 dict(strides=(2, 1), dilations=(1, 2), pads=(1, 0, 2, 1), rounding="onnx"))
    np.testing.assert_array_equal(got, want.transpose(0, 2, 3, 1))


def test_onnx_multiplier_is_computed_in_float32():
    """The onnx reference computes x_s * w_s / y_s in float32: with these scales an accumulator of 1801165
    (set through the bias) gives 88.50000011 -> 89, where a float64 multiplier gives 88.49999913 -> 88."""
    helper = pytest.importorskip("onnx.helper")
    x_s, w_s, y_s = F32(0.008924181573092937), F32(0.00947736669331789), F32(1.7213386297225952)
    x = np.full((1, 1, 2, 2), 3, np.int8)
    w = np.ones((1, 1, 1, 1), np.int8)
    bias = np.array([1801165], np.int32)
    node = helper.make_node("QLinearConv", QLINEARCONV_INPUTS, ["y"])
    want = _onnx_reference(node, dict(x=x, xs=x_s, xz=np.int8(3), w=w, ws=w_s, wz=np.int8(0), ys=y_s,
                                      yz=np.int8(-10), b=bias))
    assert (want == 79).all()
    got = run_op("CONV_2D", [(x.transpose(0, 2, 3, 1), pt(x_s, 3))], [(w, pt(w_s)), (bias, None)],
                 ((1, 2, 2, 1), "int8", pt(y_s, -10)), dict(rounding="onnx"))
    np.testing.assert_array_equal(got, want.transpose(0, 2, 3, 1))


def test_onnx_qlinearmatmul_per_column_b_matches_onnx_reference():
    helper = pytest.importorskip("onnx.helper")
    rng = np.random.default_rng(12)
    a, b = rand_int(rng, (2, 3, 5), np.uint8), rand_int(rng, (5, 4), np.uint8)
    b_s, b_zp = rng.uniform(0.01, 0.05, size=4).astype(F32), rand_int(rng, (4,), np.uint8, 100, 150)
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    want = _onnx_reference(node, dict(a=a, **{"as": F32(0.02)}, az=np.uint8(120), b=b, bs=b_s, bz=b_zp,
                                      ys=F32(0.3), yz=np.uint8(130)))
    bq = QuantParams(tuple(float(s) for s in b_s), tuple(int(z) for z in b_zp), 1)
    got = run_op("BATCH_MATMUL", [(a, pt(0.02, 120)), (b, bq)], [], (want.shape, "uint8", pt(0.3, 130)),
                 dict(rounding="onnx"))
    np.testing.assert_array_equal(got, want)
    msg = (r"BATCH_MATMUL: operand b uint8\[5x4\] per-axis\(5, axis=0\) is quantized along axis 0; "
           r"only per-column")
    with pytest.raises(UnsupportedOpError, match=msg):
        run_op("BATCH_MATMUL", [(a, pt(0.02, 120)), (b, QuantParams((0.1,) * 5, (0,) * 5, 0))], [],
               (want.shape, "uint8", pt(0.3, 130)), dict(rounding="onnx"))


@pytest.mark.parametrize("kind,cip,ceil,dil", [("AveragePool", 0, 0, None), ("AveragePool", 1, 1, (2, 1)),
                                               ("AveragePool", 1, 0, None), ("MaxPool", 0, 1, (2, 1))])
def test_onnx_pools_match_onnx_reference(kind, cip, ceil, dil):
    """Explicit pads; ceil_mode windows running past the end pads do not count (the output shape says
    how many windows there are)."""
    helper = pytest.importorskip("onnx.helper")
    x = np.random.default_rng(1).normal(size=(1, 3, 9, 8)).astype(F32)
    attrs = dict(kernel_shape=(3, 2), strides=(2, 3), pads=(1, 0, 1, 1), ceil_mode=ceil)
    if dil:
        attrs["dilations"] = dil
    if kind == "AveragePool":
        attrs["count_include_pad"] = cip
    want = _onnx_reference(helper.make_node(kind, ["x"], ["y"], **attrs), dict(x=x)).transpose(0, 2, 3, 1)
    ir_attrs = dict(kernel=(3, 2), strides=(2, 3), dilations=dil, pads=(1, 0, 1, 1))
    ir_kind = "AVERAGE_POOL" if kind == "AveragePool" else "MAX_POOL"
    if kind == "AveragePool":
        ir_attrs["count_include_pad"] = bool(cip)
    got = run_op(ir_kind, [(x.transpose(0, 2, 3, 1), None)], [], (want.shape, "float32", None), ir_attrs)
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- per layer against the TFLM interpreter --------------------------------------------------------
INT_MODELS = [
    "mlperf_tiny/kws_ref_model.tflite", "mlperf_tiny/ad01_int8.tflite",
    "tflm/hello_world_int8.tflite", "tflm/micro_speech_quantized.tflite",
    "tflm/seanet_int16/conv0.tflite", "tflm/seanet_int16/transpose_conv4.tflite",
    "extra/activations_fc_int8.tflite", "extra/add_mul_concat_int8.tflite", "extra/conv_dw_fc_int16x8.tflite",
    "extra/conv_dw_fc_per_tensor_int8.tflite", "extra/conv_dw_fc_uint8_io.tflite",
    "extra/pad_conv_mean_fc_int8.tflite", "extra/split_slice_transpose_conv1d_int8.tflite",
    "extra/transpose_conv_upsample_int8.tflite",
    "digits/digits_cnn_int8_tfliteconv.tflite", "digits/digits_mlp_int8_tfliteconv.tflite",
]
FLOAT_MODELS = ["mlperf_tiny/ad01_fp32.tflite", "tflm/hello_world_float.tflite",
                "digits/digits_cnn_float.tflite", "digits/digits_mlp_float.tflite"]
SLOW_MODELS = ["mlperf_tiny/vww_96_int8.tflite", "mlperf_tiny/pretrainedResnet_quant.tflite",
               "mlperf_tiny/vww_96_float.tflite", "mlperf_tiny/pretrainedResnet.tflite"]


def _ids(models):
    return [m.split("/")[-1].removesuffix(".tflite") for m in models]


def check_layers(rel):
    """Feed every MAC / pool / MEAN op the oracle's input tensors; compare with the oracle's output tensor:
    bit-exact for integer ops, within 1e-5 of the layer's largest magnitude for float ops."""
    path = require_model(rel)
    graph = importers.load(path)
    index = graph.metadata["tflite_tensor_index"]
    inputs = [seeded_inputs(t, N_SAMPLES, seed=77 + i) for i, t in enumerate(graph.input_tensors())]
    oracle = tflm_run(str(path), inputs, preserve_all=True)
    checked = 0
    for op in graph.ops:
        if op.kind not in MY_KINDS:
            continue
        names = [n for n in op.inputs if n and not graph.tensors[n].is_const] + list(op.outputs)
        assert all(n in index for n in names), (op.where(), op.kind, names)
        out_t = graph.tensors[op.outputs[0]]
        want = oracle.tensors[index[op.outputs[0]]].reshape((N_SAMPLES,) + out_t.shape)
        got = np.stack([KERNELS[op.kind](op, graph, [
            None if not n else graph.tensors[n].data if graph.tensors[n].is_const
            else oracle.tensors[index[n]][s].reshape(graph.tensors[n].shape) for n in op.inputs])[0]
            for s in range(N_SAMPLES)])
        if out_t.dtype.is_float:
            err = np.abs(got - want).max()
            assert err <= 1e-5 * np.abs(want).max(), f"{op.where()} {op.kind}: max error {err}"
        else:
            bad = np.count_nonzero(got != want)
            assert bad == 0, (f"{op.where()} {op.kind}: {bad}/{got.size} elements differ "
                              f"(max {np.abs(got.astype(np.int64) - want).max()})")
        checked += 1
    assert checked, f"{rel}: no MAC / pool op found"


@pytest.mark.parametrize("rel", INT_MODELS + FLOAT_MODELS, ids=_ids(INT_MODELS + FLOAT_MODELS))
def test_layers_match_tflm(rel):
    check_layers(rel)


@pytest.mark.slow
@pytest.mark.parametrize("rel", SLOW_MODELS, ids=_ids(SLOW_MODELS))
def test_layers_match_tflm_slow(rel):
    check_layers(rel)


@pytest.mark.parametrize("name", ["conv0", "transpose_conv4"])
def test_seanet_golden_csv(name):
    """TFLM's own golden output for the int16 layer, from its input CSV (one line, NHWC order)."""
    path = require_model(f"tflm/seanet_int16/{name}.tflite")
    graph = importers.load(path)
    (op,) = [o for o in graph.ops if o.kind in MY_KINDS]
    x_t = graph.tensors[op.inputs[0]]
    (csv,) = sorted(path.parent.glob(f"{name}_input*_int16.csv"))
    x = np.loadtxt(csv, delimiter=",", dtype=np.int64).astype(np.int16).reshape(x_t.shape)
    args = [x] + [None if not n else graph.tensors[n].data for n in op.inputs[1:]]
    got = KERNELS[op.kind](op, graph, args)[0]
    want = np.loadtxt(path.parent / f"{name}_golden_int16.csv", delimiter=",", dtype=np.int64)
    np.testing.assert_array_equal(got.ravel(), want)


def test_kws_imports_and_runs_well_under_a_second():
    path = require_model("mlperf_tiny/kws_ref_model.tflite")
    start = time.perf_counter()
    graph = importers.load(path)
    x = seeded_inputs(graph.input_tensors()[0], 1, seed=0)[0]
    try:
        reference.run(graph, {graph.inputs[0]: x})
    except UnsupportedOpError as e:  # another helper's kernel not there yet
        pytest.skip(str(e))
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"import + one inference took {elapsed:.2f} s"
