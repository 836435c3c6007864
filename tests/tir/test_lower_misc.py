"""The C of pooling, MEAN, binary elementwise ops, CLIP / LEAKY_RELU, QUANTIZE / DEQUANTIZE and data movement:
small graphs built here (several independent ops per graph, to keep the number of compilations down),
compiled strictly (-O2) and with ASan/UBSan, compared with the reference executor: bit-exact, except the
float averages (AVERAGE_POOL, MEAN), which the reference sums in float64: within 1e-5 there."""


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgen import c_emitter, memory_planner, reference
from microgen.device import host
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.ops import with_defaults
from microgen.tir.lower import lower

I8, U8, I16, I32, I64, F32 = DType.INT8, DType.UINT8, DType.INT16, DType.INT32, DType.INT64, DType.FLOAT32
N_SAMPLES = 6


def pt(scale, zp=0):
    return QuantParams.per_tensor(scale, zp)


def pc(scales, axis, zps=None):
    return QuantParams(tuple(float(s) for s in scales), tuple(zps or (0,) * len(scales)), axis)


class G:
    """A graph under construction: tensors and ops; inputs are the activations no op produces, outputs
    every produced tensor no op reads."""

    def __init__(self):
        self.tensors, self.ops = {}, []

    def t(self, name, shape, dtype, quant=None, data=None):
        if data is not None:
            data = np.asarray(data, dtype=dtype.np).reshape(shape)
        self.tensors[name] = Tensor(name, tuple(shape), dtype, quant, data)
        return name

    def op(self, kind, inputs, outputs, **attrs):
        self.ops.append(Op(kind, tuple(inputs), tuple(outputs), with_defaults(kind, attrs), name=f"{kind.lower()}",
                           index=len(self.ops)))

    def build(self) -> Graph:
        produced = {o for op in self.ops for o in op.outputs}
        read = {i for op in self.ops for i in op.inputs}
        inputs = tuple(n for n, t in self.tensors.items() if not t.is_const and n not in produced)
        outputs = tuple(n for n in self.tensors if n in produced and n not in read)
        return verify(Graph("g", self.tensors, tuple(self.ops), inputs, outputs))


def samples_for(t: Tensor, rng, n=N_SAMPLES):
    """Full-range values, values near the zero point, and the extremes."""
    vals = []
    for i in range(n):
        if t.dtype.is_float:
            vals.append((rng.normal(0, [0.5, 4, 30][i % 3], t.shape)).astype(np.float32))
            continue
        lo, hi = t.dtype.limits()
        lo, hi = max(lo, -(1 << 40)), min(hi, 1 << 40)
        zp = t.quant.zero_point[0] if t.quant is not None else 0
        if i % 3 == 0:
            v = rng.integers(lo, hi, t.shape, endpoint=True)
        elif i % 3 == 1:
            v = np.clip(zp + rng.integers(-20, 21, t.shape), lo, hi)
        else:
            v = rng.choice([lo, hi, zp, lo + 1, hi - 1], t.shape)
        vals.append(np.asarray(v).astype(t.dtype.np))
    return np.stack(vals)


def check(graph: Graph, tmp_path, seed=0, o2=True, feeds=None, float_tol=None) -> str:
    """Compile graph's C strictly (-O2 unless o2=False) and with sanitizers, run it, compare with the
    reference (float outputs in float_tol exactly unless listed). Returns the C source."""
    rng = np.random.default_rng(seed)
    samples = {name: samples_for(graph.tensors[name], rng) for name in graph.inputs}
    samples.update(feeds or {})
    plan = memory_planner.plan(graph)
    steps = lower(graph, plan, "m")
    project = c_emitter.emit(graph, plan, steps, tmp_path, "m")
    runs = [host.run_executable(host.compile_project(tmp_path, "m", opt="-O1", sanitize=True), graph, samples)]
    if o2:
        runs.append(host.run_executable(host.compile_project(tmp_path, "m"), graph, samples))
    want = reference.run_samples(graph, samples)
    for got in runs:
        for name in graph.outputs:
            g, w = got[name], want[name]
            if float_tol and name in float_tol:
                scale = max(float(np.abs(w).max()), 1e-30)
                assert float(np.abs(g.astype(np.float64) - w).max()) <= 1e-5 * scale, name
            else:
                bad = ~((g == w) | (np.isnan(g) & np.isnan(w)) if g.dtype.kind == "f" else (g == w))
                assert not bad.any(), (f"{name}: {np.count_nonzero(bad)}/{g.size} differ; first at "
                                       f"{np.argwhere(bad)[0]}: got {g[bad][:5]}, want {w[bad][:5]}")
    return project.source.read_text()


# -- ADD / SUB / MUL -------------------------------------------------------------------------------
BROADCASTS = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (5,)), ((3, 1, 5), (1, 4, 1))]


def test_binary_float(tmp_path):
    g = G()
    for k, (sa, sb) in enumerate(BROADCASTS):
        for kind, act in (("ADD", "NONE"), ("SUB", "RELU6"), ("MUL", "RELU_N1_TO_1")):
            a, b = g.t(f"a{k}{kind}", sa, F32), g.t(f"b{k}{kind}", sb, F32)
            g.op(kind, (a, b), (g.t(f"y{k}{kind}", np.broadcast_shapes(sa, sb), F32),), activation=act)
    g.t("c", (4,), F32, data=[0.5, -1.0, 2.0, 1e-3])
    x = g.t("x", (2, 3, 4), F32)
    g.op("MUL", (x, "c"), (g.t("yc", (2, 3, 4), F32),), activation="RELU")
    check(g.build(), tmp_path)


def test_binary_int8(tmp_path):
    """TFLM recipes, broadcasting, extreme zero points, saturation, fused activations, const operands."""
    g = G()
    cases = [
        ("ADD", pt(0.05, 3), pt(0.07, -10), pt(0.1, -2), "RELU"),
        ("ADD", pt(0.02, -128), pt(0.5, 127), pt(0.01, 127), "NONE"),   # saturates both ways
        ("SUB", pt(0.05, 0), pt(0.05, 0), pt(0.05, 0), "RELU6"),
        ("SUB", pt(1e-3, 100), pt(0.2, -100), pt(0.05, -128), "NONE"),
        ("MUL", pt(0.05, 3), pt(0.07, -10), pt(0.1, -2), "NONE"),
        ("MUL", pt(0.5, -128), pt(0.5, 127), pt(0.01, 5), "RELU_N1_TO_1"),
    ]
    for k, (kind, qa, qb, qy, act) in enumerate(cases):
        sa, sb = BROADCASTS[k % len(BROADCASTS)]
        a, b = g.t(f"a{k}", sa, I8, qa), g.t(f"b{k}", sb, I8, qb)
        g.op(kind, (a, b), (g.t(f"y{k}", np.broadcast_shapes(sa, sb), I8, qy),), activation=act)
    # uint8 and a const operand on either side
    g.op("ADD", (g.t("u", (2, 4), U8, pt(0.1, 128)), g.t("uc", (4,), U8, pt(0.2, 7), data=[0, 7, 200, 255])),
         (g.t("uy", (2, 4), U8, pt(0.15, 120)),))
    g.op("SUB", (g.t("sc", (3,), I8, pt(0.03, -5), data=[-128, 0, 127]), g.t("s", (2, 3), I8, pt(0.04, 9))),
         (g.t("sy", (2, 3), I8, pt(0.06, 1)),))
    g.op("MUL", (g.t("m", (2, 3), I8, pt(0.04, 9)), g.t("mc", (3,), I8, pt(0.03, -5), data=[-128, 0, 127])),
         (g.t("my", (2, 3), I8, pt(0.02, 1)),))
    src = check(g.build(), tmp_path)
    assert "scaled: requantize" in src  # the const operand of ADD/SUB is scaled at build time


def test_binary_int16(tmp_path):
    g = G()
    cases = [
        ("ADD", pt(1e-4), pt(3e-4), pt(4e-4), "NONE"),
        ("ADD", pt(1e-4, 1000), pt(3e-4, -2000), pt(2e-4, 5), "RELU"),   # zero points: the wrapping path
        ("SUB", pt(2e-4), pt(1e-4), pt(1e-4), "RELU6"),
        ("MUL", pt(1e-3), pt(2e-3), pt(3e-2), "NONE"),
        ("MUL", pt(1e-2), pt(1e-2), pt(1e-4), "RELU"),                    # saturates
    ]
    for k, (kind, qa, qb, qy, act) in enumerate(cases):
        sa, sb = BROADCASTS[k % len(BROADCASTS)]
        a, b = g.t(f"a{k}", sa, I16, qa), g.t(f"b{k}", sb, I16, qb)
        g.op(kind, (a, b), (g.t(f"y{k}", np.broadcast_shapes(sa, sb), I16, qy),), activation=act)
    # 16-bit inputs into an 8-bit output: shifted by 20, (x - zp) << 20 wraps in int32 as in TFLM
    g.op("ADD", (g.t("w1", (4, 5), I16, pt(1e-3, -3000)), g.t("w2", (4, 5), I16, pt(2e-3, 5000))),
         (g.t("wy", (4, 5), I8, pt(0.05, 1)),))
    g.op("SUB", (g.t("v1", (4, 5), I16, pt(1e-3, 0)), g.t("v2", (4, 5), I8, pt(2e-3, 5))),
         (g.t("vy", (4, 5), I8, pt(0.05, 1)),))
    check(g.build(), tmp_path)


def test_binary_plain_integers(tmp_path):
    """No quant params (or 32-bit tensors): wrapping arithmetic in the output type."""
    g = G()
    k = 0
    for dt in (I8, U8, I16, DType.UINT16, I32, DType.UINT32, I64, DType.UINT64):
        for kind, act in (("ADD", "RELU"), ("SUB", "RELU6"), ("MUL", "NONE")):
            if dt == DType.UINT64 and act != "NONE":
                continue
            sa, sb = BROADCASTS[k % len(BROADCASTS)]
            a, b = g.t(f"a{k}", sa, dt), g.t(f"b{k}", sb, dt)
            g.op(kind, (a, b), (g.t(f"y{k}", np.broadcast_shapes(sa, sb), dt),), activation=act)
            k += 1
    # int32 with quant params: TFLM's int32 kernels ignore them
    g.op("MUL", (g.t("q1", (3, 4), I32, pt(0.5)), g.t("q2", (4,), I32, pt(0.25))), (g.t("qy", (3, 4), I32, pt(1.0)),),
         activation="RELU")
    check(g.build(), tmp_path)


def test_elementwise_in_place(tmp_path):
    """Chains whose outputs the planner places over a dying input: the kernels read x[i] before writing y[i]."""
    g = G()
    q = pt(0.05, 2)
    g.t("a", (64,), I8, q), g.t("b", (64,), I8, pt(0.04, -3)), g.t("v", (64,), I8, pt(0.06, 1))
    g.op("ADD", ("a", "b"), (g.t("s", (64,), I8, pt(0.07, 0)),))
    g.op("MUL", ("s", "v"), (g.t("m", (64,), I8, pt(0.1, -1)),))
    g.op("LEAKY_RELU", ("m",), (g.t("l", (64,), I8, pt(0.08, 4)),), alpha=0.1)
    g.op("CLIP", ("l",), (g.t("c", (64,), I8, pt(0.05, 0)),), min=-1.0, max=2.0)
    g.op("QUANTIZE", ("c",), (g.t("u", (64,), U8, pt(0.05, 128)),))
    g.op("QUANTIZE", ("u",), (g.t("z", (64,), I8, pt(0.09, -7)),))
    graph = g.build()
    plan = memory_planner.plan(graph)
    assert len({plan.offsets[n] for n in ("s", "m", "l", "c", "u", "z")}) <= 2  # really in place
    check(graph, tmp_path)


# -- CLIP / LEAKY_RELU -----------------------------------------------------------------------------
def test_clip_and_leaky_relu(tmp_path):
    g = G()
    shape = (3, 7)
    clips = [
        (F32, None, F32, None, 0.0, None), (F32, None, F32, None, -1.5, 2.25), (F32, None, F32, None, None, 0.5),
        (I8, pt(0.05, 3), I8, pt(0.05, 3), 0.0, 6.0),            # equal params: no requantization
        (I8, pt(0.05, 3), I8, pt(0.03, -100), -1.0, None),       # requantized
        (I8, pt(0.5, -128), I8, pt(0.001, 127), 0.0, 0.1),       # saturating
        (I16, pt(1e-3), I16, pt(2e-3), -10.0, 10.0),
        (U8, pt(0.1, 128), U8, pt(0.1, 128), 0.0, 6.0),
        (I32, None, I32, None, -3.5, 100.2), (I8, None, I8, None, 5.0, 2.0),   # plain ints; empty range
        (I16, None, I16, None, None, 7.9),
    ]
    for k, (dx, qx, dy, qy, lo, hi) in enumerate(clips):
        g.op("CLIP", (g.t(f"cx{k}", shape, dx, qx),), (g.t(f"cy{k}", shape, dy, qy),), min=lo, max=hi)
    leaky = [(F32, None, F32, None, 0.2), (I8, pt(0.05, 3), I8, pt(0.04, -5), 0.1),
             (I8, pt(0.1, -128), I8, pt(0.01, 127), 1.5), (I16, pt(1e-3), I16, pt(5e-4), 0.3),
             (I16, pt(1e-3, 7), I16, pt(1e-3, -9), -0.5)]
    for k, (dx, qx, dy, qy, alpha) in enumerate(leaky):
        g.op("LEAKY_RELU", (g.t(f"lx{k}", shape, dx, qx),), (g.t(f"ly{k}", shape, dy, qy),), alpha=alpha)
    check(g.build(), tmp_path)


# -- QUANTIZE / DEQUANTIZE -------------------------------------------------------------------------
def test_quantize_dequantize(tmp_path):
    g = G()
    shape = (2, 3, 4)
    outs = [(I8, pt(0.05, 3)), (I8, pt(0.25, -128)), (I16, pt(1e-3)), (U8, pt(0.02, 128)),
            (I8, pc([0.1, 0.05, 0.2], 1, [1, -2, 0])), (I16, pc([1e-3, 2e-3, 1e-4, 5e-4], 2))]
    for k, (dt, q) in enumerate(outs):
        for rounding in ("half_away", "half_even"):
            g.op("QUANTIZE", (g.t(f"f{k}{rounding}", shape, F32),), (g.t(f"q{k}{rounding}", shape, dt, q),),
                 rounding=rounding)
    requants = [(I8, pt(0.05, 3), I8, pt(0.03, -5)), (I16, pt(1e-3), I8, pt(0.05, 2)), (I8, pt(0.05, 3), I16, pt(1e-4)),
                (I8, pt(0.1, 0), U8, pt(0.1, 128)), (U8, pt(0.1, 128), I8, pt(0.1, 0)),
                (I8, pc([0.1, 0.05, 0.2], 1), I8, pt(0.07, 4)),
                (I8, pt(0.05, 3), I8, pc([0.01, 0.5, 0.07], 1, [3, -4, 0]))]
    for k, (dx, qx, dy, qy) in enumerate(requants):
        for rounding in ("half_away", "half_even"):
            g.op("QUANTIZE", (g.t(f"r{k}{rounding}", shape, dx, qx),), (g.t(f"ry{k}{rounding}", shape, dy, qy),),
                 rounding=rounding)
    deqs = [(I8, pt(0.05, 3)), (U8, pt(0.02, 128)), (I16, pt(1e-3, 0)), (I32, pt(1e-5, 7)),
            (I8, pc([0.1, 0.05, 0.2], 1, [1, -2, 0]))]
    for k, (dt, q) in enumerate(deqs):
        g.op("DEQUANTIZE", (g.t(f"d{k}", shape, dt, q),), (g.t(f"dy{k}", shape, F32),))
    graph = g.build()
    # Exact ties and near-ties of x / scale: 0.5 steps, 0.49999997 and values far outside the range.
    rng = np.random.default_rng(5)
    feeds = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        if t.dtype.is_float:
            base = samples_for(t, rng)
            scale = np.float32(graph.tensors[name.replace("f", "q", 1)].quant.scale[0])
            ties = (rng.integers(-300, 300, t.shape) + 0.5).astype(np.float32) * scale
            near = np.float32(0.49999997) * scale * np.sign(rng.normal(size=t.shape)).astype(np.float32)
            huge = rng.choice([3e9, -3e9, 1e30, -1e30, 70000.0], t.shape).astype(np.float32)
            feeds[name] = np.concatenate([base, np.stack([ties, near, huge])])
        else:
            feeds[name] = samples_for(t, rng, N_SAMPLES + 3)
    check(graph, tmp_path, feeds=feeds)


# -- pooling and MEAN ------------------------------------------------------------------------------
def pool_case(g, k, kind, shape, dtype, q, kernel, strides, pads, act="NONE", include=False, dil=None):
    nd = len(kernel)
    out = []
    for i in range(nd):
        span = (kernel[i] - 1) * (dil[i] if dil else 1) + 1
        out.append((shape[1 + i] + pads[i] + pads[nd + i] - span) // strides[i] + 1)
    attrs = dict(kernel=tuple(kernel), strides=tuple(strides), pads=tuple(pads), activation=act)
    if dil:
        attrs["dilations"] = tuple(dil)
    if kind == "AVERAGE_POOL":
        attrs["count_include_pad"] = include
    x = g.t(f"px{k}", shape, dtype, q)
    g.op(kind, (x,), (g.t(f"py{k}", (shape[0], *out, shape[-1]), dtype, q),), **attrs)
    return f"py{k}"


POOLS = [  # kernel, strides, pads, activation, count_include_pad, dilations
    ((2, 2), (2, 2), (0, 0, 0, 0), "NONE", False, None),
    ((3, 3), (2, 2), (1, 1, 1, 1), "RELU", False, None),
    ((3, 3), (1, 1), (1, 1, 1, 1), "NONE", True, None),
    ((3, 2), (2, 1), (0, 1, 2, 1), "RELU6", True, None),         # uneven pads, end pads past the input
    ((2, 3), (1, 2), (1, 0, 1, 2), "NONE", False, (2, 1)),       # dilation
]


@pytest.mark.parametrize("dtype,q", [(I8, pt(0.05, -3)), (I16, pt(1e-3)), (U8, pt(0.1, 128)), (F32, None)],
                         ids=["int8", "int16", "uint8", "float"])
def test_pools(tmp_path, dtype, q):
    g = G()
    tol = set()
    for k, (kernel, strides, pads, act, include, dil) in enumerate(POOLS):
        shape = (2, 7, 6, 3) if k % 2 else (1, 8, 5, 4)
        pool_case(g, f"m{k}", "MAX_POOL", shape, dtype, q, kernel, strides, pads, act, dil=dil)
        tol.add(pool_case(g, f"a{k}", "AVERAGE_POOL", shape, dtype, q, kernel, strides, pads, act, include, dil))
    tol.add(pool_case(g, "a1d", "AVERAGE_POOL", (1, 9, 2), dtype, q, (3,), (2,), (1, 1), include=True))
    pool_case(g, "m1d", "MAX_POOL", (1, 9, 2), dtype, q, (3,), (2,), (1, 1))
    # pads past the kernel: windows entirely in the padding average to 0 (the zero point), max to the lowest
    tol.add(pool_case(g, "ae", "AVERAGE_POOL", (1, 3, 3, 2), dtype, q, (2, 2), (1, 1), (3, 0, 0, 3), "RELU"))
    if dtype.is_int:
        pool_case(g, "me", "MAX_POOL", (1, 3, 3, 2), dtype, q, (2, 2), (1, 1), (3, 0, 0, 3))
    check(g.build(), tmp_path, float_tol=tol if dtype.is_float else None)


@pytest.mark.parametrize("dtype,q", [(I8, pt(0.05, -3)), (F32, None)], ids=["int8", "float"])
def test_pools_over_their_input(tmp_path, dtype, q):
    """The planner places a pool's output over its input where the write order allows (overlap.py): the
    kernels store each output element after all its loads, in increasing address order."""
    g = G()
    g.op("MAX_POOL", (g.t("x", (1, 12, 12, 8), dtype, q),), (g.t("p", (1, 6, 6, 8), dtype, q),), kernel=(2, 2),
         strides=(2, 2))
    g.op("AVERAGE_POOL", ("p",), (g.t("a", (1, 6, 6, 8), dtype, q),), kernel=(3, 3), strides=(1, 1),
         pads=(1, 1, 1, 1))
    g.op("AVERAGE_POOL", ("a",), (g.t("b", (1, 3, 3, 8), dtype, q),), kernel=(3, 3), strides=(2, 2),
         pads=(1, 1, 1, 1), count_include_pad=True)
    graph = g.build()
    assert {(o.input, o.output) for o in memory_planner.plan(graph).overlaps} == {("x", "p"), ("a", "b")}
    check(graph, tmp_path, float_tol={"b"} if dtype.is_float else None)


def test_mean(tmp_path):
    g = G()
    cases = [  # shape, axes, keepdims output shape, in dtype/params, out params
        ((1, 5, 6, 4), (1, 2), (1, 1, 1, 4), I8, pt(0.05, 3), pt(0.02, -7)),
        ((1, 5, 6, 4), (1, 2), (1, 4), I8, pt(0.05, 3), pt(0.05, 3)),          # equal params
        ((2, 3, 4), (-1,), (2, 3), I16, pt(1e-3), pt(5e-4)),
        ((2, 3, 4), (0, 2), (3,), I8, pt(0.1, -128), pt(0.001, 127)),          # saturating
        ((3, 50), (1,), (3, 1), U8, pt(0.1, 128), pt(0.05, 100)),
        ((2, 3, 4), (0, 1, 2), (1, 1, 1), I32, None, None),                     # plain integers
        ((2, 3, 4), (1,), (2, 4), I8, None, None),
        ((1, 5, 6, 4), (1, 2), (1, 1, 1, 4), F32, None, None),
        ((2, 3, 4), (0,), (3, 4), F32, None, None),
    ]
    tol = set()
    for k, (shape, axes, oshape, dt, qx, qy) in enumerate(cases):
        g.op("MEAN", (g.t(f"x{k}", shape, dt, qx),), (g.t(f"y{k}", oshape, dt, qy),), axes=axes)
        if dt.is_float:
            tol.add(f"y{k}")
    check(g.build(), tmp_path, float_tol=tol)


# -- data movement ---------------------------------------------------------------------------------
def test_transpose_slice_split(tmp_path):
    g = G()
    for k, (perm, dt) in enumerate([((0, 3, 1, 2), I8), ((0, 2, 3, 1), F32), ((3, 2, 1, 0), I16), ((0, 1, 3, 2), U8)]):
        shape = (2, 3, 4, 5)
        g.op("TRANSPOSE", (g.t(f"tx{k}", shape, dt, pt(0.1, 1) if dt.is_int else None),),
             (g.t(f"ty{k}", tuple(shape[p] for p in perm), dt, pt(0.1, 1) if dt.is_int else None),), perm=perm)
    slices = [((0, 1, None), (None, 3, None), (1, 1, 2)), ((None, -1), (None, None), (1, -1)),
              ((4, 3), (0, None), (-2, -1)), ((1,), (2,), (1,)), ((-1, 0, 1), (None, 4, None), (-3, 1, 3))]
    for k, (b, e, s) in enumerate(slices):
        x = np.zeros((5, 4, 6))
        shape = x[tuple(slice(*v) for v in zip(b, e, s))].shape
        g.op("SLICE", (g.t(f"sx{k}", (5, 4, 6), [I8, F32, I16, I32, U8][k]),),
             (g.t(f"sy{k}", shape, [I8, F32, I16, I32, U8][k]),), begin=b, end=e, strides=s)
    for k, (axis, sizes) in enumerate([(1, (1, 3, 2)), (-1, (2, 4)), (0, (3,))]):
        shape = (3, 6, 6)
        outs = []
        for j, size in enumerate(sizes):
            oshape = list(shape)
            oshape[axis] = size
            outs.append(g.t(f"spy{k}_{j}", oshape, I8, pt(0.1)))
        g.op("SPLIT", (g.t(f"spx{k}", shape, I8, pt(0.1)),), outs, axis=axis, sizes=sizes)
    check(g.build(), tmp_path)


def test_concatenation(tmp_path):
    g = G()
    q = pt(0.05, 3)
    g.op("CONCATENATION", (g.t("c0", (2, 3, 4), I8, q), g.t("c1", (2, 1, 4), I8, q), g.t("c2", (2, 2, 4), I8, q)),
         (g.t("cy", (2, 6, 4), I8, q),), axis=1)
    # differing params: requantized (TFLite ConcatenationWithScaling), plus a fused activation and a const
    g.op("CONCATENATION", (g.t("d0", (2, 3), I8, pt(0.05, 3)), g.t("d1", (2, 2), I8, pt(0.013, -100)),
                           g.t("d2", (2, 2), I8, pt(0.2, 0), data=[[-128, 127], [5, 0]])),
         (g.t("dy", (2, 7), I8, pt(0.04, -10)),), axis=-1, activation="RELU")
    g.op("CONCATENATION", (g.t("e0", (3, 2), I16, pt(1e-3)), g.t("e1", (3, 2), I16, pt(3e-3))),
         (g.t("ey", (6, 2), I16, pt(2e-3)),), axis=0)
    g.op("CONCATENATION", (g.t("f0", (1, 2, 2), F32), g.t("f1", (1, 2, 3), F32)), (g.t("fy", (1, 2, 5), F32),),
         axis=2, activation="RELU6")
    g.op("CONCATENATION", (g.t("u0", (2, 2), U8, pt(0.1, 128)), g.t("u1", (2, 2), U8, pt(0.05, 100))),
         (g.t("uy", (2, 4), U8, pt(0.1, 128)),), axis=1)
    check(g.build(), tmp_path)


def test_pad_and_resize(tmp_path):
    g = G()
    pads = [((0, 0), (1, 2), (2, 1), (0, 0)), ((1, 0), (0, 0), (0, 3), (1, 1)), ((0, 0), (0, 0), (0, 0), (0, 0))]
    k = 0
    for p in pads:
        for mode in ("constant", "reflect", "edge", "wrap"):
            dt = [I8, F32, I16, U8][k % 4]
            shape = (2, 4, 5, 3)
            oshape = tuple(n + b + a for n, (b, a) in zip(shape, p))
            value = {I8: -128, F32: 1.5, I16: 7, U8: 128}[dt] if mode == "constant" else 0
            g.op("PAD", (g.t(f"px{k}", shape, dt),), (g.t(f"py{k}", oshape, dt),), pads=p, mode=mode, value=value)
            k += 1
    g.op("PAD", (g.t("pl", (1, 3, 2), I8),), (g.t("ply", (1, 11, 2), I8),), pads=((0, 0), (4, 4), (0, 0)),
         mode="reflect")   # pads larger than the axis: repeated reflection
    resizes = [((1, 3, 4, 2), (1, 6, 8, 2), False, False), ((1, 3, 4, 2), (1, 7, 5, 2), False, False),
               ((2, 3, 4, 2), (2, 6, 9, 2), True, False), ((1, 3, 4, 2), (1, 6, 8, 2), False, True),
               ((1, 5, 4, 1), (1, 2, 3, 1), True, True)]
    for k, (shape, oshape, align, half) in enumerate(resizes):
        dt = [I8, F32, I16][k % 3]
        g.op("RESIZE_NEAREST_NEIGHBOR", (g.t(f"rx{k}", shape, dt),), (g.t(f"ry{k}", oshape, dt),),
             align_corners=align, half_pixel_centers=half)
    src = check(g.build(), tmp_path)
    assert "oy / 2" in src  # integer upscaling needs no table


# -- property tests --------------------------------------------------------------------------------
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@st.composite
def broadcast_pair(draw):
    rank = draw(st.integers(1, 4))
    out = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    shapes = []
    for _ in range(2):
        r = draw(st.integers(1, rank))
        shapes.append(tuple(n if draw(st.booleans()) else 1 for n in out[rank - r:]))
    return shapes


@given(shapes=broadcast_pair(), kind=st.sampled_from(["ADD", "MUL", "SUB"]),
       dtype=st.sampled_from([I8, I16, F32, I32]), zps=st.tuples(st.integers(-128, 127), st.integers(-128, 127)),
       scales=st.tuples(*[st.floats(1e-3, 1.0) for _ in range(3)]), seed=st.integers(0, 100))
@SETTINGS
def test_binary_broadcast_property(tmp_path_factory, shapes, kind, dtype, zps, scales, seed):
    tmp_path = tmp_path_factory.mktemp("bin")
    g = G()
    quant = dtype in (I8, I16)
    zp = (0, 0, 0) if dtype == I16 or not quant else (*zps, zps[0] // 2)
    qs = [pt(s if dtype == I8 else s / 100, z) if quant else None for s, z in zip(scales, zp)]
    sa, sb = shapes
    g.op(kind, (g.t("a", sa, dtype, qs[0]), g.t("b", sb, dtype, qs[1])),
         (g.t("y", np.broadcast_shapes(sa, sb), dtype, qs[2]),))
    check(g.build(), tmp_path, seed=seed, o2=False)


@given(kind=st.sampled_from(["MAX_POOL", "AVERAGE_POOL"]), dtype=st.sampled_from([I8, I16, F32]),
       hw=st.tuples(st.integers(1, 7), st.integers(1, 7)), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       strides=st.tuples(st.integers(1, 3), st.integers(1, 3)), pads=st.tuples(*[st.integers(0, 2)] * 4),
       include=st.booleans(), zp=st.integers(-128, 127), seed=st.integers(0, 100))
@SETTINGS
def test_pool_property(tmp_path_factory, kind, dtype, hw, kernel, strides, pads, include, zp, seed):
    tmp_path = tmp_path_factory.mktemp("pool")
    # Windows must overlap the input (pads smaller than the kernel), as every real model's do.
    pads = tuple(min(p, kernel[i % 2] - 1) for i, p in enumerate(pads))
    if any(hw[i] + pads[i] + pads[2 + i] < kernel[i] for i in range(2)):
        return
    g = G()
    q = pt(0.05, zp if dtype == I8 else 0) if dtype.is_int else None
    out = pool_case(g, "", kind, (1, *hw, 2), dtype, q, kernel, strides, pads, include=include)
    check(g.build(), tmp_path, seed=seed, o2=False, float_tol={out} if dtype.is_float else None)
