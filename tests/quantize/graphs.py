"""Small float graphs built in code for the quantizer tests (seeded weights, NHWC)."""

from __future__ import annotations

import numpy as np

from microgen.graph import DType, Graph, Op, Tensor, verify
from microgen.graph.ops import with_defaults

F32 = DType.FLOAT32


class GraphBuilder:
    """Append ops to a float graph; activations get shapes from the caller."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.inputs: list[str] = []

    def input(self, name: str, shape) -> str:
        self.tensors[name] = Tensor(name, tuple(shape), F32)
        self.inputs.append(name)
        return name

    def const(self, name: str, data) -> str:
        data = np.asarray(data, dtype=np.float32)
        self.tensors[name] = Tensor(name, tuple(data.shape), F32, None, data)
        return name

    def weights(self, name: str, shape, scale: float = 0.3) -> str:
        return self.const(name, self.rng.normal(0, scale, size=shape))

    def op(self, kind: str, inputs, out: str, shape, **attrs) -> str:
        self.tensors[out] = Tensor(out, tuple(shape), F32)
        self.ops.append(Op(kind, tuple(inputs), (out,), with_defaults(kind, attrs), name=out, index=len(self.ops)))
        return out

    def op_multi(self, kind: str, inputs, outs: dict, **attrs) -> tuple[str, ...]:
        """An op with several outputs: outs = {name: shape}."""
        for name, shape in outs.items():
            self.tensors[name] = Tensor(name, tuple(shape), F32)
        self.ops.append(Op(kind, tuple(inputs), tuple(outs), with_defaults(kind, attrs), name=kind.lower(),
                           index=len(self.ops)))
        return tuple(outs)

    def graph(self, outputs) -> Graph:
        return verify(Graph(self.name, dict(self.tensors), tuple(self.ops), tuple(self.inputs), tuple(outputs)))


def all_ops_graph() -> Graph:
    """One float graph using every op kind the quantizer handles in the int8 C path and in TFLM."""
    b = GraphBuilder("all_ops", seed=3)
    x = b.input("x", (1, 8, 8, 3))
    c1 = b.op("CONV_2D", [x, b.weights("w1", (8, 3, 3, 3)), b.weights("b1", (8,), 0.1)], "conv1", (1, 8, 8, 8),
              pads=(1, 1, 1, 1), activation="RELU")
    d1 = b.op("DEPTHWISE_CONV_2D", [c1, b.weights("w2", (1, 3, 3, 8)), b.weights("b2", (8,), 0.1)], "dw",
              (1, 8, 8, 8), pads=(1, 1, 1, 1))
    a1 = b.op("ADD", [c1, d1], "add", (1, 8, 8, 8), activation="RELU6")
    m1 = b.op("MUL", [a1, b.const("gain", np.linspace(0.5, 1.5, 8).reshape(1, 1, 1, 8))], "mul", (1, 8, 8, 8))
    s1 = b.op("SUB", [m1, d1], "sub", (1, 8, 8, 8))
    l1 = b.op("LEAKY_RELU", [s1], "leaky", (1, 8, 8, 8), alpha=0.1)
    h1 = b.op("HARD_SWISH", [l1], "hswish", (1, 8, 8, 8))
    cat = b.op("CONCATENATION", [h1, c1], "concat", (1, 8, 8, 16), axis=3)
    p1 = b.op("MAX_POOL", [cat], "maxpool", (1, 4, 4, 16), kernel=(2, 2), strides=(2, 2))
    pd = b.op("PAD", [p1], "pad", (1, 6, 6, 16), pads=((0, 0), (1, 1), (1, 1), (0, 0)))
    p2 = b.op("AVERAGE_POOL", [pd], "avgpool", (1, 3, 3, 16), kernel=(2, 2), strides=(2, 2))
    mean = b.op("MEAN", [p2], "mean", (1, 1, 1, 16), axes=(1, 2), keepdims=True)
    r = b.op("RESHAPE", [mean], "flat", (1, 16))
    fc = b.op("FULLY_CONNECTED", [r, b.weights("wf", (10, 16)), b.weights("bf", (10,), 0.1)], "logits", (1, 10))
    lg = b.op("LOGISTIC", [fc], "sigmoid", (1, 10))
    th = b.op("TANH", [fc], "tanh", (1, 10))
    sm = b.op("SOFTMAX", [fc], "probs", (1, 10))
    return b.graph([sm, lg, th])


def more_ops_graphs() -> dict[str, Graph]:
    """Ops all_ops_graph leaves out: BATCH_MATMUL (two activations; a constant), TRANSPOSE, SLICE,
    RESIZE_NEAREST_NEIGHBOR, SPLIT, a standalone RELU, TRANSPOSE_CONV."""
    out = {}
    b = GraphBuilder("bmm", seed=1)
    x = b.input("x", (1, 4, 6))
    t = b.op("TRANSPOSE", [x], "t", (1, 6, 4), perm=(0, 2, 1))
    m = b.op("BATCH_MATMUL", [x, t], "mm", (1, 4, 4))
    k = b.op("BATCH_MATMUL", [m, b.weights("k", (4, 3))], "mk", (1, 4, 3))
    out["batch_matmul"] = b.graph([k])
    b = GraphBuilder("slices", seed=2)
    x = b.input("x", (1, 8, 8, 4))
    s = b.op("SLICE", [x], "s", (1, 4, 8, 4), begin=(0, 2, 0, 0), end=(1, 6, 8, 4), strides=(1, 1, 1, 1))
    r = b.op("RESIZE_NEAREST_NEIGHBOR", [s], "rz", (1, 8, 16, 4))
    a, c = b.op_multi("SPLIT", [r], {"a": (1, 8, 16, 2), "c": (1, 8, 16, 2)}, axis=3, sizes=(2, 2))
    y = b.op("ADD", [a, c], "sum", (1, 8, 16, 2))
    relu = b.op("CLIP", [y], "relu", (1, 8, 16, 2), min=0.0, max=None)
    out["slice_resize_split"] = b.graph([relu])
    b = GraphBuilder("tconv", seed=3)
    x = b.input("x", (1, 4, 4, 3))
    tc = b.op("TRANSPOSE_CONV", [x, b.weights("w", (5, 3, 3, 3)), b.weights("bias", (5,))], "tc", (1, 8, 8, 5),
              strides=(2, 2), pads=(0, 0, 1, 1))
    out["transpose_conv"] = b.graph([tc])
    return out
