"""Converters of the TFLite data-movement ops: RESHAPE / SQUEEZE / EXPAND_DIMS, TRANSPOSE, CONCATENATION,
PAD / PADV2, STRIDED_SLICE / SLICE, SPLIT / SPLIT_V and RESIZE_NEAREST_NEIGHBOR.

Constant operands (shapes, perms, paddings, begin/end, axes, sizes) become attributes and are no
longer op inputs. Every attribute is checked against the static output shapes in the file, so a
corrupt or inconsistent file fails here with ModelFormatError instead of in a kernel.
"""

from __future__ import annotations

from ...graph import DType
from . import geometry
from .context import Converted, OpContext


def reshape(ctx: OpContext) -> Converted:
    """RESHAPE, SQUEEZE and EXPAND_DIMS: the output tensor's static shape is the result; the shape /
    axis operand (constant or not) is dropped."""
    ctx.arity(1, 2)
    x, out = ctx.tensor(0), ctx.out()
    if x.size != out.size:
        raise ctx.fail(f"cannot reshape {list(x.shape)} ({x.size} values) to {list(out.shape)} ({out.size})")
    return Converted("RESHAPE", (ctx.name(0),))


def transpose(ctx: OpContext) -> Converted:
    ctx.arity(2)
    x, out = ctx.tensor(0), ctx.out()
    rank = len(x.shape)
    perm = tuple(ctx.axis(p, rank) for p in ctx.ints(1, "permutation"))
    if sorted(perm) != list(range(rank)) or out.shape != tuple(x.shape[p] for p in perm):
        raise ctx.fail(f"perm {list(perm)} does not turn {list(x.shape)} into {list(out.shape)}")
    return Converted("TRANSPOSE", (ctx.name(0),), dict(perm=perm))


def concatenation(ctx: OpContext) -> Converted:
    n = len(ctx.op.inputs)
    ctx.arity(1, max(n, 1))
    out = ctx.out()
    axis = ctx.axis(int(ctx.options["Axis"]), len(out.shape))
    parts = [ctx.tensor(i) for i in range(n)]
    total = 0
    for t in parts:
        if len(t.shape) != len(out.shape) or any(a != b for i, (a, b) in enumerate(zip(t.shape, out.shape))
                                                  if i != axis):
            raise ctx.fail(f"input {t.name!r} {list(t.shape)} does not fit output {list(out.shape)} "
                           f"on axis {axis}")
        total += t.shape[axis]
    if total != out.shape[axis]:
        raise ctx.fail(f"inputs add up to {total} along axis {axis}, the output has {out.shape[axis]}")
    return Converted("CONCATENATION", tuple(ctx.name(i) for i in range(n)),
                     dict(axis=axis, activation=ctx.activation()))


def pad(ctx: OpContext) -> Converted:
    """PAD / PADV2 -> PAD (constant mode). value: PADV2's constant_values raw value; PAD fills like TFLM:
    the output zero point for int8/uint8 tensors, 0 for everything else (int16 has zero point 0)."""
    ctx.arity(2, 3 if ctx.op.name == "PADV2" else 2)
    x, out = ctx.tensor(0), ctx.out()
    rank = len(x.shape)
    flat = ctx.ints(1, "paddings")
    if len(flat) != 2 * rank or any(v < 0 for v in flat):
        raise ctx.fail(f"paddings {flat} are not non-negative (before, after) pairs for a {rank}-D input")
    pads = tuple((flat[2 * i], flat[2 * i + 1]) for i in range(rank))
    if out.shape != tuple(n + b + a for n, (b, a) in zip(x.shape, pads)):
        raise ctx.fail(f"padding {list(x.shape)} by {[list(p) for p in pads]} does not give "
                       f"{list(out.shape)}")
    if ctx.name(2):
        data = ctx.const(2, "constant value")
        if data.size != 1 or data.dtype != x.dtype.np:
            raise ctx.fail(f"the constant value must be one {x.dtype.value}, got "
                           f"{data.dtype}{list(data.shape)}")
        value = data.reshape(-1)[0].item()
    elif out.dtype in (DType.INT8, DType.UINT8) and out.quant is not None and not out.quant.per_channel:
        value = out.quant.zp
    else:
        value = 0.0 if out.dtype.is_float else 0
    return Converted("PAD", (ctx.name(0),), dict(pads=pads, mode="constant", value=value))


def strided_slice(ctx: OpContext) -> Converted:
    """Masks, negative indices, clamping and shrink_axis resolved as TFLM does (geometry.strided_slice);
    ellipsis_mask and new_axis_mask are unsupported variants."""
    ctx.arity(4)
    x, out = ctx.tensor(0), ctx.out()
    o = ctx.options
    if int(o["EllipsisMask"]) or int(o["NewAxisMask"]):
        raise ctx.unsupported("ellipsis_mask / new_axis_mask are not supported")
    begin, end, strides = ctx.ints(1, "begin"), ctx.ints(2, "end"), ctx.ints(3, "strides")
    if not len(begin) == len(end) == len(strides) <= len(x.shape) or 0 in strides:
        raise ctx.fail(f"begin {begin}, end {end} and strides {strides} do not fit a {len(x.shape)}-D input")
    shrink = int(o["ShrinkAxisMask"])
    b, e, s, sizes = geometry.strided_slice(x.shape, begin, end, strides, int(o["BeginMask"]),
                                            int(o["EndMask"]), shrink, bool(o["Offset"]))
    pad = len(x.shape) - len(begin)
    kept = tuple(n for i, n in enumerate(sizes) if not (shrink << pad) >> i & 1)
    if kept != out.shape:
        raise ctx.fail(f"the slice of {list(x.shape)} has shape {list(kept)}, the output is "
                       f"{list(out.shape)}")
    return Converted("SLICE", (ctx.name(0),), dict(begin=tuple(b), end=tuple(e), strides=tuple(s)))


def slice_op(ctx: OpContext) -> Converted:
    """SLICE (begin, size; size -1 = to the end) -> IR SLICE with stride 1."""
    ctx.arity(3)
    x, out = ctx.tensor(0), ctx.out()
    begin, size = ctx.ints(1, "begin"), ctx.ints(2, "size")
    if not len(begin) == len(size) == len(x.shape):
        raise ctx.fail(f"begin {begin} and size {size} do not fit a {len(x.shape)}-D input")
    end = [n if s == -1 else b + s for b, s, n in zip(begin, size, x.shape)]
    if any(not 0 <= b <= e <= n for b, e, n in zip(begin, end, x.shape)):
        raise ctx.fail(f"begin {begin} and size {size} reach outside the input {list(x.shape)}")
    sizes = [e - b for b, e in zip(begin, end)]
    if list(out.shape) != sizes:
        raise ctx.fail(f"the slice has shape {sizes}, the output is {list(out.shape)}")
    attrs = dict(begin=tuple(begin), end=tuple(end), strides=(1,) * len(begin))
    return Converted("SLICE", (ctx.name(0),), attrs)


def _split(ctx: OpContext, data_input: int, axis: int, sizes: list[int]) -> Converted:
    x = ctx.tensor(data_input)
    outs = [ctx.out(k) for k in range(len(ctx.op.outputs))]
    if len(sizes) != len(outs) or any(s < 0 for s in sizes) or sum(sizes) != x.shape[axis]:
        raise ctx.fail(f"sizes {sizes} do not cut axis {axis} of {list(x.shape)} into {len(outs)} outputs")
    for t, size in zip(outs, sizes):
        if t.shape != x.shape[:axis] + (size,) + x.shape[axis + 1:]:
            raise ctx.fail(f"output {t.name!r} {list(t.shape)} is not a {size}-wide part of {list(x.shape)}")
    return Converted("SPLIT", (ctx.name(data_input),), dict(axis=axis, sizes=tuple(sizes)))


def split(ctx: OpContext) -> Converted:
    """SPLIT: inputs (axis, input), num_splits equal parts."""
    ctx.arity(2, outputs=None)
    x = ctx.tensor(1)
    axis_values = ctx.ints(0, "axis")
    if len(axis_values) != 1:
        raise ctx.fail(f"the axis operand holds {len(axis_values)} values")
    axis = ctx.axis(axis_values[0], len(x.shape))
    n = len(ctx.op.outputs)
    if int(ctx.options["NumSplits"]) not in (0, n) or x.shape[axis] % n:
        raise ctx.fail(f"cannot split axis {axis} of {list(x.shape)} into {ctx.options['NumSplits']} equal "
                       f"parts for {n} outputs")
    return _split(ctx, 1, axis, [x.shape[axis] // n] * n)


def split_v(ctx: OpContext) -> Converted:
    """SPLIT_V: inputs (input, size_splits, axis); one size may be -1 (the rest)."""
    ctx.arity(3, outputs=None)
    x = ctx.tensor(0)
    axis_values = ctx.ints(2, "axis")
    if len(axis_values) != 1:
        raise ctx.fail(f"the axis operand holds {len(axis_values)} values")
    axis = ctx.axis(axis_values[0], len(x.shape))
    sizes = ctx.ints(1, "size_splits")
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    return _split(ctx, 0, axis, sizes)


def resize_nearest_neighbor(ctx: OpContext) -> Converted:
    ctx.arity(2)
    x, out = ctx.tensor(0), ctx.out()
    ctx.rank(x, 4, "input")
    ctx.rank(out, 4, "output")
    if (out.shape[0], out.shape[3]) != (x.shape[0], x.shape[3]) or 0 in x.shape[1:3]:
        raise ctx.fail(f"cannot resize {list(x.shape)} to {list(out.shape)}")
    size = ctx.tensor(1)
    if size.data is not None and [int(v) for v in size.data.reshape(-1)] != list(out.shape[1:3]):
        raise ctx.fail(f"size operand {size.data.tolist()} differs from the output's {list(out.shape[1:3])}")
    attrs = dict(align_corners=bool(ctx.options["AlignCorners"]),
                 half_pixel_centers=bool(ctx.options["HalfPixelCenters"]))
    return Converted("RESIZE_NEAREST_NEIGHBOR", (ctx.name(0),), attrs)


CONVERTERS = {
    "RESHAPE": reshape,
    "SQUEEZE": reshape,
    "EXPAND_DIMS": reshape,
    "TRANSPOSE": transpose,
    "CONCATENATION": concatenation,
    "PAD": pad,
    "PADV2": pad,
    "STRIDED_SLICE": strided_slice,
    "SLICE": slice_op,
    "SPLIT": split,
    "SPLIT_V": split_v,
    "RESIZE_NEAREST_NEIGHBOR": resize_nearest_neighbor,
}

OPTIONS = {
    "CONCATENATION": "ConcatenationOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "SPLIT": "SplitOptions", "SPLIT_V": "SplitVOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
}
