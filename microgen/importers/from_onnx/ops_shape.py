"""Data movement: Identity, Dropout, Cast (no-op), Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
Concat, Pad, Slice, Split.

Reshape-like ops need the ONNX (row-major) order, so their input is read in it (a channels-last input
gets a TRANSPOSE, or a RESHAPE when only unit dims move). Transpose is free: its output is declared to be
stored in the layout that makes it share its input's IR tensor. Concat, Pad, Slice and Split keep
their input's layout with the axes remapped. Integer values keep their quant params (the integers are
only moved), except per-axis params through a reshape, which are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...errors import ModelFormatError
from . import layout as L
from . import qdq
from .common import CheckView, choose_layout, converter, need_const, prod, unary_layout
from .context import Ctx, QSource
from .parse import Node


def _bad(ctx: Ctx, msg: str) -> ModelFormatError:
    return ModelFormatError(f"{ctx.info.path}: {ctx.node.where()}: {msg}")


# -- aliases -------------------------------------------------------------------------------------------
def _check_dropout(view: CheckView, node: Node) -> str | None:
    if view.used(node.output(1)):
        return "the mask output of Dropout is used (training only)"
    return need_const(view, node, [1, 2], "ratio/training_mode")


@converter("Identity")
def identity(ctx: Ctx, node: Node) -> None:
    ctx.alias(node.outputs[0], node.input(0))


@converter("Dropout", check=_check_dropout)
def dropout(ctx: Ctx, node: Node) -> None:
    """Inference Dropout is the identity (training_mode must be false)."""
    training = ctx.const(node.input(2))
    if training is not None and bool(np.ravel(training)[0]):
        raise ctx.unsupported("Dropout in training mode")
    ctx.alias(node.outputs[0], node.input(0))


def _check_cast(view: CheckView, node: Node) -> str | None:
    from .parse import ONNX_TO_DTYPE
    src = view.dtype(node.input(0))
    to = ONNX_TO_DTYPE.get(int(node.attr("to", 0)))
    if src is None or to != src:
        return f"Cast from {src.value if src else '?'} to {to.value if to else '?'} of an activation"
    return None


@converter("Cast", check=_check_cast)
def cast(ctx: Ctx, node: Node) -> None:
    ctx.alias(node.outputs[0], node.input(0))


# -- reshapes ------------------------------------------------------------------------------------------
def rowmajor(ctx: Ctx, x: str) -> str:
    """An IR tensor whose row-major data is `x` in ONNX order: any stored layout that differs from it
    only by unit dims, else the ONNX-order tensor."""
    v = ctx.val(x)
    for perm in ctx.layouts(x):
        to_onnx = L.relative(perm, L.identity(v.rank))
        if perm in v.variants and L.transpose_is_reshape(L.apply(v.shape, perm), to_onnx):
            v.used = True
            return v.variants[perm]
    return ctx.get(x)


def emit_reshape(ctx: Ctx, x: str, out: str, shape) -> None:
    v = ctx.val(x)
    quant = v.quant if v.quant is None or v.quant.axis is None else None
    src = rowmajor(ctx, x) if quant is v.quant else ctx.get_q(QSource(x, None))
    ir = ctx.produce(out, shape, v.dtype, quant=quant)
    ctx.emit("RESHAPE", [src], [ir])


def _check_reshape(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1], "shape")


def reshape_target(ctx: Ctx, node: Node, in_shape) -> tuple[int, ...]:
    spec = ctx.const(node.input(1)) if node.opset >= 5 else np.asarray(node.attr("shape", []))
    spec = [int(d) for d in np.asarray(spec).ravel()]
    allowzero = int(node.attr("allowzero", 0))
    out = []
    for i, d in enumerate(spec):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise _bad(ctx, f"shape {spec}: 0 at position {i} has no input dim to copy")
            d = in_shape[i]
        out.append(d)
    total = prod(in_shape)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise _bad(ctx, f"invalid target shape {spec}")
    if -1 in out:
        known = prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise _bad(ctx, f"cannot reshape {list(in_shape)} to {spec}")
        out[out.index(-1)] = total // known
    if prod(out) != total:
        raise _bad(ctx, f"cannot reshape {list(in_shape)} ({total} values) to {spec}")
    return tuple(out)


@converter("Reshape", check=_check_reshape)
def reshape(ctx: Ctx, node: Node) -> None:
    if qdq.try_movement(ctx, node, reshape):
        return
    x = node.input(0)
    emit_reshape(ctx, x, node.outputs[0], reshape_target(ctx, node, ctx.shape(x)))


@converter("Flatten")
def flatten(ctx: Ctx, node: Node) -> None:
    if qdq.try_movement(ctx, node, flatten):
        return
    x = node.input(0)
    shape = ctx.shape(x)
    axis = int(node.attr("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    emit_reshape(ctx, x, node.outputs[0], (prod(shape[:axis]), prod(shape[axis:])))


def _axes(ctx: Ctx, node: Node) -> list[int] | None:
    if node.opset >= 13 and node.op_type in ("Squeeze", "Unsqueeze"):
        a = ctx.const(node.input(1))
        return None if a is None else [int(v) for v in np.asarray(a).ravel()]
    a = node.attr("axes")
    return None if a is None else [int(v) for v in a]


def _check_axes(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1], "axes")


@converter("Squeeze", check=_check_axes)
def squeeze(ctx: Ctx, node: Node) -> None:
    if qdq.try_movement(ctx, node, squeeze):
        return
    x = node.input(0)
    shape = ctx.shape(x)
    axes = _axes(ctx, node)
    axes = [i for i, d in enumerate(shape) if d == 1] if axes is None else [L.normalize_axis(a, len(shape))
                                                                             for a in axes]
    emit_reshape(ctx, x, node.outputs[0], tuple(d for i, d in enumerate(shape) if i not in axes))


@converter("Unsqueeze", check=_check_axes)
def unsqueeze(ctx: Ctx, node: Node) -> None:
    if qdq.try_movement(ctx, node, unsqueeze):
        return
    x = node.input(0)
    shape = list(ctx.shape(x))
    axes = _axes(ctx, node) or []
    rank = len(shape) + len(axes)
    for a in sorted(L.normalize_axis(a, rank) for a in axes):
        shape.insert(a, 1)
    emit_reshape(ctx, x, node.outputs[0], tuple(shape))


# -- Transpose -----------------------------------------------------------------------------------------
@converter("Transpose")
def transpose(ctx: Ctx, node: Node) -> None:
    """No op: the output is declared stored in the layout under which its data is exactly the input's
    IR tensor. Consumers that need another layout get a TRANSPOSE then."""
    x = node.input(0)
    v = ctx.val(x)
    t = tuple(int(a) for a in node.attr("perm", list(range(v.rank))[::-1]))
    if sorted(t) != list(range(v.rank)):
        raise _bad(ctx, f"perm {list(t)} is not a permutation of {v.rank} axes")
    p = unary_layout(ctx, x)
    ir = ctx.get(x, p)
    quant = v.quant
    if quant is not None and quant.axis is not None:
        quant = dataclasses.replace(quant, axis=t.index(quant.axis))
    w = ctx.define(node.outputs[0], L.apply(v.shape, t), v.dtype, quant=quant)
    w.variants[L.inverse(L.relative(p, t))] = ir


# -- Concat, Pad, Slice, Split --------------------------------------------------------------------------
@converter("Concat")
def concat(ctx: Ctx, node: Node) -> None:
    if qdq.try_concat(ctx, node):
        return
    names = [n for n in node.inputs if n]
    r = ctx.val(names[0]).rank
    axis = L.normalize_axis(int(node.attr("axis", 0)), r)
    nonempty = [n for n in names if prod(ctx.shape(n)) > 0] or names[:1]
    shape = list(ctx.shape(names[0]))
    shape[axis] = sum(ctx.shape(n)[axis] for n in names)
    perm = choose_layout(ctx, nonempty, r)
    quants = {ctx.val(n).quant for n in nonempty}
    quant = quants.pop() if len(quants) == 1 else None
    irs = [ctx.get(n, perm) if ctx.val(n).quant == quant else ctx.get_q(QSource(n, None), perm)
           for n in nonempty]
    ir = ctx.produce(node.outputs[0], shape, ctx.val(names[0]).dtype, perm, quant)
    ctx.emit("CONCATENATION", irs, [ir], axis=L.axis_in(perm, axis))


def _check_pad(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1, 2, 3], "pads/constant_value/axes")


@converter("Pad", check=_check_pad)
def pad(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    r = v.rank
    mode = node.attr("mode", "constant")
    if node.opset < 11:
        pads, value, axes = list(node.attr("pads", node.attr("paddings", []))), node.attr("value", 0.0), None
    else:
        pads = [int(p) for p in ctx.const(node.input(1)).ravel()]
        cv = ctx.const(node.input(2))
        value = cv.ravel()[0].item() if cv is not None and cv.size else 0
        ax = ctx.const(node.input(3))
        axes = None if ax is None else [int(a) for a in ax.ravel()]
    axes = list(range(r)) if axes is None else [L.normalize_axis(a, r) for a in axes]
    if len(pads) != 2 * len(axes):
        raise _bad(ctx, f"{len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * r, [0] * r
    for k, a in enumerate(axes):
        begin[a], end[a] = int(pads[k]), int(pads[k + len(axes)])
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise ctx.unsupported(f"Pad mode {mode!r}")
    perm = unary_layout(ctx, x)
    shape = tuple(d + b + e for d, b, e in zip(v.shape, begin, end))
    if min(shape, default=1) < 0:
        raise _bad(ctx, f"pads {pads} crop more than the input {list(v.shape)}")
    value = float(value) if v.dtype.is_float else int(value)
    src = ctx.get(x, perm)
    pos = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    crop = min(begin + end) < 0   # negative pads crop: PAD the positive part, then SLICE
    if any(b or e for b, e in pos) or not crop:
        padded = tuple(d + b + e for d, (b, e) in zip(v.shape, pos))
        mid = ctx.temp(f"{node.outputs[0]}__padded", L.apply(padded, perm), v.dtype,
                       ctx.tensors[src].quant) if crop else \
            ctx.produce(node.outputs[0], shape, v.dtype, perm, v.quant)
        ctx.emit("PAD", [src], [mid], pads=tuple(pos[p] for p in perm), mode=mode, value=value)
        src = mid
    if crop:
        lo = [max(-b, 0) for b in begin]
        hi = [lo[i] + shape[i] for i in range(len(shape))]
        ctx.emit("SLICE", [src], [ctx.produce(node.outputs[0], shape, v.dtype, perm, v.quant)],
                 begin=tuple(lo[p] for p in perm), end=tuple(hi[p] for p in perm), strides=(1,) * len(perm))


def _check_slice(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1, 2, 3, 4], "starts/ends/axes/steps")


@converter("Slice", check=_check_slice)
def slice_(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    r = v.rank
    if node.opset < 10:
        starts, ends = node.attr("starts"), node.attr("ends")
        axes, steps = node.attr("axes"), None
    else:
        starts, ends = ctx.const(node.input(1)).ravel(), ctx.const(node.input(2)).ravel()
        axes, steps = ctx.const(node.input(3)), ctx.const(node.input(4))
    axes = list(range(len(starts))) if axes is None else [L.normalize_axis(int(a), r) for a in np.ravel(axes)]
    steps = [1] * len(axes) if steps is None else [int(s) for s in np.ravel(steps)]
    begin, stop, stride = [0] * r, list(v.shape), [1] * r
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st <= 0:
            raise ctx.unsupported("Slice with a negative or zero step")
        begin[a], stop[a], stride[a] = slice(int(s), int(e), st).indices(v.shape[a])
    shape = tuple(len(range(b, e, s)) for b, e, s in zip(begin, stop, stride))
    perm = unary_layout(ctx, x)
    ir = ctx.produce(node.outputs[0], shape, v.dtype, perm, v.quant)
    ctx.emit("SLICE", [ctx.get(x, perm)], [ir], begin=tuple(begin[p] for p in perm),
             end=tuple(stop[p] for p in perm), strides=tuple(stride[p] for p in perm))


def _check_split(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1], "split")


@converter("Split", check=_check_split)
def split(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    axis = L.normalize_axis(int(node.attr("axis", 0)), v.rank)
    n = len(node.outputs)
    sizes = ctx.const(node.input(1)) if node.opset >= 13 else node.attr("split")
    if sizes is None or len(np.ravel(sizes)) == 0:
        d = v.shape[axis]
        part = -(-d // n)  # opset 18: the last part may be smaller
        sizes = [min(part, d - k * part) for k in range(n)]
    sizes = [int(s) for s in np.ravel(sizes)]
    if sum(sizes) != v.shape[axis] or len(sizes) != n:
        raise _bad(ctx, f"split sizes {sizes} do not fit dim {v.shape[axis]} into {n} outputs")
    perm = unary_layout(ctx, x)
    outs = []
    for name, size in zip(node.outputs, sizes):
        shape = list(v.shape)
        shape[axis] = size
        outs.append(ctx.produce(name, shape, v.dtype, perm, v.quant) if name else
                    ctx.temp(f"{node.label}__unused", L.apply(shape, perm), v.dtype))
    ctx.emit("SPLIT", [ctx.get(x, perm)], outs, axis=L.axis_in(perm, axis), sizes=tuple(sizes))
