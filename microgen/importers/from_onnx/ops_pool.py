"""Pooling and reductions: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean.

Pools run channels-last on [N, *spatial, C] (1-D, 2-D and 3-D). IR pool `pads` are
(begin..., end...) per spatial dim and follow the usual floor formula; ONNX ceil_mode is turned into
extra end padding, which never wins a max and never counts in an average. Where ONNX would count the
explicit padding but not the ceil-mode extension (count_include_pad=1 with ceil_mode), the explicit
padding becomes a zero PAD before a pool that excludes its own padding.
"""

from __future__ import annotations

import numpy as np

from . import layout as L
from . import qdq
from .common import CheckView, ceil_extra, converter, need_const, unary_layout, window_geometry
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
    r = v.rank
    kernel = tuple(int(k) for k in node.attr("kernel_shape"))
    strides, dil, pads, out_sp = window_geometry(node, v.shape[2:], kernel, bool(node.attr("ceil_mode", 0)))
    extra = ceil_extra(v.shape[2:], pads, strides, dil, kernel, out_sp)
    avg = node.op_type == "AveragePool"
    cip = bool(node.attr("count_include_pad", 0)) and avg
    n = r - 2
    perm = L.channels_last(r)
    src = ctx.get(x, perm)
    if cip and any(extra):
        if any(pads):
            # count the explicit padding (zeros), but not the ceil-mode extension
            padded = tuple(d + pads[k] + pads[n + k] for k, d in enumerate(v.shape[2:]))
            tmp = ctx.temp(f"{x}__padded", (v.shape[0], *padded, v.shape[1]), v.dtype,
                           ctx.tensors[src].quant)
            zero = v.quant.zp if v.quant is not None and v.quant.axis is None else 0
            ctx.emit("PAD", [src], [tmp], pads=((0, 0), *((pads[k], pads[n + k]) for k in range(n)), (0, 0)),
                     mode="constant", value=float(zero) if v.dtype.is_float else int(zero))
            src, pads = tmp, (0,) * (2 * n)
        cip = False
    all_pads = tuple(pads[:n]) + tuple(pads[n + k] + extra[k] for k in range(n))
    attrs = dict(kernel=kernel, strides=strides, dilations=dil if any(d != 1 for d in dil) else None,
                 pads=all_pads if any(all_pads) else None)
    if avg:
        attrs["count_include_pad"] = cip
    out = ctx.produce(node.outputs[0], (v.shape[0], v.shape[1], *out_sp), v.dtype, perm, v.quant)
    ctx.emit("AVERAGE_POOL" if avg else "MAX_POOL", [src], [out], **attrs)


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
