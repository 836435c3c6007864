"""Reference kernels for AVERAGE_POOL, MAX_POOL (over the N spatial dims of [N, *spatial, C]) and MEAN.

Pooling (TFLM reference_integer_ops / reference_ops pooling):
- Windows start at out * stride - pad_begin; cells outside the input are skipped (never win a max,
  never count in an average) unless count_include_pad (ONNX), where the explicitly padded cells count in
  the divisor and add the value 0 (float) or the zero point (quantized, i.e. real 0). Cells a window
  reaches past the explicit end pads (ONNX ceil_mode) never count. The end padding itself follows
  from the output shape (see conv.sliding_windows).
- Quantized pools do not requantize: TFLite requires equal input and output params, and so do we
  (UnsupportedOpError otherwise). Integer average: sum / count rounded half away from zero, i.e.
  (sum +- count/2) / count with C truncation; then the fused activation clamp.
- float average: the window sum / count in float32 terms (computed in float64, rounded once).
- A window with no input cell at all (possible only with huge pads) averages to 0 / the zero point.

MEAN (TFLM reduce, QuantizedMeanOrSum):
- float: the mean in float64, rounded to float32.
- int8/int16: (m, shift) = QuantizeMultiplier(in_s / out_s) folded with 1/count:
  s' = min(floor(log2 count), 32, 31 + shift), m' = (m << s') / count, shift' = shift - s';
  out = MultiplyByQuantizedMultiplier(int32(sum - in_zp * count), m', shift') + out_zp, saturated.
  Also when input and output params are equal: some TFLM sources then take a plain truncating
  sum / count, but the pinned TFLM interpreter does not (measured: mean(3, 4) = 4, mean(-3, -4) = -3).
- integer without quant params (ONNX ReduceMean on integers): sum / count truncated toward zero.
"""

from __future__ import annotations


import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import (
    activation_range_float,
    activation_range_quantized,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    wrap_int32,
)
from ..graph import Graph, Op, Tensor
from .conv import sliding_windows, zero_point
from .registry import kernel, out_like


def _geometry(op: Op, x: np.ndarray):
    kernel_ = tuple(int(k) for k in op.attrs["kernel"])
    nd = len(kernel_)
    if x.ndim != nd + 2:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: a {nd}-D kernel on a {x.ndim}-D input")
    strides = tuple(int(s) for s in op.attrs["strides"])
    dilations = tuple(op.attr("dilations") or (1,) * nd)
    pads = tuple(op.attr("pads") or (0,) * (2 * nd))
    return kernel_, strides, dilations, pads


def _same_params(op: Op, x_t: Tensor, out_t: Tensor) -> None:
    """Quantized pools pass values through unrescaled: the params must match."""
    if x_t.quant is None and out_t.quant is None:
        return
    if x_t.quant is None or out_t.quant is None or (
            np.float32(x_t.quant.s) != np.float32(out_t.quant.s) or x_t.quant.zp != out_t.quant.zp):
        raise UnsupportedOpError(f"{op.where()} {op.kind}: input and output quantization differ "
                                 f"({x_t.describe()} -> {out_t.describe()}); quantized pooling needs "
                                 f"equal params")


def _clamp(op: Op, out_t: Tensor, y: np.ndarray) -> np.ndarray:
    act = op.attr("activation", "NONE")
    if out_t.dtype.is_float:
        lo, hi = activation_range_float(act)
        return np.clip(y, np.float32(lo), np.float32(hi))
    limits = out_t.dtype.limits()
    if out_t.quant is None:
        lo, hi = limits if act == "NONE" else activation_range_quantized(act, 1.0, 0, *limits)
    else:
        lo, hi = activation_range_quantized(act, out_t.quant.s, out_t.quant.zp, *limits)
    return np.clip(y, lo, hi)


def _window_axes(nd: int) -> tuple[int, ...]:
    return tuple(range(1 + nd, 1 + 2 * nd))


@kernel("MAX_POOL")
def max_pool(op: Op, graph: Graph, inputs: list) -> list:
    """[N, *spatial, C] -> [N, *out_spatial, C]: the largest input cell of each window."""
    (x,) = inputs
    x_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _same_params(op, x_t, out_t)
    kernel_, strides, dilations, pads = _geometry(op, x)
    nd = len(kernel_)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    win = sliding_windows(x, kernel_, strides, dilations, pads[:nd], out_t.shape[1:1 + nd], lowest)
    y = win.max(axis=_window_axes(nd))
    return [out_like(graph, op.outputs[0], _clamp(op, out_t, y))]


@kernel("AVERAGE_POOL")
def average_pool(op: Op, graph: Graph, inputs: list) -> list:
    """[N, *spatial, C] -> [N, *out_spatial, C]: the mean of each window (see the module docstring)."""
    (x,) = inputs
    x_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    _same_params(op, x_t, out_t)
    kernel_, strides, dilations, pads = _geometry(op, x)
    nd = len(kernel_)
    out_spatial = out_t.shape[1:1 + nd]
    include_pad = bool(op.attr("count_include_pad", False))
    is_float = x.dtype.kind == "f"
    fill = 0 if is_float else zero_point(x_t)
    values = x.astype(np.float64 if is_float else np.int64)
    # Which cells count: the input, plus the explicit pads with count_include_pad.
    mask = np.ones((1,) + x.shape[1:1 + nd] + (1,), dtype=np.int64)
    begin = pads[:nd]
    if include_pad and any(pads):
        widths = [(0, 0)] + [(pads[i], pads[nd + i]) for i in range(nd)] + [(0, 0)]
        mask = np.pad(mask, widths, constant_values=1)
        values = np.pad(values, widths, constant_values=fill)
        begin = (0,) * nd
    axes = _window_axes(nd)
    count = sliding_windows(mask, kernel_, strides, dilations, begin, out_spatial, 0).sum(axis=axes)
    total = sliding_windows(values, kernel_, strides, dilations, begin, out_spatial, 0).sum(axis=axes)
    empty = count == 0
    count = np.where(empty, 1, count)
    if is_float:
        y = (total / count).astype(np.float32)
    else:
        # TFLM: (sum + count/2) / count for sum > 0, (sum - count/2) / count otherwise, C truncation.
        y = np.sign(total) * ((np.abs(total) + count // 2) // count)
        y = np.where(empty, fill, y)
    return [out_like(graph, op.outputs[0], _clamp(op, out_t, y))]


@kernel("MEAN")
def mean(op: Op, graph: Graph, inputs: list) -> list:
    """Mean over `axes` (negative axes count from the end; duplicates ignored); keepdims only decides the
    output shape, which comes from the output tensor."""
    (x,) = inputs
    x_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axes = tuple(sorted({int(a) % x.ndim for a in op.attrs["axes"]})) if x.ndim else ()
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if x.dtype.kind == "f":
        y = x.astype(np.float64).mean(axis=axes) if count else np.zeros(out_t.shape)
        return [out_like(graph, op.outputs[0], y.astype(np.float32))]
    if out_t.dtype.is_float:
        raise UnsupportedOpError(f"{op.where()} MEAN: integer input with a float output")
    total = wrap_int32(x.astype(np.int64).sum(axis=axes))
    lo, hi = out_t.dtype.limits()
    if count == 0:
        return [out_like(graph, op.outputs[0], np.zeros(out_t.shape, dtype=np.int64))]
    if x_t.quant is None and out_t.quant is None:
        y = np.sign(total) * (np.abs(total) // count)
        return [out_like(graph, op.outputs[0], np.clip(y, lo, hi))]
    if x_t.quant is None or out_t.quant is None:
        raise UnsupportedOpError(f"{op.where()} MEAN: only one of input and output has quant params")
    in_zp, out_zp = zero_point(x_t), zero_point(out_t)
    m, shift = quantize_multiplier(float(np.float32(x_t.quant.s)) / float(np.float32(out_t.quant.s)))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    m = (m << fold) // count
    shift -= fold
    y = multiply_by_quantized_multiplier(wrap_int32(total - in_zp * count), m, shift) + out_zp
    return [out_like(graph, op.outputs[0], np.clip(y, lo, hi))]
