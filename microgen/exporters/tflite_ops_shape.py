"""IR data-movement ops -> TFLite: RESHAPE, TRANSPOSE, CONCATENATION, PAD / PADV2, SLICE ->
STRIDED_SLICE, SPLIT / SPLIT_V, RESIZE_NEAREST_NEIGHBOR.

The attributes the IR keeps (shape, perm, paddings, slice bounds, split sizes, resize size) become the
int32 constant operand tensors TFLite takes, as converters emit them.
"""

from __future__ import annotations

import numpy as np

from ..graph import DType, Graph, Op
from .tflite_lowering import TflOp, fail, pad_ops, version_for


def reshape(op: Op, g: Graph, ctx) -> list[TflOp]:
    y = g.tensors[op.outputs[0]]
    shape = ctx.const(f"{op.outputs[0]}/shape", np.asarray(y.shape, dtype=np.int32))
    return [TflOp("RESHAPE", [op.inputs[0], shape], list(op.outputs), None, 1)]


def transpose(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    perm = ctx.const(f"{op.outputs[0]}/perm", np.asarray(op.attrs["perm"], dtype=np.int32))
    rank = len(x.shape)
    version = 6 if rank > 5 else 5 if x.dtype is DType.INT16 else 4 if rank > 4 else (
        3 if x.dtype is DType.BOOL else version_for(x.dtype, 2))
    return [TflOp("TRANSPOSE", [op.inputs[0], perm], list(op.outputs), None, version)]


def concatenation(op: Op, g: Graph, ctx) -> list[TflOp]:
    y = g.tensors[op.outputs[0]]
    if op.attrs.get("activation", "NONE") != "NONE":
        raise fail(op, "TFLM does not run CONCATENATION with a fused activation")
    if y.is_quantized:
        for name in op.inputs:
            q = g.tensors[name].quant
            if q is None or (q.scale, q.zero_point) != (y.quant.scale, y.quant.zero_point):
                raise fail(op, f"input {name!r} has quantization params ({q}) other than the output's "
                               f"({y.quant}); TFLM concatenates raw values without requantizing")
    opts = dict(axis=op.attrs["axis"], fused_activation_function=0)
    return [TflOp("CONCATENATION", list(op.inputs), list(op.outputs), ("ConcatenationOptions", opts),
                  version_for(y.dtype, 2, 3))]


def pad(op: Op, g: Graph, ctx) -> list[TflOp]:
    if op.attrs.get("mode", "constant") != "constant":
        raise fail(op, f"mode {op.attrs.get('mode')!r}: only constant padding is written (PAD / PADV2)")
    pairs = [tuple(int(v) for v in p) for p in op.attrs["pads"]]
    y = g.tensors[op.outputs[0]]
    return pad_ops(ctx, op.inputs[0], op.outputs[0], pairs, op.attrs.get("value", 0), y)


def slice_op(op: Op, g: Graph, ctx) -> list[TflOp]:
    """STRIDED_SLICE with every bound resolved to an explicit index; axes that the output tensor drops
    become shrink_axis_mask bits, any other reshape a RESHAPE after it."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    begin, end, strides = (list(op.attrs[k]) for k in ("begin", "end", "strides"))
    tb, te, ts, extents, end_mask = [], [], [], [], 0
    for i, n in enumerate(x.shape):
        sl = slice(begin[i], end[i], strides[i]) if i < len(begin) else slice(None)
        idx = range(n)[sl]
        if len(idx) == 0:
            raise fail(op, f"the slice of axis {i} is empty")
        step = idx.step if len(idx) > 1 else 1
        stop = idx[-1] + (1 if step > 0 else -1)
        if stop < 0:
            end_mask |= 1 << i
            stop = 0
        tb.append(idx[0])
        te.append(stop)
        ts.append(step)
        extents.append(len(idx))
    shrink, j, out = 0, 0, list(y.shape)
    for i, n in enumerate(extents):
        if j < len(out) and out[j] == n:
            j += 1
        elif n == 1:
            shrink |= 1 << i
        else:
            j = -1
            break
    if j != len(out):
        shrink = 0
    rank = len(x.shape)
    version = 4 if rank > 4 else 3 if x.dtype is DType.BOOL else (
        2 if x.dtype in (DType.INT8, DType.INT16) else 1)
    ins = [op.inputs[0]] + [ctx.const(f"{op.outputs[0]}/{k}", np.asarray(v, dtype=np.int32))
                            for k, v in (("begin", tb), ("end", te), ("strides", ts))]
    opts = ("StridedSliceOptions", dict(end_mask=end_mask, shrink_axis_mask=shrink))
    if j == len(out):
        return [TflOp("STRIDED_SLICE", ins, list(op.outputs), opts, version)]
    mid = ctx.activation(f"{op.outputs[0]}/sliced", tuple(extents), x.dtype, x.quant)
    shape = ctx.const(f"{op.outputs[0]}/shape", np.asarray(y.shape, dtype=np.int32))
    return [TflOp("STRIDED_SLICE", ins, [mid], opts, version),
            TflOp("RESHAPE", [mid, shape], list(op.outputs), None, 1)]


def split(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    sizes = [int(s) for s in op.attrs["sizes"]]
    axis = ctx.const(f"{op.outputs[0]}/axis", np.asarray(op.attrs["axis"], dtype=np.int32))
    n = len(sizes)
    if len(set(sizes)) == 1:
        version = 4 if x.dtype is DType.INT16 else 3 if x.dtype is DType.INT32 else version_for(x.dtype, 2)
        return [TflOp("SPLIT", [axis, op.inputs[0]], list(op.outputs), ("SplitOptions", dict(num_splits=n)),
                      version)]
    size_t = ctx.const(f"{op.outputs[0]}/size_splits", np.asarray(sizes, dtype=np.int32))
    opts = ("SplitVOptions", dict(num_splits=n))
    return [TflOp("SPLIT_V", [op.inputs[0], size_t, axis], list(op.outputs), opts,
                  version_for(x.dtype, 2, 3))]


def resize_nearest_neighbor(op: Op, g: Graph, ctx) -> list[TflOp]:
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    size = ctx.const(f"{op.outputs[0]}/size", np.asarray(y.shape[1:3], dtype=np.int32))
    align, half = bool(op.attrs.get("align_corners")), bool(op.attrs.get("half_pixel_centers"))
    version = 4 if x.dtype is DType.INT16 else 3 if (align or half) else version_for(x.dtype, 2)
    opts = ("ResizeNearestNeighborOptions", dict(align_corners=align, half_pixel_centers=half))
    return [TflOp("RESIZE_NEAREST_NEIGHBOR", [op.inputs[0], size], list(op.outputs), opts, version)]


LOWERINGS = {
    "RESHAPE": reshape, "TRANSPOSE": transpose, "CONCATENATION": concatenation, "PAD": pad,
    "SLICE": slice_op, "SPLIT": split, "RESIZE_NEAREST_NEIGHBOR": resize_nearest_neighbor,
}
