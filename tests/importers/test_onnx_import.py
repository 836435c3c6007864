"""The ONNX importer: corpus models import and verify; the NCHW -> NHWC layout conversion on small
hand-made models, checked against onnxruntime; QDQ fusion structure; corrupt files, unsupported ops and
dtypes give the right MicrogenError with an exact message."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microgen import importers
from microgen.errors import InvalidInputError, ModelFormatError, UnsupportedDTypeError, UnsupportedOpError
from microgen.graph import DType, verify
from microgen.importers.from_onnx import load_onnx
from microgen.reference import run
from microgen.testing.corpus import require_model

F = TensorProto.FLOAT
CORPUS = ["onnx/mnist-8.onnx", "onnx/derived/mnist-8_opset13.onnx", "onnx/derived/mnist-8_qdq_int8.onnx",
          "onnx/derived/mnist-8_qop_int8.onnx", "onnx/onnx2c_atmega_mnist_simplified.onnx",
          "onnx/onnx2c_mnist_pytorch.onnx", "onnx/onnx2c_tfl_helloworld.onnx", "digits/digits_cnn_float.onnx",
          "digits/digits_mlp_float.onnx", "digits/digits_cnn_int8_ort_qdq.onnx",
          "digits/digits_mlp_int8_ort_qdq.onnx"]


# -- corpus --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", CORPUS)
def test_corpus_model_imports_and_keeps_its_interface(rel):
    path = require_model(rel)
    graph = verify(importers.load(path))
    model = onnx.load(str(path))
    inits = {t.name for t in model.graph.initializer}
    onnx_inputs = [i for i in model.graph.input if i.name not in inits]
    assert graph.source_format == "onnx"
    assert list(graph.inputs) == [i.name for i in onnx_inputs]
    assert list(graph.outputs) == [o.name for o in model.graph.output]
    for vi in list(onnx_inputs) + list(model.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        assert graph.tensors[vi.name].shape == tuple(dims)
        assert graph.tensors[vi.name].dtype == DType.FLOAT32
    # every activation op works channels-last or on 2-D data: no 4-D tensor is consumed in NCHW by a conv
    for op in graph.ops:
        assert op.index >= 0 and op.name
    assert not [n for n in graph.metadata["notes"] if "shape inference says" in n]


def test_symbolic_batch_dim_becomes_1_with_a_note():
    graph = importers.load(require_model("onnx/onnx2c_tfl_helloworld.onnx"))
    assert graph.tensors["dense_2_input"].shape == (1, 1)
    assert graph.metadata["notes"] == ["input 'dense_2_input': dim 0 is 'N', set to 1"]


def test_qdq_model_becomes_int8_ops_with_a_float_interface():
    graph = importers.load(require_model("onnx/derived/mnist-8_qdq_int8.onnx"))
    kinds = Counter(op.kind for op in graph.ops)
    assert kinds == Counter({"QUANTIZE": 1, "CONV_2D": 2, "ADD": 3, "MAX_POOL": 2, "TRANSPOSE": 1,
                             "RESHAPE": 2, "FULLY_CONNECTED": 1, "DEQUANTIZE": 1})
    assert graph.ops[0].kind == "QUANTIZE" and graph.ops[0].attrs["rounding"] == "half_even"
    assert graph.ops[-1].kind == "DEQUANTIZE"
    for op in graph.ops[1:-1]:
        out = graph.tensors[op.outputs[0]]
        assert out.dtype == DType.INT8 and out.quant is not None and out.quant.axis is None, op.name
        if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
            assert op.attrs["rounding"] == "tflm"
            assert graph.tensors[op.inputs[1]].dtype == DType.INT8
    conv = next(op for op in graph.ops if op.kind == "CONV_2D")
    w = graph.tensors[conv.inputs[1]]
    assert w.shape == (8, 5, 5, 1) and w.quant.axis == 0 and len(w.quant.scale) == 8


def test_qdq_bias_and_requantized_softmax():
    graph = importers.load(require_model("digits/digits_cnn_int8_ort_qdq.onnx"))
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["QUANTIZE", "RESHAPE", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MAX_POOL",
                     "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"]
    dw = graph.ops[3]
    assert graph.tensors[dw.inputs[1]].shape == (1, 3, 3, 8) and graph.tensors[dw.inputs[1]].quant.axis == 3
    bias = graph.tensors[dw.inputs[2]]
    assert bias.dtype == DType.INT32
    model = onnx.load(str(require_model("digits/digits_cnn_int8_ort_qdq.onnx")))
    given = numpy_helper.to_array(
        next(t for t in model.graph.initializer if t.name == "dwconv2.bias_quantized"))
    np.testing.assert_array_equal(bias.data, given)  # ORT's int32 bias is used as is
    softmax = graph.tensors[graph.ops[9].outputs[0]]
    assert (softmax.quant.s, softmax.quant.zp) == (1 / 256, -128)   # TFLM's softmax output, then requantized


def test_qoperator_model_uses_onnx_rounding():
    graph = importers.load(require_model("onnx/derived/mnist-8_qop_int8.onnx"))
    macs = [op for op in graph.ops if op.kind in ("CONV_2D", "FULLY_CONNECTED")]
    assert len(macs) == 3 and all(op.attrs["rounding"] == "onnx" for op in macs)


# -- hand-made models, checked against onnxruntime -----------------------------------------------------------
def make_model(nodes, inputs, outputs, inits=None, opset=13) -> bytes:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info(n, e, s) for n, (s, e) in inputs.items()],
        [helper.make_tensor_value_info(n, F, None) for n in outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def check_against_ort(data: bytes, seed: int = 0, rtol: float = 1e-5):
    import onnxruntime as ort
    graph = verify(load_onnx(data, "t", "t.onnx", None))
    rng = np.random.default_rng(seed)
    feeds = {n: rng.normal(size=graph.tensors[n].shape).astype(np.float32) for n in graph.inputs}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)
    got = run(graph, feeds)
    for name, w in zip(graph.outputs, want):
        assert got[name].shape == w.shape, name
        scale = max(float(np.abs(w).max()), 1e-30)
        assert float(np.abs(got[name] - w).max()) <= rtol * scale, name
    return graph


def r(*shape, seed=1):
    return np.random.default_rng(seed + sum(shape)).normal(size=shape).astype(np.float32)


def test_cnn_runs_channels_last_with_transposes_only_at_the_edges():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Add", ["p1", "bias"], ["a1"]),
        helper.make_node("Mul", ["a1", "scale"], ["m1"]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], group=8, dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Concat", ["m1", "c2"], ["cat"], axis=1),
        helper.make_node("Pad", ["cat", "pads"], ["pad"], mode="reflect"),
        helper.make_node("BatchNormalization", ["pad", "g", "b", "mu", "var"], ["bn"]),
        helper.make_node("Softmax", ["bn"], ["sm"], axis=1),
        helper.make_node("GlobalAveragePool", ["sm"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fw", "fb"], ["y"], transB=1, alpha=0.5),
    ]
    inits = {"w1": r(8, 3, 3, 3), "bias": r(8, 1, 1), "scale": r(1, 8, 1, 1), "w2": r(16, 1, 3, 3),
             "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "g": r(24), "b": r(24), "mu": r(24),
             "var": np.abs(r(24)) + 0.5, "fw": r(5, 24), "fb": r(5)}
    graph = check_against_ort(make_model(nodes, {"x": ([1, 3, 12, 12], F)}, ["y", "cat"], inits))
    kinds = Counter(op.kind for op in graph.ops)
    # one TRANSPOSE at the input, one for the NCHW output "cat"; GAP output [1,1,1,24] flattens as is
    assert kinds["TRANSPOSE"] == 2
    assert kinds["CONV_2D"] == 1 and kinds["DEPTHWISE_CONV_2D"] == 1
    assert graph.tensors["cat"].shape == (1, 24, 6, 6)
    sm = next(op for op in graph.ops if op.kind == "SOFTMAX")
    assert sm.attrs["axis"] == -1 and graph.tensors[sm.outputs[0]].shape == (1, 9, 9, 24)
    conv = next(op for op in graph.ops if op.kind == "CONV_2D")
    assert conv.attrs["activation"] == "RELU"


def test_tf_style_transposes_cancel():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w", "b"], ["c"], strides=[2, 2], auto_pad="SAME_LOWER",
                              kernel_shape=[4, 4]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])]
    graph = check_against_ort(make_model(nodes, {"x": ([1, 9, 9, 4], F)}, ["y"],
                                         {"w": r(6, 4, 4, 4), "b": r(6)}))
    assert [op.kind for op in graph.ops] == ["CONV_2D"]
    assert graph.inputs == ("x",) and graph.outputs == ("y",)


def test_1d_conv_and_pools():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], strides=[2], pads=[1, 2]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2], strides=[1]),
             helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1],
                              ceil_mode=1, count_include_pad=1),
             helper.make_node("ConvTranspose", ["p", "wt"], ["z"], strides=[2], output_padding=[1])]
    graph = check_against_ort(make_model(nodes, {"x": ([1, 4, 17], F)}, ["y", "z"],
                                         {"w": r(5, 4, 3), "wt": r(5, 2, 3)}, opset=13))
    assert Counter(op.kind for op in graph.ops)["CONV_2D"] == 1


def test_reductions_slices_and_opset11_softmax():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("ReduceMean", ["c"], ["m1"], axes=[2, 3], keepdims=0),
             helper.make_node("ReduceMean", ["c"], ["m2"], axes=[1], keepdims=1),
             helper.make_node("Softmax", ["c"], ["s"], axis=1),
             helper.make_node("Slice", ["c", "st", "en", "ax"], ["sl"]),
             helper.make_node("Split", ["c"], ["sp1", "sp2"], axis=1, split=[2, 4]),
             helper.make_node("Sigmoid", ["sp2"], ["sg"]),
             helper.make_node("Concat", ["sg", "sp1"], ["y"], axis=1)]
    inits = {"w": r(6, 3, 1, 1), "st": np.array([1, 0], np.int64), "en": np.array([5, 3], np.int64),
             "ax": np.array([1, 3], np.int64)}
    graph = check_against_ort(make_model(nodes, {"x": ([2, 3, 4, 5], F)}, ["m1", "m2", "s", "sl", "y"], inits,
                                         opset=11))
    mean = next(op for op in graph.ops if op.kind == "MEAN")
    assert mean.attrs["axes"] == (1, 2)   # ONNX axes 2, 3 of the channels-last tensor


def test_negative_pads_crop():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Pad", ["c", "p1"], ["y1"], mode="edge"),
             helper.make_node("Pad", ["c", "p2"], ["y2"])]
    inits = {"w": r(4, 2, 1, 1), "p1": np.array([0, 0, -1, 2, 0, -1, 1, -2], np.int64),
             "p2": np.array([0, 0, -1, -2, 0, 0, 0, -1], np.int64)}
    graph = check_against_ort(make_model(nodes, {"x": ([1, 2, 5, 6], F)}, ["y1", "y2"], inits))
    assert Counter(op.kind for op in graph.ops) == Counter(
        {"TRANSPOSE": 3, "CONV_2D": 1, "PAD": 1, "SLICE": 2})


def test_matmul_gemm_variants():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["h"]),
             helper.make_node("Relu", ["h"], ["rl"]),
             helper.make_node("Gemm", ["rl", "x2"], ["g"], transA=1, beta=0.5, alpha=2.0),
             helper.make_node("MatMul", ["x3", "x4"], ["bm"])]
    graph = check_against_ort(make_model(nodes, {"x": ([3, 4], F), "x2": ([3, 2], F), "x3": ([2, 3, 4], F),
                                                 "x4": ([4, 5], F)}, ["g", "bm"],
                                         {"w": r(4, 3), "b": r(3)}))
    fc = graph.ops[0]
    assert fc.kind == "FULLY_CONNECTED" and fc.attrs["activation"] == "RELU" and fc.inputs[2]


# -- errors --------------------------------------------------------------------------------------------------
def test_corrupt_truncated_and_random_bytes_raise_model_format_error():
    data = require_model("onnx/mnist-8.onnx").read_bytes()
    for cut in (1, 10, 100, 1000, 5000, len(data) // 2, len(data) - 100, len(data) - 1):
        with pytest.raises(ModelFormatError):
            load_onnx(data[:cut], "m", "m.onnx", None)
    rng = random.Random(0)
    for k in range(30):
        with pytest.raises(ModelFormatError):
            load_onnx(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))), "m", "m.onnx", None)
    with pytest.raises(ModelFormatError, match=r"^m\.onnx: the file is empty$"):
        load_onnx(b"", "m", "m.onnx", None)
    no_graph = onnx.ModelProto(ir_version=8).SerializeToString()
    with pytest.raises(ModelFormatError,
                       match=r"^m\.onnx: not a valid ONNX model \(the protobuf has no graph"):
        load_onnx(no_graph, "m", "m.onnx", None)


def test_dangling_tensor_reference():
    data = make_model([helper.make_node("Relu", ["nowhere"], ["y"], name="r")], {"x": ([1], F)}, ["y"])
    with pytest.raises(ModelFormatError) as e:
        load_onnx(data, "m", "m.onnx", None)
    assert str(e.value) == ('m.onnx: node #0 "r" (Relu) reads \'nowhere\', which no node, input or '
                            'initializer defines')


def test_files_through_importers_load(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        importers.load(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + bytes(range(256)) * 3)
    with pytest.raises(ModelFormatError):
        importers.load(bad)


def test_unsupported_ops_are_listed_in_one_error():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("Erf", ["a"], ["b"], name="erf1"),
             helper.make_node("Foo", ["b"], ["c"], name="foo", domain="com.example"),
             helper.make_node("MaxPool", ["c"], ["y", "idx"], name="mp", kernel_shape=[2, 2])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", F, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", F, None),
                               helper.make_tensor_value_info("idx", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("com.example", 1)])
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(model.SerializeToString(), "m", "m.onnx", None)
    assert str(e.value) == (
        'm.onnx: 3 unsupported operators: node #1 "erf1" (Erf): operator Erf is not supported; '
        'node #2 "foo" (com.example:Foo): operator com.example:Foo is not supported; '
        'node #3 "mp" (MaxPool): MaxPool with an indices (argmax) output')


def test_3d_conv_is_unsupported():
    data = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="c3")], {"x": ([1, 1, 4, 4, 4], F)},
                      ["y"], {"w": r(2, 1, 3, 3, 3)})
    with pytest.raises(UnsupportedOpError, match=r'node #0 "c3" \(Conv\): 3-D convolution'):
        load_onnx(data, "m", "m.onnx", None)


@pytest.mark.parametrize("elem,label", [(TensorProto.FLOAT8E4M3FN, "float8e4m3fn"),
                                        (TensorProto.INT4, "int4"), (TensorProto.BFLOAT16, "bfloat16")])
def test_unsupported_dtypes_name_the_tensor(elem, label):
    nodes = [helper.make_node("DequantizeLinear", ["q", "s"], ["y"])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("q", elem, [4])],
                              [helper.make_tensor_value_info("y", F, [4])],
                              initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(UnsupportedDTypeError) as e:
        load_onnx(model.SerializeToString(), "m", "m.onnx", None)
    assert str(e.value) == (f"m.onnx: unsupported tensor data type(s): 'q' ({label}); microgen handles "
                            f"float16/32/64, bool and 8..64-bit integers")


def test_bind_errors():
    data = make_model([helper.make_node("Add", ["x", "z"], ["y"])], {"x": ([2], F), "z": ([2], F)}, ["y"])
    with pytest.raises(InvalidInputError, match=r"cannot bind 'w': not a graph input \(inputs: x, z\)"):
        load_onnx(data, "m", "m.onnx", {"w": np.zeros(2, np.float32)})
    with pytest.raises(InvalidInputError, match=r"bound value for 'z' has shape \[3\]"):
        load_onnx(data, "m", "m.onnx", {"z": np.zeros(3, np.float32)})
    graph = load_onnx(data, "m", "m.onnx", {"z": np.ones(2, np.float32)})
    assert graph.inputs == ("x",)
    np.testing.assert_array_equal(run(graph, {"x": np.arange(2, dtype=np.float32)})["y"], [1, 2])


# -- QDQ fusion on a hand-made model ------------------------------------------------------------------------
def _qdq_model() -> bytes:
    I8 = TensorProto.INT8
    c = helper.make_tensor

    def q(name, x, s, zp):
        return [c(f"{name}_s", F, [], [s]), c(f"{name}_z", I8, [], [zp])], [
            helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
            helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_f"])]

    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    ws = (rng.uniform(0.5, 1.5, 4) * 0.01).astype(np.float32)
    b = rng.integers(-500, 500, size=4).astype(np.int32)
    k = rng.integers(-128, 128, size=(4, 1, 1)).astype(np.int8)
    inits, nodes = [], []
    for part in [q("x", "x", 0.05, 3)]:
        inits += part[0]
        nodes += part[1]
    inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(ws, "ws"),
              numpy_helper.from_array(np.zeros(4, np.int8), "wz"), numpy_helper.from_array(b, "b"),
              numpy_helper.from_array((ws * np.float32(0.05)).astype(np.float32), "bs"),
              numpy_helper.from_array(np.zeros(4, np.int32), "bz"), numpy_helper.from_array(k, "k"),
              c("ks", F, [], [0.02]), c("kz", I8, [], [5])]
    nodes += [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], axis=0),
              helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bf"], axis=0),
              helper.make_node("DequantizeLinear", ["k", "ks", "kz"], ["kf"]),
              helper.make_node("Conv", ["x_f", "wf", "bf"], ["conv"], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["conv"], ["relu"])]
    for name, x in [("r", "relu")]:
        part = q(name, x, 0.04, -128)
        inits += part[0]
        nodes += part[1]
    nodes += [helper.make_node("Add", ["r_f", "kf"], ["add"])]
    part = q("a", "add", 0.06, -20)
    inits, nodes = inits + part[0], nodes + part[1]
    nodes += [helper.make_node("MaxPool", ["a_f"], ["mp"], kernel_shape=[2, 2], strides=[2, 2])]
    part = q("m", "mp", 0.06, -20)
    inits, nodes = inits + part[0], nodes + part[1]
    nodes += [helper.make_node("Tanh", ["m_f"], ["th"])]
    part = q("t", "th", 1 / 128, 0)
    inits, nodes = inits + part[0], nodes + part[1]
    nodes += [helper.make_node("Concat", ["m_f", "t_f"], ["cat"], axis=1)]
    part = q("c", "cat", 0.06, -20)
    inits, nodes = inits + part[0], nodes + part[1]
    nodes += [helper.make_node("Sigmoid", ["c_f"], ["sg"])]
    part = q("s", "sg", 1 / 256, -128)
    inits, nodes = inits + part[0], nodes + part[1]
    nodes += [helper.make_node("Identity", ["s_f"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", F, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", F, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_qdq_fusion_on_a_hand_made_model():
    import onnxruntime as ort
    data = _qdq_model()
    graph = verify(load_onnx(data, "qdq", "qdq.onnx", None))
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["QUANTIZE", "TRANSPOSE", "CONV_2D", "ADD", "MAX_POOL", "DEQUANTIZE", "TANH", "QUANTIZE",
                     "CONCATENATION", "LOGISTIC", "DEQUANTIZE", "TRANSPOSE"], kinds
    conv = graph.ops[2]
    assert conv.attrs["activation"] == "RELU" and graph.tensors[conv.outputs[0]].dtype == DType.INT8
    assert graph.ops[-2].kind == "DEQUANTIZE" and graph.tensors["y"].shape == (1, 8, 4, 4)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    steps = []
    for _ in range(5):
        x = rng.normal(0, 2, size=(1, 3, 8, 8)).astype(np.float32)
        got, (want,) = run(graph, {"x": x})["y"], sess.run(None, {"x": x})
        steps.append(np.rint(np.abs(got - want) * 256).ravel())
    steps = np.concatenate(steps)
    assert steps.max() <= 2 and np.mean(steps <= 1) >= 0.98, np.bincount(steps.astype(int))


def test_qdq_conv_with_a_separate_bias_add_folds_it():
    """DQ -> Conv -> Add(DQ'd constant [C,1,1]) -> Relu -> Q: one int8 CONV_2D with an int32 bias."""
    import onnxruntime as ort
    I8 = TensorProto.INT8
    rng = np.random.default_rng(5)
    inits = [helper.make_tensor("xs", F, [], [0.02]), helper.make_tensor("xz", I8, [], [-3]),
             numpy_helper.from_array(rng.integers(-127, 128, (6, 2, 3, 3)).astype(np.int8), "w"),
             helper.make_tensor("ws", F, [], [0.01]), helper.make_tensor("wz", I8, [], [0]),
             numpy_helper.from_array(rng.integers(-128, 128, (6, 1, 1)).astype(np.int8), "k"),
             helper.make_tensor("ks", F, [], [0.003]), helper.make_tensor("kz", I8, [], [7]),
             helper.make_tensor("ys", F, [], [0.05]), helper.make_tensor("yz", I8, [], [-128])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xf"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"]),
             helper.make_node("DequantizeLinear", ["k", "ks", "kz"], ["kf"]),
             helper.make_node("Conv", ["xf", "wf"], ["c"], strides=[2, 2]),
             helper.make_node("Add", ["c", "kf"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["rq"]),
             helper.make_node("DequantizeLinear", ["rq", "ys", "yz"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", F, [1, 2, 9, 9])],
                              [helper.make_tensor_value_info("y", F, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data = model.SerializeToString()
    g = verify(load_onnx(data, "qdq", "qdq.onnx", None))
    assert [op.kind for op in g.ops] == ["QUANTIZE", "TRANSPOSE", "CONV_2D", "DEQUANTIZE", "TRANSPOSE"]
    conv = g.ops[2]
    bias = g.tensors[conv.inputs[2]]
    k = numpy_helper.to_array(inits[5]).ravel().astype(np.float64)
    np.testing.assert_array_equal(bias.data, np.rint((k - 7) * np.float32(0.003) / (0.02 * 0.01)))
    assert conv.attrs["activation"] == "RELU"
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(0, 1, size=(1, 2, 9, 9)).astype(np.float32)
    got, (want,) = run(g, {"x": x})["y"], sess.run(None, {"x": x})
    assert np.abs(got - want).max() <= 0.05 * 1.001


def test_shape_computations_are_folded():
    """PyTorch-style flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape becomes one RESHAPE."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["c", "shape"], ["y"])]
    inits = {"w": r(4, 3, 1, 1), "ax": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    graph = check_against_ort(make_model(nodes, {"x": ([1, 3, 4, 4], F)}, ["y"], inits))
    assert [op.kind for op in graph.ops] == ["TRANSPOSE", "CONV_2D", "TRANSPOSE", "RESHAPE"]
    assert graph.tensors["y"].shape == (1, 64)
