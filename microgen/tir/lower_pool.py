"""Pooling and reductions: AVERAGE_POOL and MAX_POOL over the N spatial dims of [N, *spatial, C], and MEAN.

Pools: for each output position the window is clipped to the input once, outside the channel and window
loops (first input row h0 = max(o * stride - pad, 0), valid rows nh = min(o * stride - pad + K, H) - h0
for dilation 1; build-time tables of both otherwise), so the innermost loops carry no padding test.
Dimensions where no window ever leaves the input get constant bounds. Semantics are
microgen.reference.pool's (TFLM's): padded cells never win a max and never count in an average unless
count_include_pad, where they count in the divisor and add the zero point; the integer average rounds
half away from zero; quantized pools need equal input and output params (no rescaling).

MEAN: one loop nest over the kept axes (outermost) with the reduced axes inside; the int8 / int16
recipe is TFLM's QuantizedMeanOrSum: the zero-point correction starts the accumulator, and 1 / count is
folded into the multiplier at build time.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import activation_range_float, activation_range_quantized, quantize_multiplier, wrap_int32
from ..graph import DType, Op, Tensor
from ..reference.conv import zero_point
from ..reference.pool import _same_params
from .lower import LowerContext, lowering
from .nodes import (Assign, Decl, Expr, IntImm, PrimFunc, Var, add, binop, call, cast, clamp, const, gt, load, loop,
                    maximum, minimum, mul, select, seq, store, sub)
from .lower_data import describe, offset_text as _off, row_major_strides, strided_nest

I32 = DType.INT32
_SPATIAL_NAMES = {1: ("w",), 2: ("h", "w"), 3: ("d", "h", "w")}


class _Dim:
    """One spatial dimension of a pool: the window of output o covers input rows o * stride - pad_begin
    + k * dilation for k in [0, kernel); `lo`/`hi` are the valid k range per o (computed exactly here)."""

    def __init__(self, size, out, kernel, stride, dilation, pad_begin, pad_end):
        self.size, self.out, self.k, self.st, self.dil = size, out, kernel, stride, dilation
        self.pb, self.pe = pad_begin, pad_end
        start = np.arange(out) * stride - pad_begin
        self.lo = np.maximum(0, -(start // dilation))                                 # ceil(-start / d)
        self.hi = np.minimum(kernel, -((start - size) // dilation))                   # ceil((size - start) / d)
        self.valid = np.maximum(self.hi - self.lo, 0)
        # count_include_pad: cells inside [-pad_begin, size + pad_end) (the window never starts before it)
        self.padded = np.maximum(np.minimum(kernel, -((start - size - pad_end) // dilation)), 0)
        self.full = bool(np.all(self.lo == 0) and np.all(self.hi == kernel))
        self.may_be_empty = bool(np.any(self.valid == 0))


def _geometry(op: Op, x: Tensor, y: Tensor) -> list[_Dim]:
    kernel = [int(k) for k in op.attrs["kernel"]]
    nd = len(kernel)
    if len(x.shape) != nd + 2:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: a {nd}-D kernel on a {len(x.shape)}-D input")
    if nd not in _SPATIAL_NAMES:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: {nd}-D pooling is not supported")
    strides = [int(s) for s in op.attrs["strides"]]
    dil = [int(d) for d in (op.attr("dilations") or (1,) * nd)]
    pads = [int(p) for p in (op.attr("pads") or (0,) * (2 * nd))]
    return [_Dim(x.shape[1 + i], y.shape[1 + i], kernel[i], strides[i], dil[i], pads[i], pads[nd + i])
            for i in range(nd)]


def _window(ctx: LowerContext, dim: _Dim, name: str, o: Expr):
    """(declarations, first input index, valid count, count with padding) of the window at output o."""
    if dim.full:
        return [], add(mul(o, dim.st), -dim.pb), const(dim.k), const(dim.k)
    first, count = Var(f"{name}0", I32), Var(f"n{name}", I32)
    start = add(mul(o, dim.st), -dim.pb)
    if dim.dil == 1:
        # Clip only the sides some window crosses.
        starts = np.arange(dim.out) * dim.st - dim.pb
        clip_lo, clip_hi = bool(np.any(starts < 0)), bool(np.any(starts + dim.k > dim.size))
        end = minimum(add(start, dim.k), dim.size) if clip_hi else add(start, dim.k)
        n = sub(end, first) if clip_lo else (minimum(sub(dim.size, start), dim.k) if clip_hi else const(dim.k))
        stmts = [Decl(first, maximum(start, 0) if clip_lo else start),
                 Decl(count, maximum(n, 0) if dim.may_be_empty else n)]
    else:
        lo = ctx.const(f"{name}_first", dim.lo * dim.dil + np.arange(dim.out) * dim.st - dim.pb, I32,
                       f"first input {name} each window reads, per output {name}")
        n = ctx.const(f"{name}_count", dim.valid, I32, f"window taps inside the input along {name}, per output {name}")
        stmts = [Decl(first, load(lo, o)), Decl(count, load(n, o))]
    if np.all(dim.padded == dim.k):
        padded = const(dim.k)
    elif dim.dil == 1 and not np.any(dim.padded == 0):
        padded = minimum(sub(dim.size + dim.pe + dim.pb, mul(o, dim.st)), dim.k)
    else:
        padded = load(ctx.const(f"{name}_padded", dim.padded, I32, f"window cells inside the padding, per {name}"), o)
    return stmts, first, count, padded


@lowering("MAX_POOL", "AVERAGE_POOL")
def lower_pool(ctx: LowerContext, op: Op) -> PrimFunc:
    g = ctx.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _same_params(op, x, y)
    dims = _geometry(op, x, y)
    nd = len(dims)
    names = _SPATIAL_NAMES[nd]
    batch, chans = x.shape[0], x.shape[-1]
    is_float = x.dtype.is_float
    if is_float and x.dtype != DType.FLOAT32:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: {x.describe()} inputs are not supported")
    is_max = op.kind == "MAX_POOL"
    include_pad = bool(op.attr("count_include_pad", False)) and not is_max
    act = op.attr("activation", "NONE")
    if is_float:
        act_lo, act_hi = activation_range_float(act)
    else:
        lim = x.dtype.limits()
        q = (x.quant.s, x.quant.zp) if x.quant is not None else (1.0, 0)
        act_lo, act_hi = activation_range_quantized(act, q[0], q[1], *lim) if act != "NONE" else lim
    fill = 0 if is_float else zero_point(x)
    empty = any(d.may_be_empty for d in dims) if not include_pad else \
        bool(np.any(np.prod(np.meshgrid(*[d.padded for d in dims]), axis=0) == 0))
    if is_max and is_float and any(d.may_be_empty for d in dims):
        raise UnsupportedOpError(f"{op.where()} MAX_POOL: float windows entirely inside the padding")
    src, dst = ctx.param(x.name, "input", readonly=True), ctx.param(y.name, "output")
    xs, ys = row_major_strides(x.shape), row_major_strides(y.shape)
    acc = Var("acc", DType.FLOAT32 if is_float else I32)

    def position(b, outs, wins):
        firsts, counts, padded = ([w[k] for w in wins] for k in range(3))
        out_terms = [mul(b, ys[0])] + [mul(o, ys[1 + i]) for i, o in enumerate(outs)]

        def channel(c):
            def window(i, ks):
                if i == nd:
                    rows = [add(f, mul(k, d.dil)) for f, k, d in zip(firsts, ks, dims)]
                    v = load(src, _sum([mul(b, xs[0])] + [mul(r, xs[1 + j]) for j, r in enumerate(rows)] + [c]))
                    return Assign(acc, maximum(acc, v) if is_max else add(acc, cast(v, acc.dtype) if is_float else v))
                return loop(f"k{names[i]}", counts[i], lambda k: window(i + 1, ks + [k]))
            if is_max:
                init = load(src, _sum([mul(b, xs[0])] + [mul(f, xs[1 + j]) for j, f in enumerate(firsts)] + [c])) \
                    if is_float else const(act_lo)
                result = acc
                if is_float and act != "NONE":
                    result = maximum(result, const(float(act_lo)))
                if (is_float and act_hi != np.inf) or (not is_float and act_hi < x.dtype.limits()[1]):
                    result = minimum(result, const(float(act_hi)) if is_float else act_hi)
                return seq(Decl(acc, init), window(0, []), store(dst, _sum(out_terms + [c]), cast(result, y.dtype)))
            return _average(acc, window(0, []), valid if include_pad else None, divisor, is_float, fill, empty,
                            (act_lo, act_hi), x, y, dst, _sum(out_terms + [c]))
        if is_max:
            return loop("c", chans, channel)
        # The divisor depends on the window only: computed once per output position.
        valid = _product(counts)
        count = _product(padded) if include_pad else valid
        divisor = count if isinstance(count, IntImm) else Var("cnt", I32)
        return seq(None if divisor is count else Decl(divisor, count), loop("c", chans, channel))

    def spatial(b, i, outs, wins):
        """Loop over output dim i; its window bounds are computed once per o_i, outside the inner dims."""
        if i == nd:
            return position(b, outs, wins)

        def at(o):
            decls, first, count, padded = _window(ctx, dims[i], names[i], o)
            return seq(*decls, spatial(b, i + 1, outs + [o], wins + [(first, count, padded)]))
        return loop(f"o{names[i]}", dims[i].out, at)
    body = loop("b", batch, lambda b: spatial(b, 0, [], []))
    geom = ", ".join(f"{n}: kernel {d.k}, stride {d.st}, dilation {d.dil}, pads {d.pb}/{d.pe}"
                     for n, d in zip(names, dims))
    notes = [geom, f"fused activation {act} -> [{act_lo}, {act_hi}]" if act != "NONE" else "",
             "count_include_pad" if include_pad else ""]
    return PrimFunc(ctx.func_name(op), (src, dst), body, doc=describe(op, [x], [y], *notes))


def _sum(terms) -> Expr:
    out = const(0)
    for t in terms:
        out = add(out, t)
    return out


def _average(acc, window, valid, divisor, is_float, fill, empty, act, x, y, dst, index):
    """acc = sum of the window; y = sum / divisor (integer: rounded half away from zero), clamped.
    valid: the number of input cells in the window when the divisor counts padded cells too, else None."""
    init = const(0.0) if is_float else const(0)
    if fill and not is_float and valid is not None:
        init = mul(sub(divisor, valid), fill)  # count_include_pad: the padded cells add the zero point
    lo, hi = act
    if is_float:
        result = binop("/", acc, cast(divisor, DType.FLOAT32))
        if lo != -np.inf:
            result = maximum(result, const(float(lo)))
        if hi != np.inf:
            result = minimum(result, const(float(hi)))
        if empty:
            result = select(gt(divisor, 0), result, const(0.0))
    else:
        half = divisor // 2
        result = select(gt(acc, 0), add(acc, half) // divisor, sub(acc, half) // divisor)
        if empty:
            result = select(gt(divisor, 0), result, fill)
        if (lo, hi) != x.dtype.limits():  # an average of in-range values is in range
            result = clamp(result, lo, hi)
    return seq(Decl(acc, init), window, store(dst, index, cast(result, y.dtype)))


def _product(values) -> Expr:
    out = const(1)
    for v in values:
        out = mul(out, v)
    return out


# -- MEAN ------------------------------------------------------------------------------------------
@lowering("MEAN")
def lower_mean(ctx: LowerContext, op: Op) -> PrimFunc:
    """Mean over `axes`: float in float32 (sum / count); int8/int16 TFLM QuantizedMeanOrSum
    (requantize(sum - zp_in * count, m', s') + zp_out with 1/count folded into m'); plain integers
    sum / count truncated toward zero."""
    g = ctx.graph
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    rank = len(x.shape)
    axes = sorted({int(a) % rank for a in op.attrs["axes"]}) if rank else []
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    kept = [a for a in range(rank) if a not in axes]
    xs = row_major_strides(x.shape)
    src, dst = ctx.param(x.name, "input", readonly=True), ctx.param(y.name, "output")
    kshape = [x.shape[a] for a in kept]
    notes = [f"axes {axes}, {count} values per mean"]
    is_float = x.dtype.is_float
    if is_float and (x.dtype != DType.FLOAT32 or y.dtype != DType.FLOAT32):
        raise UnsupportedOpError(f"{op.where()} MEAN: {x.describe()} -> {y.describe()} is not supported")
    if not is_float and (y.dtype.is_float or x.dtype.itemsize > 4 or y.dtype.itemsize > 4):
        raise UnsupportedOpError(f"{op.where()} MEAN: {x.describe()} -> {y.describe()} is not supported")
    acc = Var("acc", DType.FLOAT32 if is_float else I32)
    lo, hi = (0, 0) if is_float else y.dtype.limits()

    if is_float:
        init, wide = const(0.0), False

        def finish(a):
            return binop("/", a, const(float(count))) if count else const(0.0)
    elif count == 0:
        init, wide = const(0), False

        def finish(a):
            return const(0)
    else:
        in_zp = zero_point(x) if x.quant is not None else 0
        bound = count * (abs(in_zp) + max(abs(v) for v in x.dtype.limits()))
        wide = bound >= 1 << 31  # partial sums might wrap: accumulate unsigned, as int32 wraps in TFLM
        if x.quant is None and y.quant is None:
            if DType.UINT32 in (x.dtype, y.dtype):
                raise UnsupportedOpError(f"{op.where()} MEAN: {x.describe()} -> {y.describe()} is not supported")
            init = const(0)

            def finish(a):
                mean = a // count if count > 1 else a
                x_lo, x_hi = x.dtype.limits()
                # A mean of values in range is in range, and an int32 one needs no clamp to int32.
                in_range = (lo <= x_lo and x_hi <= hi and not wide) or (lo, hi) == I32.limits()
                return mean if in_range else clamp(mean, lo, hi)
            notes.append("integer mean: sum / count truncated toward zero")
        elif x.quant is None or y.quant is None:
            raise UnsupportedOpError(f"{op.where()} MEAN: only one of input and output has quant params")
        else:
            out_zp = zero_point(y)
            m, shift = quantize_multiplier(float(np.float32(x.quant.s)) / float(np.float32(y.quant.s)))
            fold = min(count.bit_length() - 1, 32, 31 + shift)
            m = (m << fold) // count
            shift -= fold
            init = const(int(wrap_int32(np.int64(-in_zp * count))))

            def finish(a):
                return clamp(add(call("mg_requantize", I32, a, m, shift), out_zp), lo, hi)
            notes.append(f"y = clamp(requantize(sum{_off(in_zp * count)}, {m}, {shift}){_off(-out_zp)}, {lo}, {hi})")
            notes.append(f"(1/{count} folded into the multiplier" + (f"; the input zero point {in_zp} times {count} "
                                                                     f"taken off the sum)" if in_zp else ")"))

    def outer(ix):
        def inner(jx):
            v = load(src, add(jx[0], ix[1]))
            if wide:
                return Assign(acc, cast(binop("+", cast(acc, DType.UINT32), cast(v, DType.UINT32)), I32))
            return Assign(acc, add(acc, cast(v, acc.dtype) if is_float or x.dtype.itemsize >= 4 else v))
        reduce = strided_nest([x.shape[a] for a in axes], [[xs[a] for a in axes]], inner,
                              names=("r", "s", "t", "u", "v", "z", "r2", "s2"))
        return seq(Decl(acc, init), reduce, store(dst, ix[0], cast(finish(acc), y.dtype)))
    body = strided_nest(kshape, [row_major_strides(kshape), [xs[a] for a in kept]], outer)
    return PrimFunc(ctx.func_name(op), (src, dst), body, doc=describe(op, [x], [y], *notes))
