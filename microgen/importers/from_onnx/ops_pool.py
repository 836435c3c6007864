"""Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean.

Pools run channels-last on [N, *spatial, C] (1-D, 2-D and 3-D). IR pool `pads` are the explicit (or
auto_pad-resolved) ONNX pads (begin..., end...); with ceil_mode the output tensor is larger than the
floor formula gives, and the cells its last windows reach past the end pads never win a max and never
count in an average (the IR pool semantics: the output shape decides the end padding).
"""

from __future__ import annotations

import numpy as np

from . import layout as L
from . import qdq
from .common import CheckView, converter, need_const, unary_layout, window_geometry
from .context import Ctx
from .parse import Node


def _check_pool(view: CheckView, node: Node) -> str | None:
    r = view.rank(node.input(0))
    if r is not None and not 3 <= r <= 5:
        return f"{r - 2}-D pooling (1-D, 2-D and 3-D are supported)"
    if node.op_type == "MaxPool" and view.used(node.output(1)):
        return "MaxPool with an indices (argmax) output"
    if node.op_type == "MaxPool" and not node.attr("kernel_shape"):
        return "MaxPool without kernel_shape"
    return None


@converter("MaxPool", "AveragePool", check=_check_pool)
def pool(ctx: Ctx, node: Node) -> None:
    if node.op_type == "MaxPool" and qdq.try_movement(ctx, node, pool):
        return
    x = node.input(0)
    v = ctx.val(x)
    kernel = tuple(int(k) for k in node.attr("kernel_shape"))
    ceil = bool(node.attr("ceil_mode", 0))
    strides, dil, pads, out_sp = window_geometry(ctx, node, v.shape[2:], kernel, ceil)
    attrs = dict(kernel=kernel, strides=strides, dilations=dil if any(d != 1 for d in dil) else None,
                 pads=pads if any(pads) else None)
    avg = node.op_type == "AveragePool"
    if avg:
        attrs["count_include_pad"] = bool(node.attr("count_include_pad", 0))
    perm = L.channels_last(v.rank)
    out = ctx.produce(node.outputs[0], (v.shape[0], v.shape[1], *out_sp), v.dtype, perm, v.quant)
    ctx.emit("AVERAGE_POOL" if avg else "MAX_POOL", [ctx.get(x, perm)], [out], **attrs)


def _check_global(view: CheckView, node: Node) -> str | None:
    r = view.rank(node.input(0))
    return f"global pooling of a rank-{r} tensor" if r is not None and r < 3 else None


@converter("GlobalAveragePool", check=_check_global)
def global_average_pool(ctx: Ctx, node: Node) -> None:
    """MEAN over the spatial dims of the channels-last tensor, keeping them as 1s."""
    x = node.input(0)
    v = ctx.val(x)
    perm = L.channels_last(v.rank)
    out = ctx.produce(node.outputs[0], (*v.shape[:2], *(1,) * (v.rank - 2)), v.dtype, perm, v.quant)
    ctx.emit("MEAN", [ctx.get(x, perm)], [out], axes=tuple(range(1, v.rank - 1)), keepdims=True)


@converter("GlobalMaxPool", check=_check_global)
def global_max_pool(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    perm = L.channels_last(v.rank)
    spatial = tuple(v.shape[2:])
    out = ctx.produce(node.outputs[0], (*v.shape[:2], *(1,) * len(spatial)), v.dtype, perm, v.quant)
    ctx.emit("MAX_POOL", [ctx.get(x, perm)], [out], kernel=spatial, strides=(1,) * len(spatial))


def _check_reduce(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1], "axes")


@converter("ReduceMean", check=_check_reduce)
def reduce_mean(ctx: Ctx, node: Node) -> None:
    """MEAN in whatever layout the input is stored, with the axes remapped."""
    x = node.input(0)
    v = ctx.val(x)
    if node.opset >= 18:
        a = ctx.const(node.input(1))
        axes = [] if a is None else [int(i) for i in np.ravel(a)]
    else:
        axes = [int(i) for i in node.attr("axes", [])]
    keep = bool(node.attr("keepdims", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            ctx.alias(node.outputs[0], x)
            return
        axes = list(range(v.rank))
    axes = sorted({L.normalize_axis(a, v.rank) for a in axes})
    perm = unary_layout(ctx, x)
    if keep:
        shape, out_perm = tuple(1 if i in axes else d for i, d in enumerate(v.shape)), perm
    else:
        shape, out_perm = tuple(d for i, d in enumerate(v.shape) if i not in axes), L.drop_axes(perm, axes)
    quant = v.quant if v.quant is None or v.quant.axis is None else None
    out = ctx.produce(node.outputs[0], shape, v.dtype, out_perm, quant)
    ctx.emit("MEAN", [ctx.get(x, perm)], [out], axes=tuple(sorted(L.axis_in(perm, a) for a in axes)),
             keepdims=keep)
