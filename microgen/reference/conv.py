"""Reference kernels for the MAC ops: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED,
BATCH_MATMUL.

Layouts (see graph/ir.py): activations NHWC; CONV_2D / TRANSPOSE_CONV filters [Cout, KH, KW, Cin/groups],
DEPTHWISE [1, KH, KW, Cout], FULLY_CONNECTED [Cout, K]. The output channel is always the last axis of
the accumulator, so per-channel requantization broadcasts along it.

Three domains, chosen by the output tensor:
- float: float64 accumulation of the float32 values, + bias, rounded once to float32, then the fused
  activation clamp. (TFLM sums in float32 in its loop order; the two agree to ~1e-6 relative.)
  Integer weights with quant params next to float activations (hybrid models, which TFLM refuses) are
  dequantized first: an approximation of TFLite's dynamic-range kernels, not their exact arithmetic.
- quantized (integer output with quant params): acc = sum (x - x_zp) * (w - w_zp), exactly, + bias, then
    rounding="tflm": MultiplyByQuantizedMultiplier per output channel (int32 form for 32-bit
      accumulators, int64 form for the 16x8 kernels' 64-bit ones), + output zero point, clamp to the
      fused activation range. Multiplier: QuantizeMultiplier(double(in_s) * double(w_s[c]) /
      double(out_s)) with the scales rounded to float32 first, as TFLM stores them. (Some TFLM sources
      take the per-tensor FC / BATCH_MATMUL product in float32; the pinned TFLM interpreter does not:
      probed with scales where the two round differently, see the tests.)
    rounding="onnx" (QLinearConv / QLinearMatMul, onnx reference implementation): multiplier =
      float32(x_s * w_s[c] / y_s) computed in float32; y = round_half_even(float64(acc) * multiplier
      + y_zp), saturated (and clamped to the fused activation range).
  TFLM's conv/FC reference ignores a per-channel filter zero point and assumes symmetric weights; here
  the filter zero point is always subtracted (0 for every valid TFLite model, so the results agree).
- plain integer (integer output without quant params): acc + bias wrapped to int32.
Padding cells contribute nothing (the input is offset by its zero point before zero padding).

Accumulator width, as measured on the TFLM interpreter: 8-bit activations accumulate in int32 (wrapped
like C would); 16-bit activations in int64 (requantized with the int64 MultiplyByQuantizedMultiplier),
except CONV_2D / FULLY_CONNECTED with an int32 bias, which TFLM instantiates with an int32 accumulator.
(TFLM reads a 16-bit DEPTHWISE_CONV_2D's int32 bias as int64 garbage; here it is just added.)

Integer sums are computed exactly: a float64 matrix product is exact while every partial sum stays below
2^53, which `_int_matmul` checks (K * max|a| * max|b|), falling back to int64 otherwise.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import UnsupportedOpError
from ..fixedpoint import (
    activation_range_float,
    activation_range_quantized,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multipliers,
    wrap_int32,
)
from ..graph import Graph, Op, Tensor
from .registry import kernel, out_like

F64_EXACT = float(2 ** 53)


# -- shared helpers (also used by pool.py) ---------------------------------------------------------

def sliding_windows(x: np.ndarray, kernel: tuple[int, ...], strides: tuple[int, ...],
                    dilations: tuple[int, ...], pads_begin: tuple[int, ...], out_spatial: tuple[int, ...],
                    pad_value=0) -> np.ndarray:
    """Windows of x [N, *spatial, C] for each output position: a (mostly strided) view
    [N, *out_spatial, *kernel, C].

    Only the begin pads are taken from the op; the end padding follows from the output size (as TFLM
    does: it uses the top/left pads and the output shape), so windows that run past the input (or past
    explicit end pads, e.g. ONNX ceil_mode) read `pad_value`, and unused trailing input is ignored.
    """
    nd = len(kernel)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    widths = [(0, 0)]
    crop = [slice(None)]
    for i in range(nd):
        need = (out_spatial[i] - 1) * strides[i] + span[i]
        end = need - x.shape[1 + i] - pads_begin[i]
        widths.append((pads_begin[i], max(end, 0)))
        crop.append(slice(0, need))
    widths.append((0, 0))
    crop.append(slice(None))
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, constant_values=pad_value)
    x = x[tuple(crop)]
    v = sliding_window_view(x, span, axis=tuple(range(1, nd + 1)))  # [N, *full, C, *span]
    index = ((slice(None),) + tuple(slice(None, None, s) for s in strides) + (slice(None),)
             + tuple(slice(None, None, d) for d in dilations))
    v = v[index]
    assert v.shape[1:1 + nd] == tuple(out_spatial), (v.shape, out_spatial)
    return np.moveaxis(v, nd + 1, -1)


def zero_point(t: Tensor) -> int:
    """The per-tensor zero point of an activation (0 without quant params)."""
    if t.quant is None:
        return 0
    if t.quant.per_channel:
        raise UnsupportedOpError(f"tensor {t.name!r} ({t.describe()}): per-axis quantized activations are "
                                 f"not supported")
    return t.quant.zp


def _along(values, ndim: int, axis: int | None) -> np.ndarray:
    """Per-axis parameters shaped to broadcast against an array of ndim dims (scalar-like if axis None)."""
    arr = np.asarray(values)
    if axis is None or arr.size == 1:
        return arr.reshape(()) if arr.size == 1 else arr
    shape = [1] * ndim
    shape[axis] = arr.size
    return arr.reshape(shape)


def _int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact product of two integer-valued float64 arrays (numpy matmul rules) as int64."""
    k = a.shape[-1]
    bound = k * (float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)))
    if bound < F64_EXACT:
        return np.matmul(a, b).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


# -- domains ---------------------------------------------------------------------------------------

class _Ctx:
    """What an op computes in: the tensors, the domain and the input/weight operands in it."""

    def __init__(self, op: Op, graph: Graph, x_t: Tensor, w_t: Tensor, out_t: Tensor):
        self.op, self.graph, self.x_t, self.w_t, self.out_t = op, graph, x_t, w_t, out_t
        if out_t.dtype.is_float:
            self.domain = "float"
        elif out_t.quant is not None:
            self.domain = "quant"
        else:
            self.domain = "int"
        if self.domain != "float" and (x_t.dtype.is_float or w_t.dtype.is_float):
            raise UnsupportedOpError(f"{op.where()} {op.kind}: float operands with an integer output "
                                     f"({x_t.describe()}, {w_t.describe()} -> {out_t.describe()})")

    def activation(self, x: np.ndarray) -> np.ndarray:
        """x - zero point (float64 integer values), or the float values in float64."""
        if self.domain == "float":
            return x.astype(np.float64)
        return x.astype(np.float64) - zero_point(self.x_t)

    def weights(self, w: np.ndarray) -> np.ndarray:
        """w - zero point per channel (float64 integer values); dequantized weights in float64 for a
        float op with quantized weights (hybrid)."""
        q = self.w_t.quant
        if self.domain == "float":
            if not self.w_t.dtype.is_float:
                if q is None:
                    raise UnsupportedOpError(f"{self.op.where()} {self.op.kind}: integer weights without "
                                             f"quant params in a float op")
                zp = _along(np.asarray(q.zero_point, np.float64), w.ndim, q.axis)
                s = _along(np.asarray(q.scale, np.float32).astype(np.float64), w.ndim, q.axis)
                return (w.astype(np.float64) - zp) * s
            return w.astype(np.float64)
        if q is None:
            return w.astype(np.float64)
        return w.astype(np.float64) - _along(np.asarray(q.zero_point, np.float64), w.ndim, q.axis)

    def dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a @ b in the domain: float64, or exact int64."""
        if self.domain == "float":
            return np.matmul(a, b)
        return _int_matmul(a, b)


def _finish(ctx: _Ctx, acc: np.ndarray, bias: np.ndarray | None, *, wide: bool) -> np.ndarray:
    """Accumulator [..., Cout] (+ bias [Cout]) -> output values in the output tensor's dtype.

    wide: the TFLM kernel accumulates in int64 (else int32, wrapped)."""
    op, out_t = ctx.op, ctx.out_t
    act = op.attr("activation", "NONE")
    if ctx.domain == "float":
        y = acc if bias is None else acc + bias.astype(np.float64)
        lo, hi = activation_range_float(act)
        return np.clip(y.astype(np.float32), np.float32(lo), np.float32(hi))
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    if ctx.domain == "int":
        return wrap_int32(acc)
    oq = out_t.quant
    if oq.per_channel:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: per-axis quantized output {out_t.describe()}")
    if ctx.w_t.quant is None or ctx.x_t.quant is None:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: quantized output but the input or weights "
                                 f"have no quant params")
    lo, hi = activation_range_quantized(act, oq.s, oq.zp, *out_t.dtype.limits())
    in_s = np.float32(ctx.x_t.quant.s)
    w_s = np.asarray(ctx.w_t.quant.scale, dtype=np.float32)
    out_s = np.float32(oq.s)
    rounding = op.attr("rounding", "tflm")
    if rounding == "onnx":
        mult = (in_s * w_s / out_s).astype(np.float64)  # float32 arithmetic, as the onnx reference
        y = np.rint(wrap_int32(acc).astype(np.float64) * mult + oq.zp)
        return np.clip(y, lo, hi)
    if rounding != "tflm":
        raise UnsupportedOpError(f"{op.where()} {op.kind}: unknown rounding {rounding!r} "
                                 f"(expected 'tflm' or 'onnx')")
    m, s = quantize_multipliers(np.float64(in_s) * w_s.astype(np.float64) / np.float64(out_s))
    if wide:
        y = wrap_int32(multiply_by_quantized_multiplier_int64(acc, m, s))
    else:
        y = multiply_by_quantized_multiplier(wrap_int32(acc), m, s)
    return np.clip(y + oq.zp, lo, hi)


def _tensors(op: Op, graph: Graph) -> tuple[Tensor, Tensor, Tensor]:
    return graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]


def _wide(x_t: Tensor, bias: np.ndarray | None, by_bias: bool) -> bool:
    """Does TFLM accumulate in int64? 16-bit activations do, except CONV_2D / FC with an int32 bias."""
    if x_t.dtype.itemsize < 2:
        return False
    return not (by_bias and bias is not None and bias.dtype == np.int32)


def _spatial_attrs(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    strides = tuple(op.attr("strides", (1, 1)))
    dilations = tuple(op.attr("dilations", (1, 1)))
    pads = tuple(op.attr("pads", (0, 0, 0, 0)))
    return strides, dilations, pads[:2]


# -- kernels ---------------------------------------------------------------------------------------

@kernel("CONV_2D")
def conv_2d(op: Op, graph: Graph, inputs: list) -> list:
    """input [N,H,W,Cin], filter [Cout,KH,KW,Cin/groups], bias [Cout] -> [N,OH,OW,Cout] (im2col)."""
    x, w, bias = (inputs + [None])[:3]
    x_t, w_t, out_t = _tensors(op, graph)
    ctx = _Ctx(op, graph, x_t, w_t, out_t)
    cout, kh, kw, cg = w.shape
    cin = x.shape[3]
    assert cin % cg == 0 and cout % (cin // cg) == 0, (x.shape, w.shape)
    groups = cin // cg
    og = cout // groups
    strides, dilations, begin = _spatial_attrs(op)
    win = sliding_windows(ctx.activation(x), (kh, kw), strides, dilations, begin, out_t.shape[1:3])
    wo = ctx.weights(w)
    n, oh, ow = win.shape[:3]
    parts = []
    for g in range(groups):
        patches = win[..., g * cg:(g + 1) * cg].reshape(n * oh * ow, kh * kw * cg)
        parts.append(ctx.dot(patches, wo[g * og:(g + 1) * og].reshape(og, -1).T))
    acc = (parts[0] if groups == 1 else np.concatenate(parts, axis=1)).reshape(n, oh, ow, cout)
    y = _finish(ctx, acc, bias, wide=_wide(x_t, bias, by_bias=True))
    return [out_like(graph, op.outputs[0], y)]


@kernel("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(op: Op, graph: Graph, inputs: list) -> list:
    """input [N,H,W,Cin], filter [1,KH,KW,Cin*M], bias [Cin*M] -> [N,OH,OW,Cin*M]; output channel c reads
    input channel c // M. One multiply-add per kernel tap."""
    x, w, bias = (inputs + [None])[:3]
    x_t, w_t, out_t = _tensors(op, graph)
    ctx = _Ctx(op, graph, x_t, w_t, out_t)
    _, kh, kw, cout = w.shape
    mult = cout // x.shape[3]
    assert mult * x.shape[3] == cout, (x.shape, w.shape)
    assert op.attr("depth_multiplier", mult) == mult, (op.attr("depth_multiplier"), mult)
    xo = ctx.activation(x)
    if mult > 1:
        xo = np.repeat(xo, mult, axis=3)
    if ctx.domain != "float":
        xo = xo.astype(np.int64)  # elementwise products: int64 is exact and as fast as float64
    wo = ctx.weights(w)[0]
    if ctx.domain != "float":
        wo = wo.astype(np.int64)
    strides, dilations, begin = _spatial_attrs(op)
    win = sliding_windows(xo, (kh, kw), strides, dilations, begin, out_t.shape[1:3])
    acc = np.zeros(win.shape[:3] + (cout,), dtype=xo.dtype)
    for i in range(kh):
        for j in range(kw):
            acc += win[:, :, :, i, j, :] * wo[i, j]
    y = _finish(ctx, acc, bias, wide=_wide(x_t, bias, by_bias=False))
    return [out_like(graph, op.outputs[0], y)]


@kernel("TRANSPOSE_CONV")
def transpose_conv(op: Op, graph: Graph, inputs: list) -> list:
    """input [N,H,W,Cin], filter [Cout,KH,KW,Cin/groups], bias [Cout] -> output tensor's [N,OH,OW,Cout].

    Scatter form of the TFLM reference: every input pixel adds x . w[:, ky, kx, :] at
    (y*stride + ky*dilation - pad_top, x*stride + kx*dilation - pad_left); positions outside the output
    are dropped, output positions nobody reaches get only the bias."""
    x, w, bias = (inputs + [None])[:3]
    x_t, w_t, out_t = _tensors(op, graph)
    ctx = _Ctx(op, graph, x_t, w_t, out_t)
    cout, kh, kw, cg = w.shape
    n, h, wd, cin = x.shape
    groups = cin // cg
    og = cout // groups
    assert groups * cg == cin and og * groups == cout, (x.shape, w.shape)
    (sh, sw), (dh, dw), (top, left) = _spatial_attrs(op)
    _, oh, ow, _ = out_t.shape
    xo = ctx.activation(x)
    wo = ctx.weights(w)
    # One product per group for all taps: [N*H*W, KH*KW*og].
    contrib = []
    for g in range(groups):
        wg = wo[g * og:(g + 1) * og].transpose(3, 1, 2, 0).reshape(cg, kh * kw * og)
        xg = xo[..., g * cg:(g + 1) * cg].reshape(-1, cg)
        contrib.append(ctx.dot(xg, wg).reshape(n, h, wd, kh, kw, og))
    taps = contrib[0] if groups == 1 else np.concatenate(contrib, axis=5)
    full_h = max((h - 1) * sh + (kh - 1) * dh + 1, top + oh)
    full_w = max((wd - 1) * sw + (kw - 1) * dw + 1, left + ow)
    full = np.zeros((n, full_h, full_w, cout), dtype=taps.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (wd - 1) * sw + 1, sw)
            full[:, rows, cols] += taps[:, :, :, i, j]
    acc = full[:, top:top + oh, left:left + ow]
    y = _finish(ctx, acc, bias, wide=_wide(x_t, bias, by_bias=False))
    return [out_like(graph, op.outputs[0], y)]


@kernel("FULLY_CONNECTED")
def fully_connected(op: Op, graph: Graph, inputs: list) -> list:
    """input [..., K] taken as [-1, K], filter [Cout, K], bias [Cout] -> rows laid out as the output
    tensor's shape."""
    x, w, bias = (inputs + [None])[:3]
    x_t, w_t, out_t = _tensors(op, graph)
    ctx = _Ctx(op, graph, x_t, w_t, out_t)
    k = w.shape[1]
    if x.size % k:
        raise UnsupportedOpError(f"{op.where()} FULLY_CONNECTED: input {x_t.describe()} does not split into "
                                 f"rows of {k} features")
    acc = ctx.dot(ctx.activation(x).reshape(-1, k), ctx.weights(w).T)
    y = _finish(ctx, acc, bias, wide=_wide(x_t, bias, by_bias=True))
    return [out_like(graph, op.outputs[0], y)]


@kernel("BATCH_MATMUL")
def batch_matmul(op: Op, graph: Graph, inputs: list) -> list:
    """a [..., M, K] @ b [..., K, N] with numpy matmul broadcasting (and 1-D promotion). Quantized: b may
    carry per-column params (axis = its last dim); TFLM's int16 kernel accumulates in int64."""
    a, b = inputs
    a_t, b_t, out_t = _tensors(op, graph)
    ctx = _Ctx(op, graph, a_t, b_t, out_t)
    if b_t.quant is not None and b_t.quant.per_channel and b_t.quant.axis != b.ndim - 1:
        raise UnsupportedOpError(f"{op.where()} BATCH_MATMUL: operand b {b_t.describe()} is quantized along "
                                 f"axis {b_t.quant.axis}; only per-column (last axis) params are supported")
    acc = ctx.dot(ctx.activation(a), ctx.weights(b))
    y = _finish(ctx, acc, None, wide=a_t.dtype.itemsize >= 2)
    return [out_like(graph, op.outputs[0], y)]
