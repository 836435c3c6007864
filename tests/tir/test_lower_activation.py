"""LOGISTIC, TANH, HARD_SWISH and SOFTMAX lowered to C: small graphs built here, compiled strictly (-O2) and
with ASan/UBSan (-O1), run on the host and compared with the reference executor: bit for bit for integer
tensors (every int8 input; every int16 input for LOGISTIC/TANH), within 1e-6 (elementwise) or 1e-5 of the
largest output (SOFTMAX) for float32."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgen import reference
from microgen.c_emitter import emit
from microgen.device import host
from microgen.errors import UnsupportedOpError
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.memory_planner import plan
from microgen.tir.lower import lower

Q = QuantParams.per_tensor
I8, U8, I16, F32 = DType.INT8, DType.UINT8, DType.INT16, DType.FLOAT32


def graph(tensors: list[Tensor], ops: list[Op], inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Graph:
    return verify(Graph("act", {t.name: t for t in tensors}, tuple(ops), inputs, outputs))


def build(g: Graph, out_dir):
    p = plan(g)
    steps = lower(g, p, prefix="act")
    emit(g, p, steps, out_dir, "act")
    return p, (out_dir / "act.c").read_text()


def run_c(g: Graph, samples: dict, out_dir) -> dict:
    """Outputs of the generated C (-O2 strict; the sanitized -O1 build must agree bit for bit)."""
    build(g, out_dir)
    got = host.run_executable(host.compile_project(out_dir, "act"), g, samples)
    san = host.run_executable(host.compile_project(out_dir, "act", opt="-O1", sanitize=True), g, samples)
    for name in g.outputs:
        np.testing.assert_array_equal(san[name], got[name])
    return got


def check_exact(g: Graph, samples: dict, out_dir) -> None:
    got, want = run_c(g, samples, out_dir), reference.run_samples(g, samples)
    for name in g.outputs:
        bad = np.count_nonzero(got[name] != want[name])
        assert bad == 0, f"{name}: {bad}/{got[name].size} elements differ"


def every_value(dtype: DType, copies: int, rng) -> np.ndarray:
    """[copies, 2^bits]: every value of the type, in a different order in each copy."""
    lo, hi = dtype.limits()
    return np.stack([rng.permutation(np.arange(lo, hi + 1)) for _ in range(copies)]).astype(dtype.np)


# -- 8-bit elementwise: lookup tables ----------------------------------------------------------------
# (input scale, input zp, HARD_SWISH output scale, output zp): small and large input scales (saturation).
INT8_PARAMS = [(0.05, 3, 0.03, -5), (0.1, -128, 0.05, -100), (0.0123, 100, 0.01, 20), (0.5, 0, 0.03, -128)]


@pytest.mark.parametrize("s_in,zp_in,s_hs,zp_hs", INT8_PARAMS)
def test_int8_lut_ops_every_input(s_in, zp_in, s_hs, zp_hs, tmp_path):
    ts = [Tensor("x", (2, 256), I8, Q(s_in, zp_in)), Tensor("a", (2, 256), I8, Q(1 / 256, -128)),
          Tensor("b", (2, 256), I8, Q(1 / 128, 0)), Tensor("c", (2, 256), I8, Q(s_hs, zp_hs)),
          Tensor("u", (256,), U8, Q(s_in, zp_in + 128)), Tensor("d", (256,), U8, Q(s_hs, zp_hs + 128))]
    ops = [Op("LOGISTIC", ("x",), ("a",)), Op("TANH", ("x",), ("b",)), Op("HARD_SWISH", ("x",), ("c",)),
           Op("HARD_SWISH", ("u",), ("d",))]
    g = graph(ts, ops, ("x", "u"), ("a", "b", "c", "d"))
    rng = np.random.default_rng(7)
    samples = {"x": every_value(I8, 6, rng).reshape(3, 2, 256), "u": every_value(U8, 3, rng)}
    check_exact(g, samples, tmp_path)
    src = (tmp_path / "act.c").read_text()
    assert src.count("_table[input[i] + 128];") == 3 and src.count("_table[input[i]];") == 1


def test_elementwise_kernels_work_in_place(tmp_path):
    """x -> TANH -> t -> LOGISTIC -> y (int8) and the float chain: outputs written over dying inputs."""
    ts = [Tensor("x", (300,), I8, Q(0.04, -7)), Tensor("t", (300,), I8, Q(1 / 128, 0)),
          Tensor("y", (300,), I8, Q(1 / 256, -128)),
          Tensor("fx", (300,), F32), Tensor("ft", (300,), F32), Tensor("fh", (300,), F32), Tensor("fy", (300,), F32)]
    ops = [Op("TANH", ("x",), ("t",)), Op("LOGISTIC", ("t",), ("y",)),
           Op("HARD_SWISH", ("fx",), ("fh",)), Op("TANH", ("fh",), ("ft",)), Op("LOGISTIC", ("ft",), ("fy",))]
    g = graph(ts, ops, ("x", "fx"), ("y", "fy"))
    p, src = build(g, tmp_path)
    shared = [(a, b) for a, b in [("t", "y"), ("fh", "ft"), ("ft", "fy")] if p.offsets[a] == p.offsets[b]]
    assert len(shared) >= 2, p.offsets  # the planner did put outputs over inputs
    rng = np.random.default_rng(3)
    samples = {"x": rng.integers(-128, 128, (4, 300)).astype(np.int8),
               "fx": (rng.standard_normal((4, 300)) * 5).astype(np.float32)}
    got, want = run_c(g, samples, tmp_path), reference.run_samples(g, samples)
    np.testing.assert_array_equal(got["y"], want["y"])
    np.testing.assert_allclose(got["fy"], want["fy"], rtol=1e-6, atol=1e-7)


# -- int16 LOGISTIC / TANH ---------------------------------------------------------------------------
@pytest.mark.parametrize("s_in", [2.0 ** -12, 2.0 ** -11, 3.1e-4, 0.002, 10.0],
                         ids=["pot", "pot_shift1", "small", "large", "wrapping"])
def test_int16_logistic_tanh_every_input(s_in, tmp_path):
    out_q = Q(2.0 ** -15, 0)
    ts = [Tensor("x", (65536,), I16, Q(s_in, 0)), Tensor("a", (65536,), I16, out_q),
          Tensor("b", (65536,), I16, out_q)]
    g = graph(ts, [Op("LOGISTIC", ("x",), ("a",)), Op("TANH", ("x",), ("b",))], ("x",), ("a", "b"))
    check_exact(g, {"x": every_value(I16, 1, np.random.default_rng(1))}, tmp_path)


def test_refusals_follow_the_reference(tmp_path):
    """Quantizations TFLM refuses are refused when lowering, with the reference's message."""
    cases = [
        ("LOGISTIC", Tensor("x", (4,), I8, Q(0.1, 0)), Tensor("y", (4,), I8, Q(1 / 256, 0)), "zero point"),
        ("TANH", Tensor("x", (4,), I16, Q(0.001, 0)), Tensor("y", (4,), I16, Q(0.001, 0)), "2^-15"),
        ("SOFTMAX", Tensor("x", (4,), I8, Q(0.1, 0)), Tensor("y", (4,), I8, Q(0.1, -128)), "1/256"),
        ("SOFTMAX", Tensor("x", (4,), I16, Q(0.1, 0)), Tensor("y", (4,), I16, Q(1 / 256, 0)), "1/32768"),
    ]
    for kind, x, y, why in cases:
        g = graph([x, y], [Op(kind, ("x",), ("y",), dict(beta=1.0, axis=-1) if kind == "SOFTMAX" else {})],
                  ("x",), ("y",))
        with pytest.raises(UnsupportedOpError, match=re.escape(why)):
            lower(g, plan(g), prefix="act")


# -- SOFTMAX -----------------------------------------------------------------------------------------
def softmax_rows(dtype: DType, shape: tuple[int, ...], n_samples: int, rng) -> np.ndarray:
    """Random rows plus hard ones along the last axis: all equal, one max among minima, two tied maxima,
    a narrow range."""
    lo, hi = dtype.limits()
    x = rng.integers(lo, hi + 1, (n_samples, *shape))
    flat = x.reshape(n_samples, -1, shape[-1])
    flat[0, 0] = rng.integers(lo, hi + 1)
    if shape[-1] > 1:
        flat[0, -1] = lo
        flat[0, -1, rng.integers(shape[-1])] = hi
        flat[1, 0, :2] = flat[1, 0].max() + 0
        if shape[-1] < 512:  # (a long narrow row makes TFLM's int8 exponent exceed 31: undefined there)
            flat[1, -1] = rng.integers(-3, 4, shape[-1])
    return x.astype(dtype.np)


# (name, input shape, axis, input scale, beta): short and long rows, a cut-off below diff_min (s = 0.1),
# beta != 1, a softmax over a middle axis, a row of one element, rows long enough to need the exponent clamp
# (600) and a uint32 sum (5000, as TFLM's int32 sum may wrap).
SOFTMAX_CASES = [("a", (3, 10), -1, 0.1, 1.0), ("b", (4, 37), -1, 0.05, 0.5), ("c", (2, 1), -1, 0.2, 1.0),
                 ("d", (2, 5, 3), 1, 0.08, 1.7), ("e", (1, 600), -1, 0.1, 1.0), ("f", (2, 16), -1, 0.02, 3.0),
                 ("g", (1, 5000), -1, 0.1, 1.0)]


def softmax_graph(in_dtype: DType, out_dtype: DType, out_q: QuantParams, cases) -> Graph:
    ts, ops = [], []
    for name, shape, axis, s_in, beta in cases:
        ts += [Tensor(f"x{name}", shape, in_dtype, Q(s_in, 0)), Tensor(f"y{name}", shape, out_dtype, out_q)]
        ops.append(Op("SOFTMAX", (f"x{name}",), (f"y{name}",), dict(beta=beta, axis=axis)))
    return graph(ts, ops, tuple(f"x{c[0]}" for c in cases), tuple(f"y{c[0]}" for c in cases))


@pytest.mark.parametrize("out_dtype,out_q", [(I8, Q(1 / 256, -128)), (I16, Q(1 / 65536, -32768))],
                         ids=["int8_out", "int16_out"])
def test_softmax_int8(out_dtype, out_q, tmp_path):
    g = softmax_graph(I8, out_dtype, out_q, SOFTMAX_CASES)
    rng = np.random.default_rng(11)
    samples = {f"x{c[0]}": softmax_rows(I8, c[1], 4, rng) for c in SOFTMAX_CASES}
    check_exact(g, samples, tmp_path)


def test_softmax_int16(tmp_path):
    cases = [("a", (3, 10), -1, 0.001, 1.0), ("b", (4, 37), -1, 3e-4, 0.5), ("c", (2, 1), -1, 0.002, 1.0),
             ("d", (2, 5, 3), 1, 1e-4, 2.0), ("e", (1, 600), -1, 5e-4, 1.0), ("f", (2, 16), -1, 0.01, 1.0)]
    g = softmax_graph(I16, I16, Q(1 / 32768, 0), cases)
    rng = np.random.default_rng(12)
    check_exact(g, {f"x{c[0]}": softmax_rows(I16, c[1], 4, rng) for c in cases}, tmp_path)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 70), rows=st.integers(1, 3), s_in=st.floats(1e-3, 0.5), beta=st.floats(0.2, 4.0),
       seed=st.integers(0, 2 ** 16))
def test_softmax_int8_and_int16_random_params(n, rows, s_in, beta, seed, tmp_path_factory):
    case = [("r", (rows, n), -1, s_in, beta)]
    ts = [Tensor("x", (rows, n), I8, Q(s_in, 0)), Tensor("y", (rows, n), I16, Q(1 / 65536, -32768)),
          Tensor("z", (rows, n), I16, Q(s_in / 64, 0)), Tensor("w", (rows, n), I16, Q(1 / 32768, 0))]
    ops = [Op("SOFTMAX", ("x",), ("y",), dict(beta=beta, axis=-1)),
           Op("SOFTMAX", ("z",), ("w",), dict(beta=beta, axis=-1))]
    g = graph(ts, ops, ("x", "z"), ("y", "w"))
    rng = np.random.default_rng(seed)
    samples = {"x": softmax_rows(I8, case[0][1], 3, rng), "z": softmax_rows(I16, case[0][1], 3, rng)}
    check_exact(g, samples, tmp_path_factory.mktemp("sm"))


# -- float32 -----------------------------------------------------------------------------------------
def test_float_activations(tmp_path):
    """Every branch of TFLM's float logistic (saturation past 16.62, exp below -9, down to subnormals),
    tanh near 0 and far out, hard swish, and softmax with beta != 1 and over a middle axis."""
    grid = np.concatenate([np.linspace(-110, 30, 1500), np.linspace(-1, 1, 501), np.float32([16.619047, 16.62, -9.0])])
    n = grid.size
    ts = [Tensor("x", (n,), F32)] + [Tensor(k, (n,), F32) for k in ("l", "t", "h")]
    ts += [Tensor("s", (4, 9, 5), F32), Tensor("sa", (4, 9, 5), F32), Tensor("sb", (4, 9, 5), F32)]
    ops = [Op("LOGISTIC", ("x",), ("l",)), Op("TANH", ("x",), ("t",)), Op("HARD_SWISH", ("x",), ("h",)),
           Op("SOFTMAX", ("s",), ("sa",), dict(beta=1.0, axis=-1)),
           Op("SOFTMAX", ("s",), ("sb",), dict(beta=0.3, axis=1))]
    g = graph(ts, ops, ("x", "s"), ("l", "t", "h", "sa", "sb"))
    rng = np.random.default_rng(5)
    samples = {"x": np.stack([grid, grid * 0.01]).astype(np.float32),
               "s": (rng.standard_normal((2, 4, 9, 5)) * 20).astype(np.float32)}
    got, want = run_c(g, samples, tmp_path), reference.run_samples(g, samples)
    for name in ("l", "t", "h"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-30, err_msg=name)
    for name in ("sa", "sb"):
        scale = np.abs(want[name]).max()
        assert np.abs(got[name] - want[name]).max() <= 1e-5 * scale, name
    assert "math.h" not in (tmp_path / "act.c").read_text()
