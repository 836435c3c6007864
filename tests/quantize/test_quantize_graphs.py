"""quantize.quantize on graphs built in code: every op rule, io int8 / float, per-tensor FC, 16x8 layers,
requantizes where params cannot be tied, and refusals. The results are exported and run bit-exactly in
TFLM and in the generated C."""

from __future__ import annotations

import numpy as np
import pytest

from microgen import importers, reference
from microgen.errors import UnsupportedOpError
from microgen.graph import DType
from microgen.quantize import QuantizeOptions, quantize
from microgen.quantize.accuracy import evaluate
from microgen.testing.corpus import require_model

from .checks import check_c, check_tflm, graph_inputs
from .graphs import GraphBuilder, all_ops_graph, more_ops_graphs


def calib(graph, n=16, seed=0):
    t = graph.input_tensors()[0]
    return {t.name: np.random.default_rng(seed).uniform(-1, 1, size=(n, *t.shape)).astype(np.float32)}


@pytest.mark.parametrize("io", ["int8", "float"])
def test_all_ops_bit_exact_in_tflm_and_c(tmp_path, io):
    g = all_ops_graph()
    r = quantize(g, calib(g), QuantizeOptions(io=io))
    q = r.graph
    kinds = [op.kind for op in q.ops]
    edges = io == "float"
    assert kinds.count("QUANTIZE") == (1 if edges else 0) and kinds.count("DEQUANTIZE") == (3 if edges else 0)
    assert all(t.dtype is (DType.FLOAT32 if io == "float" else DType.INT8) for t in q.input_tensors())
    # spec facts
    probs, tanh = q.tensors[r.tensor_map["probs"]].quant, q.tensors[r.tensor_map["tanh"]].quant
    assert probs.scale == (1 / 256,) and probs.zp == -128
    assert tanh.scale == (1 / 128,) and tanh.zp == 0
    for a, b in [("concat", "hswish"), ("concat", "conv1"), ("maxpool", "concat"), ("pad", "avgpool")]:
        assert q.tensors[r.tensor_map[a]].quant == q.tensors[r.tensor_map[b]].quant
    conv = next(op for op in q.ops if op.kind == "CONV_2D")
    w, bias = q.tensors[conv.inputs[1]], q.tensors[conv.inputs[2]]
    assert w.dtype is DType.INT8 and w.quant.axis == 0 and int(np.abs(w.data).max()) == 127
    assert bias.dtype is DType.INT32 and bias.quant.scale[0] == pytest.approx(
        q.tensors[conv.inputs[0]].quant.s * w.quant.scale[0], rel=1e-6)
    dw = next(op for op in q.ops if op.kind == "DEPTHWISE_CONV_2D")
    assert q.tensors[dw.inputs[1]].quant.axis == 3
    pad = next(op for op in q.ops if op.kind == "PAD")
    assert pad.attrs["value"] == q.tensors[pad.outputs[0]].quant.zp
    inputs = graph_inputs(q, 8)
    check_tflm(q, tmp_path / "q.tflite", inputs)
    check_c(tmp_path / "q.tflite", q, inputs, tmp_path / "c")
    acc = evaluate(r, calib(g, 8, seed=5))
    assert acc.output_sqnr_db > 30 and min(layer.sqnr_db for layer in acc.layers) > 25


@pytest.mark.parametrize("name", sorted(more_ops_graphs()))
def test_more_ops_bit_exact_in_tflm_and_c(tmp_path, name):
    g = more_ops_graphs()[name]
    q = quantize(g, calib(g)).graph
    assert all(t.dtype is DType.INT8 for t in q.activations())
    inputs = graph_inputs(q, 6)
    check_tflm(q, tmp_path / "q.tflite", inputs)
    check_c(tmp_path / "q.tflite", q, inputs, tmp_path / "c")


def test_per_tensor_fc_and_16x8_layers(tmp_path):
    g = all_ops_graph()
    base = quantize(g, calib(g))
    r = quantize(g, calib(g), QuantizeOptions(per_channel_fc=False, int16=("dw", "logits")), stats=base.stats)
    q = r.graph
    fc = next(op for op in q.ops if op.kind == "FULLY_CONNECTED")
    assert q.tensors[fc.inputs[1]].quant.axis is None
    assert q.tensors["dw"].dtype is DType.INT16 and q.tensors["logits"].dtype is DType.INT16
    assert q.tensors[fc.inputs[2]].dtype is DType.INT64  # 16x8 bias
    # int8 readers of the int16 tensors get inserted requantizes; the int16 ops get int16 inputs.
    requants = [op for op in q.ops if op.kind == "QUANTIZE"]
    assert {q.tensors[op.inputs[0]].dtype for op in requants} == {DType.INT8, DType.INT16}
    inputs = graph_inputs(q, 6)
    check_tflm(q, tmp_path / "q16.tflite", inputs)
    check_c(tmp_path / "q16.tflite", q, inputs, tmp_path / "c16")
    with pytest.raises(UnsupportedOpError, match="int16"):
        quantize(g, calib(g), QuantizeOptions(int16=("probs",)), stats=base.stats)


def test_concat_of_two_fixed_params_is_requantized(tmp_path):
    """softmax (1/256, -128) and tanh (1/128, 0) cannot share params: the concat input is requantized."""
    b = GraphBuilder("fixed_concat", seed=7)
    x = b.input("x", (1, 6))
    f = b.op("FULLY_CONNECTED", [x, b.weights("w", (6, 6))], "fc", (1, 6))
    s = b.op("SOFTMAX", [f], "sm", (1, 6))
    t = b.op("TANH", [f], "th", (1, 6))
    c = b.op("CONCATENATION", [s, t], "cat", (1, 12), axis=1)
    g = b.graph([c])
    r = quantize(g, calib(g))
    q = r.graph
    cat = next(op for op in q.ops if op.kind == "CONCATENATION")
    assert all(q.tensors[n].quant == q.tensors[cat.outputs[0]].quant for n in cat.inputs)
    assert [op.kind for op in q.ops].count("QUANTIZE") == 1
    check_tflm(q, tmp_path / "fc.tflite", graph_inputs(q, 6))


def test_refusals_list_every_problem():
    b = GraphBuilder("odd", seed=8)
    x = b.input("x", (1, 4))
    y = b.op("DEQUANTIZE", [x], "y", (1, 4))  # nonsense in a float graph: not quantizable
    g = b.graph([y])
    with pytest.raises(UnsupportedOpError, match="cannot quantize 1 op"):
        quantize(g, {"x": np.zeros((2, 1, 4), np.float32)})
    int8 = importers.load(require_model("digits/digits_mlp_int8_tfliteconv.tflite"))
    with pytest.raises(UnsupportedOpError, match="already quantized"):
        quantize(int8, {int8.inputs[0]: np.zeros((1, 1, 64), np.int8)})


def test_quantized_graph_is_a_pure_function_of_its_inputs():
    g = all_ops_graph()
    a = quantize(g, calib(g)).graph
    b = quantize(g, calib(g)).graph
    assert a.dump() == b.dump()
    from microgen.exporters import tflite_bytes
    assert tflite_bytes(a) == tflite_bytes(b)
    x = graph_inputs(a, 1)
    assert all(np.array_equal(u, v) for u, v in zip(reference.run_samples(a, x).values(),
                                                      reference.run_samples(b, x).values()))
