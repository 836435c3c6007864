"""The .tflite writer (microgen.exporters) and the demo model (examples/make_demo_model.py).

- the demo model: written -> read back gives the same graph; TFLM runs it; reference.run == TFLM;
  its outputs are not saturated; the script is deterministic and small;
- real corpus models: import -> write -> import gives the same graph, and TFLM gives bit-identical
  outputs for the original and the re-written file;
- writer lowerings TFLite has no one-to-one op for (explicit pads -> PAD + VALID, slices with negative
  strides, unequal splits, PADV2, ...): TFLM on the written file == reference.run on the graph;
- graphs TFLite cannot express raise one UnsupportedOpError naming every op.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tflite

from microgen import reference
from microgen.errors import MicrogenError, UnsupportedOpError
from microgen.exporters import tflite_bytes, write_tflite
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.ops import with_defaults
from microgen.importers import load
from microgen.testing.corpus import require_model, seeded_inputs
from microgen.testing.oracles import tflm_run

REPO = Path(__file__).resolve().parents[2]
DEMO_SCRIPT = REPO / "examples" / "make_demo_model.py"


def _demo_module():
    spec = importlib.util.spec_from_file_location("make_demo_model", DEMO_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_graph() -> Graph:
    return _demo_module().make_demo_graph(0)


@pytest.fixture(scope="module")
def demo_file(demo_graph, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.tflite"
    write_tflite(demo_graph, path)
    return path


# -- comparing graphs --------------------------------------------------------------------------------
def _norm(value):
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(op: Op, graph: Graph) -> dict:
    """An op's attributes, with SLICE bounds as the indices they select (x[5:0:-2] == x[5:-7:-2])."""
    attrs = {k: _norm(v) for k, v in op.attrs.items()}
    if op.kind == "SLICE":
        shape = graph.tensors[op.inputs[0]].shape
        picks = [tuple(range(n)[slice(b, e, s)]) for n, b, e, s in
                 zip(shape, attrs.pop("begin"), attrs.pop("end"), attrs.pop("strides"))]
        attrs["picks"] = tuple(picks + [tuple(range(n)) for n in shape[len(picks):]])
    return attrs


def assert_same_graph(a: Graph, b: Graph) -> None:
    """Same ops (kind, operands, attributes), graph inputs/outputs and, for every tensor an op or the
    graph uses, the same shape, dtype, quantization params and constant data."""
    assert (a.inputs, a.outputs) == (b.inputs, b.outputs)
    assert [op.kind for op in a.ops] == [op.kind for op in b.ops]
    for x, y in zip(a.ops, b.ops):
        assert (x.inputs, x.outputs) == (y.inputs, y.outputs), x.where()
        assert _attrs(x, a) == _attrs(y, b), x.where()
    used = set(a.inputs) | set(a.outputs) | {n for op in a.ops for n in op.inputs + op.outputs if n}
    for name in sorted(used):
        ta, tb = a.tensors[name], b.tensors[name]
        assert (ta.shape, ta.dtype, ta.quant) == (tb.shape, tb.dtype, tb.quant), name
        assert ta.is_const == tb.is_const, name
        if ta.is_const:
            assert ta.data.dtype == tb.data.dtype and np.array_equal(ta.data, tb.data), name


# -- the demo model ----------------------------------------------------------------------------------
def test_demo_model_reads_back_as_the_same_graph(demo_graph, demo_file):
    back = load(demo_file)
    assert_same_graph(demo_graph, back)
    assert [op.kind for op in back.ops] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                            "CONV_2D", "AVERAGE_POOL", "RESHAPE", "FULLY_CONNECTED",
                                            "SOFTMAX"]
    inp, out = back.tensors["input"], back.tensors["output"]
    assert (inp.shape, inp.dtype, out.shape, out.dtype) == ((1, 49, 10, 1), DType.INT8, (1, 12), DType.INT8)
    assert out.quant == QuantParams.per_tensor(1 / 256, -128)
    w = back.tensors["conv1/weights"]
    assert w.shape == (24, 10, 4, 1) and w.quant.axis == 0 and w.data.min() >= -127
    assert back.tensors["dw1/weights"].quant.axis == 3
    # Writing what was read gives the same bytes (names, order and layout survive the round trip).
    assert tflite_bytes(back) == demo_file.read_bytes()


def test_demo_model_file_layout(demo_file):
    data = demo_file.read_bytes()
    assert data[4:8] == b"TFL3" and len(data) < 30 * 1024
    model = tflite.Model.GetRootAsModel(data, 0)
    assert model.Version() == 3 and model.SubgraphsLength() == 1
    assert model.Buffers(0).DataLength() == 0
    codes = [(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).Version())
             for i in range(model.OperatorCodesLength())]
    B = tflite.BuiltinOperator
    assert codes == [(B.CONV_2D, 3), (B.DEPTHWISE_CONV_2D, 3), (B.AVERAGE_POOL_2D, 2), (B.RESHAPE, 1),
                     (B.FULLY_CONNECTED, 4), (B.SOFTMAX, 2)]
    sg = model.Subgraphs(0)
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        if t.Buffer():  # a constant: its data starts 16-byte aligned in the file
            buf = model.Buffers(t.Buffer())
            assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0, t.Name()
    reshape = sg.Operators(6)
    shape_tensor = sg.Tensors(reshape.Inputs(1))
    assert model.Buffers(shape_tensor.Buffer()).DataAsNumpy().view(np.int32).tolist() == [1, 24]


def test_demo_model_tflm_equals_reference(demo_graph, demo_file):
    x = seeded_inputs(demo_graph.tensors["input"], 20, seed=1)
    tflm = tflm_run(str(demo_file), [x]).outputs[0]
    ours = reference.run_samples(demo_graph, {"input": x})["output"]
    np.testing.assert_array_equal(ours, tflm)


def test_demo_model_round_trip_runs_bit_exact(demo_file, tmp_path):
    again = tmp_path / "again.tflite"
    write_tflite(load(demo_file), again)
    g = load(demo_file)
    x = seeded_inputs(g.tensors["input"], 20, seed=2)
    np.testing.assert_array_equal(tflm_run(str(demo_file), [x]).outputs[0],
                                  tflm_run(str(again), [x]).outputs[0])


def test_demo_model_is_not_saturated(demo_graph, demo_file):
    x = seeded_inputs(demo_graph.tensors["input"], 20, seed=3)
    result = tflm_run(str(demo_file), [x], preserve_all=True)
    out = result.outputs[0].reshape(20, 12)
    assert len({row.tobytes() for row in out}) >= 15          # the outputs vary across inputs
    assert (out.std(axis=0) > 0).all()                        # every class moves
    assert (out.max(axis=1) < 127).sum() >= 15                # mostly not one-hot
    names = [tflite.Model.GetRootAsModel(demo_file.read_bytes(), 0).Subgraphs(0).Tensors(i).Name().decode()
             for i in range(len(result.tensors))]
    for layer in ("conv1", "dw1", "pw1", "dw2", "pw2", "logits"):
        acts = result.tensors[names.index(layer)]
        assert (acts == 127).mean() < 0.005, layer            # the RELU ranges hold typical inputs
        assert acts.max() > 0, layer                          # ... and reach the upper half of int8


def test_demo_script_is_deterministic(tmp_path, demo_file):
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        path = tmp_path / f"{name}.tflite"
        proc = subprocess.run([sys.executable, str(DEMO_SCRIPT), str(path), "--seed", str(seed)],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"wrote {path}: ")
        outs.append(path.read_bytes())
    assert outs[0] == outs[1] == demo_file.read_bytes()
    assert outs[2] != outs[0] and len(outs[2]) < 30 * 1024


# -- corpus round trips ------------------------------------------------------------------------------
ROUND_TRIP = [
    "mlperf_tiny/kws_ref_model.tflite", "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite", "mlperf_tiny/ad01_int8.tflite",
    "extra/activations_fc_int8.tflite", "extra/add_mul_concat_int8.tflite", "extra/conv_dw_fc_int16x8.tflite",
    "extra/conv_dw_fc_per_tensor_int8.tflite", "extra/conv_dw_fc_uint8_io.tflite",
    "extra/pad_conv_mean_fc_int8.tflite", "extra/split_slice_transpose_conv1d_int8.tflite",
    "extra/transpose_conv_upsample_int8.tflite",
    "tflm/seanet_int16/transpose_conv4.tflite", "tflm/seanet_int16/strided_slice0.tflite",
    "digits/digits_cnn_float.tflite", "tflm/hello_world_float.tflite",
]


@pytest.mark.parametrize("rel", ROUND_TRIP)
def test_corpus_model_round_trip(rel, tmp_path):
    src = require_model(rel)
    graph = load(src)
    out = tmp_path / Path(rel).name
    write_tflite(graph, out)
    back = load(out)
    assert_same_graph(graph, back)
    assert tflite_bytes(back) == out.read_bytes()
    n = 20 if rel == "mlperf_tiny/kws_ref_model.tflite" else 4
    inputs = [seeded_inputs(graph.tensors[name], n, seed=4) for name in graph.inputs]
    if rel.endswith("transpose_conv4.tflite"):  # input 0 is the int32 output-shape operand
        inputs[0] = np.broadcast_to(np.asarray(graph.tensors[graph.outputs[0]].shape, np.int32),
                                    inputs[0].shape).copy()
    want, got = tflm_run(str(src), inputs), tflm_run(str(out), inputs)
    for a, b in zip(want.outputs, got.outputs):
        np.testing.assert_array_equal(a, b)


def test_hybrid_model_is_written_as_a_float_model_tflm_runs(tmp_path):
    """kws_ref_model_float32 has int8 conv weights with float activations, which TFLM refuses; the
    importer dequantizes them, and the written pure-float model runs."""
    graph = load(require_model("mlperf_tiny/kws_ref_model_float32.tflite"))
    out = tmp_path / "kws_float.tflite"
    write_tflite(graph, out)
    x = seeded_inputs(graph.tensors[graph.inputs[0]], 4, seed=5)
    got = tflm_run(str(out), [x]).outputs[0]
    want = reference.run_samples(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


# -- lowerings without a one-to-one TFLite op --------------------------------------------------------
def Q(scale: float, zero_point: int) -> QuantParams:
    """Per-tensor params with a float32 scale: a .tflite file stores float32 scales, and the requantizing
    kernels derive their multipliers from the stored value."""
    return QuantParams.per_tensor(float(np.float32(scale)), zero_point)


def _graph(name: str, tensors: list[Tensor], ops: list[tuple], inputs, outputs) -> Graph:
    built = [Op(kind, tuple(ins), tuple(outs), with_defaults(kind, attrs), name=outs[0], index=i)
             for i, (kind, ins, outs, attrs) in enumerate(ops)]
    return verify(Graph(name, {t.name: t for t in tensors}, tuple(built), tuple(inputs), tuple(outputs)))


def _conv_weights(rng, name: str, shape: tuple, axis: int, in_scale: float) -> list[Tensor]:
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    scales = tuple(float(np.float32(s)) for s in rng.uniform(0.002, 0.01, size=shape[axis]))
    bias_scales = tuple(float(np.float32(in_scale) * np.float32(s)) for s in scales)
    n = shape[axis]
    return [Tensor(f"{name}/w", shape, DType.INT8, QuantParams(scales, (0,) * n, axis), w),
            Tensor(f"{name}/b", (n,), DType.INT32, QuantParams(bias_scales, (0,) * n, 0),
                   rng.integers(-500, 500, size=n).astype(np.int32))]


def _check_against_reference(graph: Graph, tmp_path, n: int = 20, reload: bool = True) -> Graph | None:
    """Write the graph; TFLM on the file must equal reference.run on the graph, output by output.
    Returns the file read back (reload=False: for ops the TFLite importer does not read)."""
    path = tmp_path / f"{graph.name}.tflite"
    write_tflite(graph, path)
    inputs = {name: seeded_inputs(graph.tensors[name], n, seed=11) for name in graph.inputs}
    tflm = tflm_run(str(path), [inputs[name] for name in graph.inputs])
    ours = reference.run_samples(graph, inputs)
    for name, got in zip(graph.outputs, tflm.outputs):
        np.testing.assert_array_equal(ours[name], got, err_msg=name)
    return load(path) if reload else None


def test_explicit_pads_become_pad_ops(tmp_path):
    rng = np.random.default_rng(0)
    xq, cq = Q(0.05, -3), Q(0.1, -20)
    tensors = [Tensor("x", (1, 8, 8, 3), DType.INT8, xq), Tensor("c", (1, 4, 4, 8), DType.INT8, cq),
               Tensor("dw", (1, 2, 2, 8), DType.INT8, Q(0.08, 5)),
               Tensor("maxp", (1, 2, 2, 8), DType.INT8, cq), Tensor("avgp", (1, 4, 4, 8), DType.INT8, cq),
               Tensor("same", (1, 4, 4, 8), DType.INT8, cq),
               *_conv_weights(rng, "conv", (8, 3, 3, 3), 0, xq.s),
               *_conv_weights(rng, "dwc", (1, 3, 3, 8), 3, cq.s)]
    ops = [
        # PyTorch-style symmetric pads on stride 2: neither SAME (begin 0) nor VALID.
        ("CONV_2D", ("x", "conv/w", "conv/b"), ("c",),
         dict(strides=(2, 2), pads=(1, 1, 1, 1), activation="RELU")),
        ("DEPTHWISE_CONV_2D", ("c", "dwc/w", "dwc/b"), ("dw",), dict(strides=(2, 2), pads=(1, 1, 1, 1))),
        ("MAX_POOL", ("c",), ("maxp",), dict(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))),
        # Counting padded cells: never TFLite SAME, always an explicit PAD.
        ("AVERAGE_POOL", ("c",), ("avgp",), dict(kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1),
                                                 count_include_pad=True)),
        ("AVERAGE_POOL", ("c",), ("same",), dict(kernel=(3, 3), strides=(1, 1), pads=(1, 1, 1, 1))),
    ]
    graph = _graph("explicit_pads", tensors, ops, ["x"], ["dw", "maxp", "avgp", "same"])
    back = _check_against_reference(graph, tmp_path)
    assert [op.kind for op in back.ops] == ["PAD", "CONV_2D", "PAD", "DEPTHWISE_CONV_2D", "PAD", "MAX_POOL",
                                            "PAD", "AVERAGE_POOL", "AVERAGE_POOL"]
    pads = [op for op in back.ops if op.kind == "PAD"]
    assert [op.attrs["value"] for op in pads] == [-3, -20, -128, -20]  # zero point, or lowest for MAX_POOL
    assert pads[0].attrs["pads"] == ((0, 0), (1, 0), (1, 0), (0, 0))   # only the pads VALID needs
    assert back.ops[-1].attrs["pads"] == (1, 1, 1, 1) and not back.ops[-1].attrs["count_include_pad"]


def test_shape_and_elementwise_lowerings_run_in_tflm(tmp_path):
    q, q2 = Q(0.05, -3), Q(0.03, 10)
    t = lambda name, shape, quant=q, dtype=DType.INT8: Tensor(name, shape, dtype, quant)  # noqa: E731
    tensors = [
        t("x", (1, 6, 8, 4)), t("sl", (3, 3, 4)), t("sp_a", (1, 6, 8, 1)), t("sp_b", (1, 6, 8, 3)),
        t("h_a", (1, 3, 8, 4)), t("h_b", (1, 3, 8, 4)), t("cat", (1, 6, 8, 4)), t("padv2", (1, 9, 9, 4)),
        t("pad", (1, 6, 10, 4)), t("tr", (1, 4, 6, 8)), t("mean", (1, 1, 1, 4), q2),
        t("resize", (1, 12, 16, 4)), t("add", (1, 6, 8, 4), q2), t("mul", (1, 6, 8, 4), Q(0.01, 0)),
        t("relu6", (1, 6, 8, 4)), t("relu", (1, 6, 8, 4), Q(0.04, -128)),
        t("logistic", (1, 6, 8, 4), Q(1 / 256, -128)), t("tanh", (1, 6, 8, 4), Q(1 / 128, 0)),
        t("leaky", (1, 6, 8, 4), q2), t("hswish", (1, 6, 8, 4), q2), t("requant", (1, 6, 8, 4), q2),
        t("deq", (1, 6, 8, 4), None, DType.FLOAT32), t("flat", (1, 192)),
        t("soft", (1, 192), Q(1 / 256, -128)),
        Tensor("k", (4,), DType.INT8, q, np.array([5, -7, 100, -128], dtype=np.int8)),
    ]
    ops = [
        ("SLICE", ("x",), ("sl",), dict(begin=(0, 5, 1, 0), end=(1, None, 6, 4), strides=(1, -2, 2, 1))),
        ("SPLIT", ("x",), ("sp_a", "sp_b"), dict(axis=3, sizes=(1, 3))),
        ("SPLIT", ("x",), ("h_a", "h_b"), dict(axis=1, sizes=(3, 3))),
        ("CONCATENATION", ("sp_b", "sp_a"), ("cat",), dict(axis=3)),
        ("PAD", ("x",), ("padv2",), dict(pads=((0, 0), (1, 2), (0, 1), (0, 0)), value=5)),
        ("PAD", ("x",), ("pad",), dict(pads=((0, 0), (0, 0), (2, 0), (0, 0)), value=-3)),
        ("TRANSPOSE", ("x",), ("tr",), dict(perm=(0, 3, 1, 2))),
        ("MEAN", ("x",), ("mean",), dict(axes=(1, 2), keepdims=True)),
        ("RESIZE_NEAREST_NEIGHBOR", ("x",), ("resize",), {}),
        ("ADD", ("x", "k"), ("add",), {}),
        ("MUL", ("x", "cat"), ("mul",), {}),
        ("CLIP", ("x",), ("relu6",), dict(min=0.0, max=6.0)),
        ("CLIP", ("x",), ("relu",), dict(min=0.0, max=None)),  # TFLM's RELU requantizes itself
        ("LOGISTIC", ("x",), ("logistic",), {}),
        ("TANH", ("x",), ("tanh",), {}),
        ("LEAKY_RELU", ("x",), ("leaky",), dict(alpha=0.25)),
        ("HARD_SWISH", ("x",), ("hswish",), {}),
        ("QUANTIZE", ("x",), ("requant",), {}),
        ("DEQUANTIZE", ("x",), ("deq",), {}),
        ("RESHAPE", ("x",), ("flat",), {}),
        ("SOFTMAX", ("flat",), ("soft",), dict(beta=1.0)),
    ]
    outputs = ["sl", "h_b", "cat", "padv2", "pad", "tr", "mean", "resize", "add", "mul", "relu6", "relu",
               "logistic", "tanh", "leaky", "hswish", "requant", "deq", "soft"]
    graph = _graph("zoo", tensors, ops, ["x"], outputs)
    back = _check_against_reference(graph, tmp_path)
    assert_same_graph(graph, back)  # every lowering reads back as the op it came from
    model = tflite.Model.GetRootAsModel((tmp_path / "zoo.tflite").read_bytes(), 0)
    names = {model.OperatorCodes(i).BuiltinCode() for i in range(model.OperatorCodesLength())}
    B = tflite.BuiltinOperator
    assert {B.STRIDED_SLICE, B.SPLIT, B.SPLIT_V, B.PAD, B.PADV2, B.RELU6, B.RELU} <= names


def test_relu6_with_other_output_params_requantizes_first(tmp_path):
    """TFLM's RELU6 clamps raw input values; the IR's CLIP requantizes to the output params first."""
    tensors = [Tensor("x", (1, 64), DType.INT8, Q(0.05, -3)),
               Tensor("y", (1, 64), DType.INT8, Q(6 / 255, -128)),
               Tensor("z", (1, 64), DType.INT8, Q(0.01, 7))]
    graph = _graph("relu6", tensors, [("CLIP", ("x",), ("y",), dict(min=0.0, max=6.0)),
                                      ("CLIP", ("x",), ("z",), dict(min=0.0, max=6.0))], ["x"], ["y", "z"])
    back = _check_against_reference(graph, tmp_path)
    assert [op.kind for op in back.ops] == ["QUANTIZE", "CLIP", "QUANTIZE", "CLIP"]


def test_float_io_quantize_batch_matmul_dequantize(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (1, 6, 5)).astype(np.int8)
    tensors = [Tensor("x", (1, 4, 6), DType.FLOAT32), Tensor("xq", (1, 4, 6), DType.INT8, Q(0.02, 4)),
               Tensor("w", (1, 6, 5), DType.INT8, Q(0.01, 0), w),
               Tensor("mm", (1, 4, 5), DType.INT8, Q(0.05, -7)),
               Tensor("sub", (1, 4, 6), DType.INT8, Q(0.03, 2)), Tensor("y", (1, 4, 5), DType.FLOAT32)]
    ops = [("QUANTIZE", ("x",), ("xq",), {}), ("BATCH_MATMUL", ("xq", "w"), ("mm",), {}),
           ("SUB", ("xq", "xq"), ("sub",), dict(activation="RELU")), ("DEQUANTIZE", ("mm",), ("y",), {})]
    graph = _graph("float_io", tensors, ops, ["x"], ["y", "sub"])
    _check_against_reference(graph, tmp_path, reload=False)  # the importer has no BATCH_MATMUL yet


def test_unequal_slice_output_shape_gets_a_reshape(tmp_path):
    q = Q(0.1, 0)
    tensors = [Tensor("x", (2, 6, 4), DType.INT8, q), Tensor("y", (3, 4), DType.INT8, q)]
    graph = _graph("slice_reshape", tensors,
                   [("SLICE", ("x",), ("y",), dict(begin=(1, 0), end=(2, 6), strides=(1, 2)))], ["x"], ["y"])
    back = _check_against_reference(graph, tmp_path, n=3)
    assert [op.kind for op in back.ops] == ["SLICE"]  # shrink_axis_mask drops the size-1 axis
    tensors[1] = Tensor("y", (12,), DType.INT8, q)
    graph = _graph("slice_flat", tensors,
                   [("SLICE", ("x",), ("y",), dict(begin=(1, 0), end=(2, 6), strides=(1, 2)))], ["x"], ["y"])
    back = _check_against_reference(graph, tmp_path, n=3)
    assert [op.kind for op in back.ops] == ["SLICE", "RESHAPE"]


# -- what TFLite cannot express -----------------------------------------------------------------------
def _bad_graph(*ops) -> Graph:
    q = Q(0.1, 0)
    tensors = [Tensor("x", (1, 4, 4, 2), DType.INT8, q)]
    tensors += [Tensor(outs[0], shape, DType.INT8, quant or q) for (_, _, outs, _), shape, quant in ops]
    return _graph("bad", tensors, [op for op, _, _ in ops], ["x"], [ops[-1][0][2][0]])


def test_clip_without_a_tflite_builtin_raises():
    graph = _bad_graph((("CLIP", ("x",), ("y",), dict(min=0.0, max=3.0)), (1, 4, 4, 2), None))
    with pytest.raises(UnsupportedOpError) as e:
        tflite_bytes(graph)
    assert str(e.value) == ("graph 'bad' cannot be written as TFLite: op #0 \"y\" CLIP: clip to [0.0, 3.0] "
                            "is none of RELU, RELU6, RELU_N1_TO_1")
    assert isinstance(e.value, MicrogenError)


def test_every_unwritable_op_is_reported_at_once():
    graph = _bad_graph(
        (("AVERAGE_POOL", ("x",), ("p",), dict(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))),
         (1, 2, 2, 2), None),
        (("CONCATENATION", ("x", "x"), ("c",), dict(axis=3)), (1, 4, 4, 4), Q(0.2, 0)),
        (("SOFTMAX", ("x",), ("s",), dict(axis=1)), (1, 4, 4, 2), None),
    )
    with pytest.raises(UnsupportedOpError) as e:
        tflite_bytes(graph)
    assert str(e.value) == (
        "graph 'bad' cannot be written as TFLite: "
        "op #0 \"p\" AVERAGE_POOL: pads [1, 1, 1, 1] are neither TFLite SAME nor VALID padding for input "
        "[4, 4] -> output [2, 2]; it cannot be expressed in TFLite without a separate PAD op; "
        "op #1 \"c\" CONCATENATION: input 'x' has quantization params (s=0.1 zp=0) other than the output's "
        "(s=0.2 zp=0); TFLM concatenates raw values without requantizing; "
        "op #2 \"s\" SOFTMAX: TFLite SOFTMAX works on the last axis, not axis 1")


def test_onnx_rounding_cannot_be_written():
    rng = np.random.default_rng(1)
    tensors = [Tensor("x", (1, 4, 4, 2), DType.INT8, Q(0.1, 0)),
               Tensor("y", (1, 4, 4, 3), DType.INT8, Q(0.2, 0)),
               *_conv_weights(rng, "c", (3, 1, 1, 2), 0, 0.1)]
    graph = _graph("onnx_conv", tensors, [("CONV_2D", ("x", "c/w", "c/b"), ("y",), dict(rounding="onnx"))],
                   ["x"], ["y"])
    with pytest.raises(UnsupportedOpError, match=r'op #0 "y" CONV_2D: requantizes with ONNX rounding'):
        tflite_bytes(graph)
