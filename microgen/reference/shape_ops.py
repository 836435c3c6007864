"""Reference kernels for data movement: RESHAPE, TRANSPOSE, SPLIT, SLICE, PAD, RESIZE_NEAREST_NEIGHBOR,
CONCATENATION.

All of them move values without arithmetic, so they work for every dtype (float32, int8, uint8, int16,
int32, ...) and give the same bits as TFLM's reference kernels (which are memcpy loops). The exceptions:
- CONCATENATION of quantized inputs whose params differ from the output's requantizes them (see
  `_concat_requantize`), and a fused activation clamps the output.
- PAD's constant `value` is a raw value in the tensor's own dtype: the importer resolves it (see `pad`).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import activation_range_float, activation_range_quantized
from ..graph import Graph, Op, QuantParams, Tensor
from ..fixedpoint import np_round_half_away
from .registry import kernel, out_like


def _axis(op: Op, axis: int, ndim: int) -> int:
    """A possibly negative axis as an index in [0, ndim)."""
    if not -ndim <= axis < ndim:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: axis {axis} is out of range for a {ndim}-D tensor")
    return axis % ndim


@kernel("RESHAPE")
def reshape(op: Op, graph: Graph, inputs: list) -> list:
    """Same values in row-major order, in the output tensor's shape."""
    return [out_like(graph, op.outputs[0], inputs[0])]


@kernel("TRANSPOSE")
def transpose(op: Op, graph: Graph, inputs: list) -> list:
    """out = np.transpose(x, perm); perm has one entry per input dimension."""
    x = inputs[0]
    perm = tuple(int(p) for p in op.attrs["perm"])
    in_range = all(-x.ndim <= p < x.ndim for p in perm)
    if not in_range or sorted(p % x.ndim for p in perm) != list(range(x.ndim)):
        raise UnsupportedOpError(f"{op.where()} TRANSPOSE: perm {list(perm)} is not a permutation of the "
                                 f"{x.ndim} dimensions of the input")
    return [out_like(graph, op.outputs[0], np.transpose(x, perm))]


@kernel("SPLIT")
def split(op: Op, graph: Graph, inputs: list) -> list:
    """Cut x along `axis` into consecutive parts of `sizes` (one per output; they sum to the axis length)."""
    x = inputs[0]
    axis = _axis(op, int(op.attrs["axis"]), x.ndim)
    sizes = [int(s) for s in op.attrs["sizes"]]
    if len(sizes) != len(op.outputs) or sum(sizes) != x.shape[axis] or min(sizes, default=0) < 0:
        raise UnsupportedOpError(f"{op.where()} SPLIT: sizes {sizes} do not cut axis {axis} of length "
                                 f"{x.shape[axis]} into {len(op.outputs)} parts")
    parts = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
    return [out_like(graph, name, part) for name, part in zip(op.outputs, parts)]


@kernel("SLICE")
def strided_slice(op: Op, graph: Graph, inputs: list) -> list:
    """out = x[begin[0]:end[0]:strides[0], ...] reshaped to the output tensor's shape.

    Each begin/end entry is an int or None and means exactly what it means in a Python slice: negative
    values count from the end, None runs to the edge in the stride's direction. So an importer that
    resolves TFLite's STRIDED_SLICE (masks, clamping) must write None (not -1) for "through index 0"
    with a negative stride. Axes beyond len(begin) are taken whole. Shrunk axes (shrink_axis_mask) are
    dropped by the final reshape to the output tensor's shape.
    """
    x = inputs[0]
    begin, end, strides = (tuple(op.attrs[k]) for k in ("begin", "end", "strides"))
    if not len(begin) == len(end) == len(strides) <= x.ndim:
        raise UnsupportedOpError(f"{op.where()} SLICE: begin {list(begin)}, end {list(end)} and strides "
                                 f"{list(strides)} do not fit a {x.ndim}-D input")
    if any(s == 0 for s in strides):
        raise UnsupportedOpError(f"{op.where()} SLICE: a stride is 0 ({list(strides)})")
    index = tuple(slice(None if b is None else int(b), None if e is None else int(e), int(s))
                  for b, e, s in zip(begin, end, strides))
    return [out_like(graph, op.outputs[0], x[index])]


_PAD_MODES = ("constant", "reflect", "edge", "wrap")   # numpy.pad mode names


@kernel("PAD")
def pad(op: Op, graph: Graph, inputs: list) -> list:
    """Pad x by `pads` ((before, after) per dimension).

    mode: "constant" fills with `value`, a raw value of the tensor's own dtype (no quantization is
    applied here). What TFLM fills with, for the importer to put in `value`: PADV2's constant_values
    tensor (its raw stored value); PAD (no constant_values) the output zero point for int8 tensors, but
    0 for int16, int32 and float32 tensors. "reflect" mirrors without repeating the edge (ONNX reflect,
    TFLite MIRROR_PAD REFLECT), "edge" repeats the edge, "wrap" wraps around (numpy semantics).
    Negative pads (ONNX cropping) are not supported: the importer turns them into a SLICE.
    """
    x = inputs[0]
    pads = tuple(tuple(int(v) for v in p) for p in op.attrs["pads"])
    mode = op.attrs.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise UnsupportedOpError(f"{op.where()} PAD: unknown mode {mode!r} (expected one of "
                                 f"{', '.join(_PAD_MODES)})")
    if len(pads) != x.ndim or any(len(p) != 2 for p in pads):
        raise UnsupportedOpError(f"{op.where()} PAD: pads {pads} do not give (before, after) for each of the "
                                 f"{x.ndim} dimensions")
    if any(v < 0 for p in pads for v in p):
        raise UnsupportedOpError(f"{op.where()} PAD: negative pads {pads} are not supported")
    if mode != "constant" and any(n == 0 and (b or a) for n, (b, a) in zip(x.shape, pads)):
        raise UnsupportedOpError(f"{op.where()} PAD: mode {mode!r} cannot pad an empty dimension")
    if mode == "constant":
        value = np.asarray(op.attrs.get("value", 0)).astype(x.dtype)
        out = np.pad(x, pads, mode="constant", constant_values=value)
    else:
        out = np.pad(x, pads, mode=mode)
    return [out_like(graph, op.outputs[0], out)]


def _nearest_source(out_size: int, in_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM GetNearestNeighbor for every output coordinate: the input coordinate it copies.

    Computed in float32 like TFLM: scale = in/out (or (in-1)/(out-1) with align_corners), then
    (o + 0.5 if half_pixel_centers) * scale, rounded half away from zero with align_corners and floored
    otherwise, capped at in_size - 1 (and at 0 below with half_pixel_centers).
    """
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    pos = (np.arange(out_size, dtype=np.float32) + offset) * scale
    src = np_round_half_away(pos) if align_corners else np.floor(pos)
    src = np.minimum(src.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        src = np.maximum(src, 0)
    return src


@kernel("RESIZE_NEAREST_NEIGHBOR")
def resize_nearest_neighbor(op: Op, graph: Graph, inputs: list) -> list:
    """Nearest-neighbour resize of x [N, H, W, C] to the output tensor's H and W (TFLM semantics)."""
    x = inputs[0]
    out_t = graph.tensors[op.outputs[0]]
    if x.ndim != 4 or len(out_t.shape) != 4:
        raise UnsupportedOpError(f"{op.where()} RESIZE_NEAREST_NEIGHBOR: takes [N, H, W, C] tensors, got "
                                 f"{list(x.shape)} -> {list(out_t.shape)}")
    align = bool(op.attrs.get("align_corners", False))
    half = bool(op.attrs.get("half_pixel_centers", False))
    rows = _nearest_source(out_t.shape[1], x.shape[1], align, half)
    cols = _nearest_source(out_t.shape[2], x.shape[2], align, half)
    return [out_like(graph, op.outputs[0], x[:, rows][:, :, cols])]


@kernel("CONCATENATION")
def concatenation(op: Op, graph: Graph, inputs: list) -> list:
    """Concatenate the inputs along `axis`, then apply the fused activation.

    Quantized: an input whose (scale, zero point) equal the output's is copied; one whose params differ
    is requantized with TFLite's ConcatenationWithScaling recipe (`_concat_requantize`). TFLM itself never
    requantizes (its kernel is a copy): it refuses int8 inputs whose params differ from the output's
    (Prepare fails), and for int16 it only asks for zero points of 0 and copies raw values even when the
    scales differ. TFLite converters always give concatenation inputs the output's params, so this only
    matters for other graphs, where requantizing is what the op means. TFLM also rejects fused
    activations; here they clamp the output (quantized: to CalculateActivationRangeQuantized's bounds).
    """
    out_t = graph.tensors[op.outputs[0]]
    axis = _axis(op, int(op.attrs["axis"]), len(out_t.shape))
    activation = op.attrs.get("activation", "NONE")
    parts = []
    for name, x in zip(op.inputs, inputs):
        in_t = graph.tensors[name]
        if out_t.is_quantized and in_t.is_quantized and (in_t.quant.scale, in_t.quant.zero_point) != (
                out_t.quant.scale, out_t.quant.zero_point):
            x = _concat_requantize(op, x, in_t.quant, out_t)
        parts.append(x.astype(out_t.dtype.np, copy=False))
    out = np.concatenate(parts, axis=axis)
    if activation != "NONE":
        if out_t.is_quantized:
            q = out_t.quant
            lo, hi = activation_range_quantized(activation, q.s, q.zp, *out_t.dtype.limits())
        elif out_t.dtype.is_float:
            lo, hi = activation_range_float(activation)
        else:
            raise UnsupportedOpError(f"{op.where()} CONCATENATION: fused {activation} on an integer output "
                                     f"without quantization params")
        out = np.clip(out, lo, hi)
    return [out_like(graph, op.outputs[0], out)]


def _concat_requantize(op: Op, x: np.ndarray, in_q: QuantParams, out_t: Tensor) -> np.ndarray:
    """TFLite reference ConcatenationWithScaling, for any integer output type, all in float32:
    scale = in_scale * (1 / out_scale), bias = -in_zp * scale,
    q = clamp(round_half_away(x * scale + bias) + out_zp)."""
    if in_q.per_channel or out_t.quant.per_channel:
        raise UnsupportedOpError(f"{op.where()} CONCATENATION: per-axis quantized inputs with different "
                                 f"params cannot be concatenated")
    f32 = np.float32
    scale = f32(in_q.s) * (f32(1.0) / f32(out_t.quant.s))
    bias = f32(-in_q.zp) * scale
    value = np_round_half_away(x.astype(f32) * scale + bias).astype(np.int64) + out_t.quant.zp
    lo, hi = out_t.dtype.limits()
    return np.clip(value, lo, hi)
