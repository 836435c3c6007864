"""Elementwise ops, activations, Softmax and BatchNormalization.

Layout: elementwise ops run channels-last when all their activation operands are available
channels-last (constants such as a [C,1,1] bias are re-laid-out for free), else in the ONNX order.
Integer tensors without quant params follow ONNX plain-integer arithmetic; an integer tensor that
carries quant params (a QuantizeLinear output) is read as plain integers too, because ONNX Add/Clip/...
on integer tensors work on the raw values.
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelFormatError
from . import layout as L
from . import qdq
from .common import (CheckView, broadcast_shape, choose_layout, clip_bounds, converter, elementwise,
                     fused_output, need_const, prod, unary_layout)
from .context import Ctx, QSource
from .parse import Node

_BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL"}


def _check_binary(view: CheckView, node: Node) -> str | None:
    if node.opset < 7 and node.attr("broadcast") and node.attr("axis") is not None:
        return "legacy (opset < 7) broadcasting with an axis attribute"
    return None


def int_elementwise(ctx: Ctx, kind: str, names, out: str, **attrs) -> str:
    """Plain integer elementwise op: operands read without quant params."""
    shape = broadcast_shape(ctx, [ctx.shape(n) for n in names])
    perm = choose_layout(ctx, names, len(shape))
    irs = [ctx.get_q(QSource(n, None), perm, len(shape)) if ctx.val(n).quant is not None
           else ctx.get_broadcast(n, len(shape), perm) for n in names]
    ir = ctx.produce(out, shape, ctx.val(names[0]).dtype, perm)
    ctx.emit(kind, irs, [ir], **attrs)
    return ir


@converter("Add", "Sub", "Mul", check=_check_binary)
def binary(ctx: Ctx, node: Node) -> None:
    if qdq.try_binary(ctx, node):
        return
    kind = _BINARY[node.op_type]
    a, b = node.input(0), node.input(1)
    if ctx.val(a).dtype.is_int:
        int_elementwise(ctx, kind, [a, b], node.outputs[0])
        return
    out, act = fused_output(ctx, node)
    elementwise(ctx, kind, [a, b], out, act)


def _check_div(view: CheckView, node: Node) -> str | None:
    dt = view.dtype(node.input(0))
    if dt is not None and not dt.is_float:
        return "integer Div"
    return need_const(view, node, [1], "divisor")


@converter("Div", check=_check_div)
def div(ctx: Ctx, node: Node) -> None:
    """x / c with a constant c: multiplication by 1/c (float; within an ulp of the division)."""
    d = ctx.const(node.input(1))
    recip = ctx.define_const(ctx.fresh(f"{node.label}__reciprocal"),
                             (1.0 / d.astype(np.float64)).astype(d.dtype))
    out, act = fused_output(ctx, node)
    elementwise(ctx, "MUL", [node.input(0), recip.name], out, act)


def unary(ctx: Ctx, node: Node, kind: str, **attrs) -> None:
    x = node.input(0)
    v = ctx.val(x)
    perm = unary_layout(ctx, x)
    src = ctx.get_q(QSource(x, None), perm) if v.quant is not None else ctx.get(x, perm)
    ir = ctx.produce(node.outputs[0], v.shape, v.dtype, perm)
    ctx.emit(kind, [src], [ir], **attrs)


def _check_clip(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1, 2], "min/max")


@converter("Relu", "Clip", check=_check_clip)
def clip(ctx: Ctx, node: Node) -> None:
    if qdq.try_unary(ctx, node):
        return
    lo, hi = clip_bounds(ctx, node)
    if ctx.val(node.input(0)).dtype.is_int:
        lo = None if lo is None else int(lo)
        hi = None if hi is None else int(hi)
    unary(ctx, node, "CLIP", min=lo, max=hi)


@converter("Sigmoid")
def sigmoid(ctx: Ctx, node: Node) -> None:
    if qdq.try_unary(ctx, node):
        return
    unary(ctx, node, "LOGISTIC")


@converter("Tanh")
def tanh(ctx: Ctx, node: Node) -> None:
    unary(ctx, node, "TANH")


@converter("LeakyRelu")
def leaky_relu(ctx: Ctx, node: Node) -> None:
    unary(ctx, node, "LEAKY_RELU", alpha=float(node.attr("alpha", 0.01)))


@converter("HardSwish")
def hard_swish(ctx: Ctx, node: Node) -> None:
    unary(ctx, node, "HARD_SWISH")


# -- Softmax ------------------------------------------------------------------------------------------
def softmax_axis(node: Node, rank: int) -> int:
    """The ONNX axis (non-negative). Before opset 13 the default is 1 and the input is coerced to 2-D
    at the axis; from 13 on the default is -1 and the axis is a plain reduction axis."""
    axis = int(node.attr("axis", 1 if node.opset < 13 else -1))
    return L.normalize_axis(axis, rank)


@converter("Softmax")
def softmax(ctx: Ctx, node: Node) -> None:
    if qdq.try_unary(ctx, node):
        return
    x = node.input(0)
    v = ctx.val(x)
    r = v.rank
    axis = softmax_axis(node, r)
    out = node.outputs[0]
    if node.opset < 13 and axis != r - 1:
        # opset < 13: softmax over the flattened trailing dims [prod(:axis), prod(axis:)]
        flat = (prod(v.shape[:axis]), prod(v.shape[axis:]))
        a = ctx.temp(f"{x}__2d", flat, v.dtype)
        ctx.emit("RESHAPE", [ctx.get(x)], [a])
        b = ctx.temp(f"{out}__2d", flat, v.dtype)
        ctx.emit("SOFTMAX", [a], [b], axis=-1, beta=1.0)
        ctx.emit("RESHAPE", [b], [ctx.produce(out, v.shape, v.dtype)])
        return
    cl = L.channels_last(r)
    if ctx.prefers_cl(x) and L.axis_in(cl, axis) == r - 1:
        perm, ir_axis = cl, -1
    else:
        perm, ir_axis = L.identity(r), (-1 if axis == r - 1 else axis)
    src = ctx.get(x, perm)
    ctx.emit("SOFTMAX", [src], [ctx.produce(out, v.shape, v.dtype, perm)], axis=ir_axis, beta=1.0)


# -- BatchNormalization --------------------------------------------------------------------------------
def _check_bn(view: CheckView, node: Node) -> str | None:
    if node.attr("training_mode", 0):
        return "training_mode=1 (normalises with batch statistics)"
    for i in range(1, len(node.outputs)):
        if view.used(node.output(i)):
            return f"training output {node.output(i)!r} (running mean/variance) is used"
    return need_const(view, node, [1, 2, 3, 4], "scale/bias/mean/var")


@converter("BatchNormalization", check=_check_bn)
def batchnorm(ctx: Ctx, node: Node) -> None:
    """Inference BatchNormalization folded into MUL + ADD: y = x * s + t with
    s = scale / sqrt(var + eps), t = bias - mean * s (computed in float64)."""
    x = node.input(0)
    v = ctx.val(x)
    params = [ctx.const(node.input(i)).astype(np.float64) for i in range(1, 5)]
    scale, bias, mean, var = params
    eps = float(node.attr("epsilon", 1e-5))
    with np.errstate(all="ignore"):  # a negative variance gives NaN, as in onnxruntime
        s = scale / np.sqrt(var + eps)
    t = bias - mean * s
    r = v.rank
    c = v.shape[1] if r >= 2 else v.shape[0]

    def shaped(a: np.ndarray) -> np.ndarray:
        if a.size == c:
            return a.reshape((c,) + (1,) * max(r - 2, 0))
        if a.size == prod(v.shape[1:]):  # opset < 9 spatial=0: per-activation params
            return a.reshape(v.shape[1:])
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: parameter of {a.size} values for "
                               f"input {list(v.shape)}")

    sc = ctx.define_const(ctx.fresh(f"{node.label}__scale"), shaped(s).astype(v.dtype.np))
    sh = ctx.define_const(ctx.fresh(f"{node.label}__shift"), shaped(t).astype(v.dtype.np))
    mid = ctx.fresh(f"{node.label}__scaled")
    elementwise(ctx, "MUL", [x, sc.name], mid)
    out, act = fused_output(ctx, node)
    elementwise(ctx, "ADD", [mid, sh.name], out, act)
