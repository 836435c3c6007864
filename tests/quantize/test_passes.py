"""Float graph passes (microgen.graph.passes): before/expected structure on small graphs, and the
same outputs as the unoptimized graph."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from microgen import importers, reference
from microgen.graph.passes import fold_batch_norm, fuse_activations, optimize, remove_dead_code

from .graphs import GraphBuilder


def kinds(graph):
    return [(op.kind, op.attrs.get("activation")) for op in graph.ops]


def same_outputs(a, b, shape, seed=0, tol=1e-5):
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    ya, yb = reference.run(a, {a.inputs[0]: x}), reference.run(b, {b.inputs[0]: x})
    for name in a.outputs:
        scale = max(1.0, float(np.abs(ya[name]).max()))
        np.testing.assert_allclose(yb[name], ya[name], atol=tol * scale, rtol=0)


def conv_bn_relu_graph(bias=True):
    b = GraphBuilder("bn", seed=1)
    x = b.input("x", (1, 6, 6, 3))
    ins = [x, b.weights("w", (4, 3, 3, 3))] + ([b.weights("b", (4,))] if bias else [])
    c = b.op("CONV_2D", ins, "conv", (1, 6, 6, 4), pads=(1, 1, 1, 1))
    m = b.op("MUL", [c, b.const("s", np.array([0.5, 2.0, -1.0, 1.5]).reshape(1, 1, 1, 4))], "scaled", (1, 6, 6, 4))
    a = b.op("ADD", [m, b.const("t", [0.1, -0.2, 0.3, 0.0])], "shifted", (1, 6, 6, 4))
    r = b.op("CLIP", [a], "relu", (1, 6, 6, 4), min=0.0, max=None)
    return b.graph([r])


def test_fold_batch_norm_then_fuse_relu():
    g = conv_bn_relu_graph()
    folded = fold_batch_norm(g)
    assert kinds(folded) == [("CONV_2D", "NONE"), ("CLIP", None)]
    fused = fuse_activations(folded)
    assert kinds(fused) == [("CONV_2D", "RELU")]
    assert fused.ops[0].outputs == ("relu",)
    same_outputs(g, fused, (1, 6, 6, 3))
    assert optimize(g).dump() == remove_dead_code(fused).dump()


def test_fold_creates_bias_when_missing_and_leaves_weights_shared_elsewhere_alone():
    g = conv_bn_relu_graph(bias=False)
    out = optimize(g)
    assert kinds(out) == [("CONV_2D", "RELU")] and len(out.ops[0].inputs) == 3
    assert "w" not in out.tensors  # the folded copy replaced it; the original had one reader
    same_outputs(g, out, (1, 6, 6, 3))


def test_depthwise_and_fc_fold_along_their_channel_axis():
    b = GraphBuilder("dwfc", seed=2)
    x = b.input("x", (1, 4, 4, 3))
    d = b.op("DEPTHWISE_CONV_2D", [x, b.weights("wd", (1, 3, 3, 3)), b.weights("bd", (3,))], "dw", (1, 4, 4, 3),
             pads=(1, 1, 1, 1))
    d2 = b.op("MUL", [d, b.const("sd", [1.0, 2.0, 3.0])], "dws", (1, 4, 4, 3))
    r = b.op("RESHAPE", [d2], "flat", (1, 48))
    f = b.op("FULLY_CONNECTED", [r, b.weights("wf", (5, 48))], "fc", (1, 5))
    f2 = b.op("SUB", [f, b.const("tf", [1, 2, 3, 4, 5])], "fcs", (1, 5))
    g = b.graph([f2])
    out = optimize(g)
    assert [op.kind for op in out.ops] == ["DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    same_outputs(g, out, (1, 4, 4, 3))


def test_no_fold_when_the_conv_output_has_other_readers_or_is_an_output():
    b = GraphBuilder("keep", seed=3)
    x = b.input("x", (1, 4, 4, 2))
    c = b.op("CONV_2D", [x, b.weights("w", (2, 1, 1, 2))], "conv", (1, 4, 4, 2))
    m = b.op("MUL", [c, b.const("s", [2.0, 3.0])], "scaled", (1, 4, 4, 2))
    a = b.op("ADD", [m, c], "sum", (1, 4, 4, 2))
    g = b.graph([a])
    assert optimize(g) is g  # conv feeds MUL and ADD: nothing to fold, nothing dead
    g2 = GraphBuilder("out", seed=3)
    x = g2.input("x", (1, 4, 4, 2))
    c = g2.op("CONV_2D", [x, g2.weights("w", (2, 1, 1, 2))], "conv", (1, 4, 4, 2))
    r = g2.op("CLIP", [c], "relu", (1, 4, 4, 2), min=0.0, max=6.0)
    graph = g2.graph([r, c])
    assert fuse_activations(graph) is graph  # the pre-clamp value is a model output


def test_no_fold_for_a_constant_that_is_not_per_channel():
    b = GraphBuilder("spatial", seed=4)
    x = b.input("x", (1, 3, 3, 2))
    c = b.op("CONV_2D", [x, b.weights("w", (2, 1, 1, 2))], "conv", (1, 3, 3, 2))
    m = b.op("MUL", [c, b.weights("s", (1, 3, 3, 2))], "scaled", (1, 3, 3, 2))
    g = b.graph([m])
    assert fold_batch_norm(g) is g


def test_fuse_relu6_into_add_and_only_known_clamps():
    b = GraphBuilder("fuse", seed=5)
    x = b.input("x", (1, 8))
    y = b.op("ADD", [x, b.weights("c", (8,))], "add", (1, 8))
    r = b.op("CLIP", [y], "relu6", (1, 8), min=0.0, max=6.0)
    z = b.op("MUL", [r, b.weights("d", (8,))], "mul", (1, 8))
    q = b.op("CLIP", [z], "clip2", (1, 8), min=0.0, max=2.0)  # not a TFLite activation: stays
    g = b.graph([q])
    out = fuse_activations(g)
    assert kinds(out) == [("ADD", "RELU6"), ("MUL", "NONE"), ("CLIP", None)]
    same_outputs(g, out, (1, 8))


def test_remove_dead_code():
    b = GraphBuilder("dead", seed=6)
    x = b.input("x", (1, 4))
    b.op("FULLY_CONNECTED", [x, b.weights("w_dead", (3, 4))], "unused", (1, 3))
    y = b.op("FULLY_CONNECTED", [x, b.weights("w", (2, 4))], "y", (1, 2))
    g = b.graph([y])
    out = remove_dead_code(g)
    assert [op.outputs for op in out.ops] == [("y",)]
    assert "w_dead" not in out.tensors and "unused" not in out.tensors
    assert remove_dead_code(out) is out


def test_onnx_batchnorm_is_folded_into_the_conv(tmp_path):
    """ONNX BatchNormalization imports as MUL + ADD (per-channel constants [1,1,1,C]); the pass folds it."""
    rng = np.random.default_rng(0)
    arrays = dict(W=rng.normal(size=(4, 3, 3, 3)), B=rng.normal(size=4), sc=rng.uniform(0.5, 2, 4),
                  bi=rng.normal(size=4), mu=rng.normal(size=4), var=rng.uniform(0.5, 2, 4))
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "sc", "bi", "mu", "var"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["y"])]
    graph = helper.make_graph(
        nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "bn.onnx")
    g = importers.load(tmp_path / "bn.onnx")
    assert "MUL" in [op.kind for op in g.ops]
    out = optimize(g)
    assert ("CONV_2D", "RELU") in kinds(out) and "MUL" not in [op.kind for op in out.ops]
    same_outputs(g, out, (1, 3, 6, 6))
