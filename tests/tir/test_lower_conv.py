"""The convolution family's C (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, BATCH_MATMUL): one-op graphs built
here for each dtype variant and geometry, compiled strictly (-O2) and with ASan/UBSan, compared with the
reference executor (bit-exact for integers; float within 1e-5 of the largest magnitude)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgen import c_emitter, memory_planner, reference
from microgen.device import host
from microgen.errors import UnsupportedOpError
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.ops import with_defaults
from microgen.tir.lower import lower
from microgen.tir.lower_transpose_conv import tap_table

I8, U8, I16, F32 = DType.INT8, DType.UINT8, DType.INT16, DType.FLOAT32
N_SAMPLES = 6


# -- helpers -----------------------------------------------------------------------------------------
def pt(scale, zp=0):
    return QuantParams.per_tensor(scale, zp)


def pc(scales, axis, zps=None):
    return QuantParams(tuple(float(s) for s in scales), tuple(zps or (0,) * len(scales)), axis)


def rand(rng, shape, dtype: DType, lo=None, hi=None):
    if dtype.is_float:
        return rng.normal(0, 1, shape).astype(np.float32)
    a, b = dtype.limits()
    return rng.integers(a if lo is None else lo, (b if hi is None else hi) + 1, size=shape).astype(dtype.np)


def out_scale(x_q, w_scale, taps, x_dtype):
    """An output scale that puts typical results well inside the output range (not all saturated):
    uniform random operands have a standard deviation of ~74 (8-bit) or ~19000 (16-bit)."""
    x_std, target = (74.0, 40.0) if x_dtype.itemsize == 1 else (19000.0, 8000.0)
    return float(x_q.s * x_std * w_scale * 74.0 * np.sqrt(taps) / target)


def graph_of(kind, acts, consts, y, attrs):
    tensors = {t.name: t for t in [*acts, *[c for c in consts if c is not None], y]}
    names = [t.name for t in acts] + [c.name if c is not None else "" for c in consts]
    op = Op(kind, tuple(names), (y.name,), with_defaults(kind, attrs), name="op", index=0)
    return verify(Graph("g", tensors, (op,), tuple(t.name for t in acts), (y.name,)))


def check(graph, tmp_path, seed=0, sanitize=True, require_spread=True):
    """Build graph's C, run N_SAMPLES random inputs (full range and small values around the zero point),
    compare with the reference. Returns the generated source."""
    rng = np.random.default_rng(seed)
    samples = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        vals = []
        for i in range(N_SAMPLES):
            if t.dtype.is_float or i % 2 == 0:
                vals.append(rand(rng, t.shape, t.dtype))
            else:
                zp = t.quant.zero_point[0] if t.quant is not None else 0
                lo, hi = t.dtype.limits()
                vals.append(np.clip(zp + rng.integers(-20, 21, t.shape), lo, hi).astype(t.dtype.np))
        samples[name] = np.stack(vals)
    plan = memory_planner.plan(graph)
    steps = lower(graph, plan, "m")
    project = c_emitter.emit(graph, plan, steps, tmp_path, "m")
    got = host.run_executable(host.compile_project(tmp_path, "m"), graph, samples)
    if sanitize:
        san = host.run_executable(host.compile_project(tmp_path, "m", opt="-O1", sanitize=True), graph, samples)
        for name in graph.outputs:
            np.testing.assert_array_equal(san[name], got[name])
    want = reference.run_samples(graph, samples)
    check.last_plan = plan
    for name in graph.outputs:
        g, w = got[name], want[name]
        if np.issubdtype(w.dtype, np.integer):
            bad = np.count_nonzero(g != w)
            assert bad == 0, f"{bad}/{g.size} elements differ"
            assert not require_spread or len(np.unique(w)) > 2, "degenerate test: output (nearly) constant"
        else:
            assert np.abs(g.astype(np.float64) - w).max() <= 1e-5 * max(float(np.abs(w).max()), 1e-30)
    return project.source.read_text()


def kernel_text(src, name):
    start = src.index(f"static void {name}")
    return src[start:src.index("\n}\n", start)]


def conv_out(n, k, s, d, p0, p1):
    return (n + p0 + p1 - ((k - 1) * d + 1)) // s + 1


def conv_graph(kind, x_shape, k, cout, *, xd=I8, wd=I8, x_zp=-3, y_zp=5, per_channel=True, strides=(1, 1),
               dilations=(1, 1), pads=(0, 0, 0, 0), groups=1, bias=True, bias_dtype=None, activation="NONE",
               rounding="tflm", w_zps=None, seed=0, out_hw=None):
    """A one-op CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV graph with random weights and bias."""
    rng = np.random.default_rng(seed)
    n, h, w, cin = x_shape
    kh, kw = k
    is_float = xd == F32
    x_q = None if is_float else pt(0.05 if xd != I16 else 0.0005, x_zp)
    if kind == "DEPTHWISE_CONV_2D":
        w_shape, axis, taps = (1, kh, kw, cout), 3, kh * kw
    else:
        w_shape, axis, taps = (cout, kh, kw, cin // groups), 0, kh * kw * cin // groups
    if is_float:
        w_q, y_q, wv = None, None, rng.normal(0, 0.5, w_shape).astype(np.float32)
    else:
        scales = 0.01 * (1 + rng.random(cout)) if per_channel else [0.013]
        w_q = pc(scales, axis, w_zps) if per_channel else pt(0.013, (w_zps or [0])[0])
        lo, hi = (-127, 127) if wd == I8 else (0, 255)
        wv = rand(rng, w_shape, wd, lo, hi)
        y_q = pt(out_scale(x_q, 0.015, taps if kind != "TRANSPOSE_CONV" else max(1, taps // 2), xd), y_zp)
    b = None
    if bias:
        if is_float:
            bv = rng.normal(0, 1, cout).astype(np.float32)
        else:
            bdt = bias_dtype or (DType.INT64 if xd == I16 else DType.INT32)
            bv = rng.integers(-3000 if xd != I16 else -300000, 3001 if xd != I16 else 300001, cout).astype(bdt.np)
        b = Tensor("b", (cout,), DType.from_numpy(bv.dtype), None, bv)
    if out_hw is None:
        if kind == "TRANSPOSE_CONV":
            out_hw = tuple((x_shape[1 + i] - 1) * strides[i] + (k[i] - 1) * dilations[i] + 1 - pads[i] - pads[i + 2]
                           for i in range(2))
        else:
            out_hw = tuple(conv_out(x_shape[1 + i], k[i], strides[i], dilations[i], pads[i], pads[i + 2])
                           for i in range(2))
    yd = xd if rounding == "tflm" or xd != U8 else U8
    x_t = Tensor("x", x_shape, xd, x_q)
    w_t = Tensor("w", w_shape, wd if not is_float else F32, w_q, wv)
    y_t = Tensor("y", (n, *out_hw, cout), yd, y_q)
    attrs = dict(strides=strides, dilations=dilations, pads=pads, activation=activation)
    if kind != "TRANSPOSE_CONV":
        attrs["rounding"] = rounding
    if kind == "DEPTHWISE_CONV_2D":
        attrs["depth_multiplier"] = cout // cin
    return graph_of(kind, [x_t], [w_t, b], y_t, attrs)


# -- CONV_2D -----------------------------------------------------------------------------------------
CONV_CASES = {
    "same3x3_relu_zp-128": dict(x_shape=(1, 6, 7, 3), k=(3, 3), cout=4, pads=(1, 1, 1, 1), x_zp=-128,
                                activation="RELU"),
    "stride2_asym_pads_relu6_per_tensor": dict(x_shape=(1, 7, 8, 2), k=(3, 2), cout=3, strides=(2, 2),
                                               pads=(0, 1, 2, 0), per_channel=False, activation="RELU6"),
    "dilation2_pads": dict(x_shape=(1, 9, 8, 2), k=(3, 3), cout=3, dilations=(2, 2), pads=(2, 1, 2, 3)),
    "groups2_relu_n1_to_1": dict(x_shape=(1, 5, 5, 4), k=(3, 3), cout=6, groups=2, pads=(1, 1, 1, 1),
                                 activation="RELU_N1_TO_1"),
    "pointwise_no_bias": dict(x_shape=(1, 4, 5, 8), k=(1, 1), cout=5, bias=False),
    "extreme_zps": dict(x_shape=(1, 5, 6, 3), k=(3, 3), cout=2, x_zp=127, y_zp=-128, pads=(1, 0, 1, 2)),
    "window_past_input_batch2": dict(x_shape=(2, 3, 4, 2), k=(2, 3), cout=3, strides=(2, 1), out_hw=(3, 4),
                                     pads=(1, 2, 0, 0)),
    "stride3_dilation2_no_interior": dict(x_shape=(1, 4, 4, 2), k=(3, 3), cout=2, strides=(3, 2),
                                          dilations=(2, 3), pads=(2, 3, 2, 3)),
    "int16x8_int64_bias": dict(x_shape=(1, 6, 5, 3), k=(3, 3), cout=4, xd=I16, x_zp=0, y_zp=0, pads=(1, 1, 1, 1),
                               activation="RELU"),
    "int16x8_int32_bias": dict(x_shape=(1, 5, 5, 16), k=(3, 3), cout=3, xd=I16, x_zp=0, y_zp=0,
                               bias_dtype=DType.INT32, pads=(1, 1, 1, 1)),
    "float_relu6_dilation": dict(x_shape=(1, 7, 6, 3), k=(3, 2), cout=4, xd=F32, dilations=(2, 1),
                                 pads=(2, 1, 1, 0), activation="RELU6"),
    "float_groups_stride2": dict(x_shape=(1, 6, 6, 4), k=(3, 3), cout=4, xd=F32, groups=4, strides=(2, 2),
                                 pads=(1, 1, 0, 0)),
    "onnx_uint8_weight_zps": dict(x_shape=(1, 5, 6, 3), k=(3, 3), cout=3, xd=U8, wd=U8, x_zp=128, y_zp=120,
                                  w_zps=[100, 128, 140], pads=(1, 1, 1, 1), rounding="onnx"),
    "onnx_int8_per_tensor_relu": dict(x_shape=(1, 5, 5, 2), k=(2, 2), cout=3, x_zp=10, y_zp=-20,
                                      per_channel=False, strides=(2, 2), pads=(0, 0, 1, 1), rounding="onnx",
                                      activation="RELU"),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_2d(case, tmp_path):
    check(conv_graph("CONV_2D", **CONV_CASES[case]), tmp_path)


def test_conv_interior_has_no_bounds_checks_and_folds_zero_point(tmp_path):
    """The interior branch reads x without + offset and starts from the folded bias; border pixels compute
    their tap range once per row / pixel, outside the reduction."""
    src = check(conv_graph("CONV_2D", (1, 6, 6, 3), (3, 3), 2, x_zp=-128, pads=(1, 1, 1, 1)), tmp_path)
    kernel = kernel_text(src, "m_l0_conv_2d")
    interior, border = kernel.split("} else {")[:2]
    assert "+ 128)" not in interior and "m_l0_bias[" in interior
    assert "+ 128)" in border and "m_l0_bias_raw[" in border
    assert "int32_t ky0 = mg_max_i32(0, 1 - oy);" in kernel
    assert "for (int32_t k = kx0 * 3; k < kx0 * 3 + nkx * 3; ++k)" in kernel  # kx and c merged: one run


def test_conv_without_padding_has_no_border_code(tmp_path):
    src = check(conv_graph("CONV_2D", (1, 5, 5, 2), (3, 3), 2), tmp_path)
    kernel = kernel_text(src, "m_l0_conv_2d")
    assert " if (" not in kernel and "bias_raw" not in src and "mg_max_i32(0" not in kernel


# -- DEPTHWISE_CONV_2D -------------------------------------------------------------------------------
DW_CASES = {
    "same3x3_per_channel_relu": dict(x_shape=(1, 6, 5, 4), k=(3, 3), cout=4, pads=(1, 1, 1, 1),
                                     x_zp=-128, activation="RELU"),
    "multiplier2_stride2_asym": dict(x_shape=(1, 7, 8, 3), k=(3, 3), cout=6, strides=(2, 2), pads=(0, 1, 1, 1),
                                     per_channel=False, activation="RELU6"),
    "multiplier3_dilation2": dict(x_shape=(1, 8, 7, 2), k=(2, 3), cout=6, dilations=(2, 2), pads=(1, 2, 1, 2),
                                  x_zp=100, y_zp=-100),
    "int16x8_multiplier2": dict(x_shape=(1, 5, 6, 2), k=(3, 3), cout=4, xd=I16, x_zp=0, y_zp=0,
                                pads=(1, 1, 1, 1)),
    "float_relu_n1_to_1": dict(x_shape=(1, 6, 6, 3), k=(3, 3), cout=3, xd=F32, pads=(1, 1, 1, 1),
                               strides=(2, 1), activation="RELU_N1_TO_1"),
    "onnx_uint8": dict(x_shape=(1, 5, 5, 3), k=(3, 3), cout=3, xd=U8, wd=U8, x_zp=130, y_zp=128,
                       w_zps=[120, 128, 136], pads=(1, 1, 1, 1), rounding="onnx"),
}


@pytest.mark.parametrize("case", DW_CASES)
def test_depthwise_conv_2d(case, tmp_path):
    check(conv_graph("DEPTHWISE_CONV_2D", **DW_CASES[case]), tmp_path)


# -- TRANSPOSE_CONV ----------------------------------------------------------------------------------
TCONV_CASES = {
    "stride2_k3_pads_per_channel": dict(x_shape=(1, 4, 3, 3), k=(3, 3), cout=4, strides=(2, 2),
                                        pads=(1, 1, 0, 0), x_zp=-128),
    "stride3_k2_gaps_per_tensor_relu": dict(x_shape=(1, 3, 3, 2), k=(2, 2), cout=3, strides=(3, 3),
                                            per_channel=False, activation="RELU"),
    "stride2_dilation2_groups2": dict(x_shape=(1, 3, 4, 4), k=(3, 2), cout=4, strides=(2, 2), dilations=(2, 3),
                                      groups=2, pads=(1, 0, 2, 1), x_zp=7),
    "int16x8": dict(x_shape=(1, 1, 6, 4), k=(1, 4), cout=3, xd=I16, x_zp=0, y_zp=0, strides=(1, 2),
                    pads=(0, 1, 0, 1)),
    "float": dict(x_shape=(1, 3, 3, 2), k=(3, 3), cout=2, xd=F32, strides=(2, 2), pads=(1, 1, 1, 1)),
}


@pytest.mark.parametrize("case", TCONV_CASES)
def test_transpose_conv(case, tmp_path):
    check(conv_graph("TRANSPOSE_CONV", **TCONV_CASES[case]), tmp_path)


def test_transpose_conv_tap_table_matches_scatter():
    """The (first tap, count, first input) rows equal a brute-force scatter for awkward strides/dilations."""
    for n_in, k, s, d, pad in [(4, 3, 2, 1, 1), (3, 4, 3, 2, 0), (5, 3, 2, 2, 2), (2, 5, 4, 6, 3)]:
        n_out = (n_in - 1) * s + (k - 1) * d + 1 - pad
        table, kstep, istep = tap_table(n_in, n_out, k, s, d, pad)
        for o in range(n_out):
            want = sorted((t, i) for i in range(n_in) for t in range(k) if i * s + t * d - pad == o)
            first, count, i0 = table[o]
            assert [(first + j * kstep, i0 - j * istep) for j in range(count)] == want


# -- BATCH_MATMUL ------------------------------------------------------------------------------------
def matmul_graph(sa, sb, *, xd=I8, a_zp=3, b_zp=-5, b_col_zps=None, b_const=False, rounding="tflm", seed=0):
    rng = np.random.default_rng(seed)
    depth = sa[-1]
    cols = 1 if len(sb) == 1 else sb[-1]
    shape = np.matmul(np.zeros(sa), np.zeros(sb)).shape
    if xd == F32:
        aq = bq = yq = None
    else:
        aq = pt(0.05 if xd != I16 else 0.0005, a_zp)
        bq = (pc(0.02 * (1 + rng.random(cols)), len(sb) - 1, b_col_zps) if b_col_zps else pt(0.03, b_zp))
        yq = pt(out_scale(aq, 0.03, depth, xd), 2)
    yd = xd
    a_t = Tensor("a", tuple(sa), xd, aq)
    bv = rand(rng, sb, xd) if b_const else None
    b_t = Tensor("b", tuple(sb), xd, bq, bv)
    y_t = Tensor("y", shape, yd, yq)
    acts, consts = ([a_t], [b_t]) if b_const else ([a_t, b_t], [])
    return graph_of("BATCH_MATMUL", acts, consts, y_t, dict(rounding=rounding))


MM_CASES = {
    "int8_batched": dict(sa=(2, 3, 4), sb=(2, 4, 5)),
    "int8_broadcast": dict(sa=(3, 6), sb=(2, 6, 4), a_zp=-128, b_zp=127),
    "int8_vector_a_and_b": dict(sa=(7,), sb=(2, 7, 3)),
    "int8_matrix_vector": dict(sa=(2, 1, 3, 5), sb=(5,)),
    "int16": dict(sa=(1, 3, 8), sb=(1, 8, 3), xd=I16, a_zp=0, b_zp=0),
    "float": dict(sa=(2, 3, 5), sb=(5, 4), xd=F32),
    "onnx_uint8_per_column_zps": dict(sa=(2, 4, 6), sb=(2, 6, 3), xd=U8, a_zp=128, b_col_zps=[100, 128, 150],
                                      rounding="onnx"),
    "onnx_int8_const_b": dict(sa=(2, 3, 4), sb=(2, 4, 3), a_zp=-10, b_zp=4, b_const=True, rounding="onnx"),
}


@pytest.mark.parametrize("case", MM_CASES)
def test_batch_matmul(case, tmp_path):
    check(matmul_graph(**MM_CASES[case]), tmp_path)


def test_onnx_rounding_ties_go_to_even(tmp_path):
    """Multiplier exactly 0.5: every odd accumulator is a tie (positive and negative); the onnx reference
    rounds them half to even, which the C's exact epilogue must reproduce."""
    a = Tensor("a", (1, 4, 3), I8, pt(0.5, 0))
    b = Tensor("b", (1, 3, 5), I8, pt(1.0, 0))
    y = Tensor("y", (1, 4, 5), I8, pt(1.0, 3))
    g = graph_of("BATCH_MATMUL", [a, b], [], y, dict(rounding="onnx"))
    rng = np.random.default_rng(3)
    samples = {"a": rand(rng, (8, 1, 4, 3), I8, -9, 9), "b": rand(rng, (8, 1, 3, 5), I8, -9, 9)}
    plan = memory_planner.plan(g)
    c_emitter.emit(g, plan, lower(g, plan, "m"), tmp_path, "m")
    got = host.run_executable(host.compile_project(tmp_path, "m"), g, samples)["y"]
    want = reference.run_samples(g, samples)["y"]
    acc = np.matmul(samples["a"].astype(np.int64), samples["b"].astype(np.int64))
    assert np.count_nonzero(acc % 2) > 50  # many ties
    np.testing.assert_array_equal(got, want)


def test_hybrid_float_conv_dequantizes_weights(tmp_path):
    """Float activations with int8 per-channel weights (hybrid models): weights dequantized at build time."""
    rng = np.random.default_rng(5)
    x = Tensor("x", (1, 5, 5, 3), F32)
    w = Tensor("w", (4, 3, 3, 3), I8, pc([0.02, 0.03, 0.01, 0.05], 0), rand(rng, (4, 3, 3, 3), I8, -127, 127))
    b = Tensor("b", (4,), F32, None, rng.normal(0, 1, 4).astype(np.float32))
    y = Tensor("y", (1, 5, 5, 4), F32)
    check(graph_of("CONV_2D", [x], [w, b], y, dict(pads=(1, 1, 1, 1), activation="RELU")), tmp_path)


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_output_over_input_overlap(kind, tmp_path):
    """The planner places a strided conv's output over its dying input (memory_planner/overlap.py): the
    kernels keep the contract (outputs stored in order, each after its own loads)."""
    g = conv_graph(kind, (1, 12, 12, 4), (3, 3), 4, strides=(2, 2), pads=(1, 1, 1, 1), x_zp=-128)
    check(g, tmp_path)
    assert check.last_plan.overlaps, "the planner chose no overlap: the test does not test it"


# -- unsupported variants ----------------------------------------------------------------------------
def test_integer_output_without_quant_params_is_refused(tmp_path):
    g = conv_graph("CONV_2D", (1, 4, 4, 2), (3, 3), 2)
    y = g.tensors["y"]
    g2 = graph_of("CONV_2D", [g.tensors["x"]], [g.tensors["w"], g.tensors["b"]],
                  Tensor("y", y.shape, DType.INT32), dict(g.ops[0].attrs))
    with pytest.raises(UnsupportedOpError, match="without quantization parameters"):
        lower(g2, memory_planner.plan(g2), "m")


def test_layer_reading_only_padding_is_refused():
    g = conv_graph("CONV_2D", (1, 1, 1, 1), (1, 1), 1, strides=(2, 1), pads=(1, 0, 0, 0))
    with pytest.raises(UnsupportedOpError, match="every window lies in the padding"):
        lower(g, memory_planner.plan(g), "m")


# -- random geometry ---------------------------------------------------------------------------------
@st.composite
def random_conv(draw):
    kind = draw(st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"]))
    xd = draw(st.sampled_from([I8, I8, I16, F32]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilations = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    cin = draw(st.integers(1, 4))
    groups = 1
    if kind == "DEPTHWISE_CONV_2D":
        cout = cin * draw(st.integers(1, 3))
    else:
        groups = draw(st.sampled_from([g for g in (1, 2) if cin % g == 0]))
        cout = groups * draw(st.integers(1, 3))
    h = draw(st.integers(1, 7))
    w = draw(st.integers(1, 7))
    if kind != "TRANSPOSE_CONV":
        # the input must cover at least one window
        h = max(h, (k[0] - 1) * dilations[0] + 1 - pads[0] - pads[2])
        w = max(w, (k[1] - 1) * dilations[1] + 1 - pads[1] - pads[3])
    else:
        pads = tuple(min(p, (k[i % 2] - 1) * dilations[i % 2]) for i, p in enumerate(pads))
        pads = (pads[0], pads[1], 0, 0)
    x_zp = 0 if xd != I8 else draw(st.integers(-128, 127))
    y_zp = 0 if xd != I8 else draw(st.integers(-128, 127))
    act = draw(st.sampled_from(["NONE", "RELU", "RELU6"]))
    return kind, dict(x_shape=(1, h, w, cin), k=k, cout=cout, xd=xd, x_zp=x_zp, y_zp=y_zp, strides=strides,
                      dilations=dilations, pads=pads, groups=groups, activation=act,
                      per_channel=draw(st.booleans()), seed=draw(st.integers(0, 1000)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_conv())
def test_random_conv_geometry(tmp_path, spec):
    kind, kw = spec
    g = conv_graph(kind, **kw)
    try:
        check(g, tmp_path, seed=kw["seed"], sanitize=kw["seed"] % 3 == 0, require_spread=False)
    except UnsupportedOpError as e:  # only for layers whose output cannot depend on the input
        assert "reads no input" in str(e)
        x = np.ones((1, *g.tensors["x"].shape), g.tensors["x"].dtype.np)
        assert np.array_equal(reference.run_samples(g, {"x": x})["y"], reference.run_samples(g, {"x": -x})["y"])


def test_single_output_row_folds_the_interior_test(tmp_path):
    """One output row (its loop inlined): whether it is interior is decided at build time."""
    src = check(conv_graph("CONV_2D", (1, 3, 6, 2), (3, 3), 3, pads=(0, 1, 0, 1)), tmp_path)
    kernel = kernel_text(src, "m_l0_conv_2d")
    assert "if (ox >= 1 && ox < 5)" in kernel and "0 >=" not in kernel
