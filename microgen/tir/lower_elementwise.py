"""Elementwise ops: ADD, SUB, MUL (numpy broadcasting), CLIP, LEAKY_RELU, QUANTIZE, DEQUANTIZE.

Each kernel is one pass over the output; output element i is computed from the input elements it
depends on, all read before y[i] is written, so every kernel is correct when the planner places the
output over a same-shaped input (in place). Broadcasting is a loop nest with build-time strides
(0 along broadcast dimensions), merged where contiguous: without broadcasting it is a single loop.

Arithmetic follows microgen.reference (bit-exact with TFLM): which recipe runs is decided by
reference.elementwise.arithmetic_of (float, quantized 8/16-bit, or plain wrapping integers), and every
multiplier, shift, zero point and clamp bound is a number computed here at build time. Plain integer
arithmetic is done in unsigned C types, so it wraps as the reference does without signed overflow.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import (activation_range_float, multiply_by_quantized_multiplier, quantize_multiplier,
                          quantize_multipliers, wrap_int32)
from ..graph import DType, Op, Tensor
from ..reference.activations import _quantized_bound
from ..reference.elementwise import add_sub_params, arithmetic_of, quant_of
from .lower import LowerContext, lowering
from .nodes import (Decl, Expr, IntImm, PrimFunc, Stmt, Var, add, binop, call, cast, clamp, const, ge, gt,
                    load, loop, maximum, minimum, mul, select, seq, store, sub)
from .lower_data import (activation_bounds, apply_bounds, describe, float_to_int, offset_text as _off, operand,
                         row_major_strides, strided_nest)

I32 = DType.INT32
INT32_LIMIT = 1 << 31


def requant(x: Expr, m: int | Expr, s: int | Expr) -> Expr:
    """TFLM MultiplyByQuantizedMultiplier(x, m, s) (runtime header)."""
    return call("mg_requantize", I32, x, m, s)


def wrapping(op: str, a: Expr, b: Expr, dtype: DType = I32) -> Expr:
    """a op b in two's complement of dtype's width, computed unsigned (no signed-overflow UB)."""
    u = DType.UINT64 if dtype.itemsize == 8 else DType.UINT32
    return cast(binop(op, cast(a, u), cast(b, u)), dtype)


def centered(x: Expr, zp: int, dtype: DType) -> Expr:
    """x - zp in int32 (wrapped, as TFLM's int32 arithmetic, for 32-bit inputs)."""
    if dtype.itemsize >= 4 and zp != 0:
        return wrapping("-", x, const(zp))
    return sub(cast(x, I32) if dtype.itemsize >= 4 else x, zp)


def _max_abs(t: Tensor, zp: int) -> int:
    lo, hi = t.dtype.limits()
    return max(hi - zp, zp - lo)


# -- ADD / SUB / MUL -------------------------------------------------------------------------------
@lowering("ADD", "SUB", "MUL")
def lower_binary(ctx: LowerContext, op: Op) -> PrimFunc:
    g = ctx.graph
    ta, tb = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    y = g.tensors[op.outputs[0]]
    arith = arithmetic_of(op, [ta, tb, y])
    shape = tuple(int(n) for n in np.broadcast_shapes(ta.shape, tb.shape))
    assert int(np.prod(shape, dtype=np.int64)) == y.size, (shape, y.shape)
    coefs = [row_major_strides(shape), _broadcast_coefs(ta.shape, shape), _broadcast_coefs(tb.shape, shape)]
    notes: list[str] = []
    if arith == "quantized":
        a, b, value = _quantized_binary(ctx, op, ta, tb, y, notes)
    else:
        a, b = operand(ctx, ta.name, "a"), operand(ctx, tb.name, "b")
        value = _float_binary(op, y) if arith == "float" else _integer_binary(op, y, notes)
    out = ctx.param(y.name, "output")
    body = strided_nest(shape, coefs, lambda ix: value(out, ix[0], load(a, ix[1]), load(b, ix[2])))
    if shape != tuple(ta.shape) or shape != tuple(tb.shape):
        notes.insert(0, f"broadcast to {'x'.join(map(str, shape))}")
    params = tuple(p for p in (a, b, out) if p.scope == "param")
    return PrimFunc(ctx.func_name(op), params, body, doc=describe(op, [ta, tb], [y], *notes))


def _broadcast_coefs(tshape, shape) -> list[int]:
    full = (1,) * (len(shape) - len(tshape)) + tuple(tshape)
    strides = row_major_strides(full)
    return [strides[d] if full[d] == shape[d] else 0 for d in range(len(shape))]


def _float_binary(op: Op, y: Tensor):
    if y.dtype != DType.FLOAT32:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: {y.describe()} outputs are not supported")
    bounds = activation_bounds(op, y)
    sym = {"ADD": "+", "SUB": "-", "MUL": "*"}[op.kind]

    def value(out, ix, va, vb):
        return store(out, ix, apply_bounds(binop(sym, cast(va, y.dtype), cast(vb, y.dtype)), bounds))
    return value


def _integer_binary(op: Op, y: Tensor, notes: list[str]):
    """Wrapping arithmetic in the output type; SUB / MUL clamp to the activation's integer range (TFLM's
    int32 kernels), ADD ignores it (as TFLM's int32 ADD)."""
    dt = y.dtype
    sym = {"ADD": "+", "SUB": "-", "MUL": "*"}[op.kind]
    act = op.attr("activation", "NONE")
    bounds = None
    if op.kind != "ADD" and act != "NONE":
        lo, hi = activation_range_float(act)
        info_lo, info_hi = dt.limits()
        lo_i, hi_i = int(max(info_lo, lo)), int(min(info_hi, hi))
        if dt == DType.UINT64:
            raise UnsupportedOpError(f"{op.where()} {op.kind}: fused {act} on uint64")
        bounds = (lo_i if lo_i > info_lo else None, hi_i if hi_i < info_hi else None)
        notes.append(f"wrapping {dt.value} arithmetic, clamped to [{lo_i}, {hi_i}]")
    else:
        notes.append(f"wrapping {dt.value} arithmetic")

    def value(out, ix, va, vb):
        r = wrapping(sym, va, vb, dt)
        if bounds is None:
            return store(out, ix, r)
        v = Var("v", dt if dt.itemsize >= 4 else I32)
        clamped = v
        if bounds[0] is not None:
            clamped = maximum(clamped, const(bounds[0]))
        if bounds[1] is not None:
            clamped = minimum(clamped, const(bounds[1]))
        return seq(Decl(v, r), store(out, ix, cast(clamped, dt)))
    return value


def _quantized_binary(ctx: LowerContext, op: Op, ta: Tensor, tb: Tensor, y: Tensor, notes: list[str]):
    s1, zp1 = quant_of(op, ta, "first input")
    s2, zp2 = quant_of(op, tb, "second input")
    s_out, zp_out = quant_of(op, y, "output")
    lo, hi = (e.value for e in activation_bounds(op, y)) if op.attr("activation", "NONE") != "NONE" \
        else y.dtype.limits()

    def finish(out, ix, raw, m, s):
        return store(out, ix, cast(clamp(add(requant(raw, m, s), zp_out), lo, hi), y.dtype))

    if op.kind == "MUL":
        if y.dtype.itemsize == 2 and (zp1, zp2, zp_out) != (0, 0, 0):
            raise UnsupportedOpError(f"{op.where()} MUL: 16-bit quantized MUL needs zero points 0 (TFLM), "
                                     f"got {zp1}, {zp2} -> {zp_out}")
        m, s = quantize_multiplier(float(s1) * float(s2) / float(s_out))
        notes.append(f"y = clamp(requantize((a{_off(zp1)}) * (b{_off(zp2)}), {m}, {s}){_off(-zp_out)}, {lo}, {hi})")
        a, b = operand(ctx, ta.name, "a"), operand(ctx, tb.name, "b")
        safe = _max_abs(ta, zp1) * _max_abs(tb, zp2) < INT32_LIMIT

        def value(out, ix, va, vb):
            xa, xb = centered(va, zp1, ta.dtype), centered(vb, zp2, tb.dtype)
            return finish(out, ix, mul(xa, xb) if safe else wrapping("*", xa, xb), m, s)
        return a, b, value

    p = add_sub_params(s1, s2, s_out, 8 * y.dtype.itemsize)
    ls = p["left_shift"]
    (m1, sh1), (m2, sh2), (mo, so) = p["in1"], p["in2"], p["out"]
    sign = "+" if op.kind == "ADD" else "-"
    notes.append(f"a' = requantize((a{_off(zp1)}) << {ls}, {m1}, {sh1}); b' = requantize((b{_off(zp2)}) << {ls}, "
                 f"{m2}, {sh2})")
    notes.append(f"y = clamp(requantize(a' {sign} b', {mo}, {so}){_off(-zp_out)}, {lo}, {hi})")
    # Where int32 could overflow (16-bit inputs shifted by 20 for an 8-bit output), wrap as TFLM's int32
    # arithmetic does, computed unsigned; elsewhere plain int arithmetic (bounds checked here).
    shifted = [_max_abs(t, zp) << ls for t, zp in ((ta, zp1), (tb, zp2))]
    shift_safe = [b < INT32_LIMIT for b in shifted]
    scaled_max = [min(b, INT32_LIMIT) * m * 2.0 ** (sh - 31) + 2 for b, (m, sh) in zip(shifted, ((m1, sh1), (m2, sh2)))]
    sum_safe = sum(scaled_max) < INT32_LIMIT
    bufs, scaled = [], []
    for t, zp, m, sh, name, safe in ((ta, zp1, m1, sh1, "a", shift_safe[0]), (tb, zp2, m2, sh2, "b", shift_safe[1])):
        if t.is_const:
            # The constant side's scaled values are computed here, once.
            pre = multiply_by_quantized_multiplier(wrap_int32((t.data.astype(np.int64) - zp) << ls), m, sh)
            doc = f"{t.name} scaled: requantize(({name}{_off(zp)}) << {ls}, {m}, {sh})"
            bufs.append(ctx.const(name, pre, I32, doc))
            scaled.append(None)
        else:
            bufs.append(ctx.param(t.name, name, readonly=True))
            scaled.append((t, zp, m, sh, safe))

    def scale_in(v, spec):
        if spec is None:
            return v
        t, zp, m, sh, safe = spec
        x = centered(v, zp, t.dtype)
        shifted = mul(x, 1 << ls) if safe else cast(binop("<<", cast(x, DType.UINT32), ls), I32)
        return requant(shifted, m, sh)

    def value(out, ix, va, vb):
        av, bv = Var("av"), Var("bv")
        raw = binop(sign, av, bv) if sum_safe else wrapping(sign, av, bv)
        return seq(Decl(av, scale_in(va, scaled[0])), Decl(bv, scale_in(vb, scaled[1])), finish(out, ix, raw, mo, so))
    return bufs[0], bufs[1], value


# -- CLIP / LEAKY_RELU -----------------------------------------------------------------------------
def _unary(ctx: LowerContext, op: Op):
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    if x.size != y.size:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: input {x.describe()} and output {y.describe()} differ "
                                 f"in size")
    return x, y, operand(ctx, x.name, "input"), ctx.param(y.name, "output")


def _flat(op: Op, ctx: LowerContext, x, y, src, dst, value_fn, *notes) -> PrimFunc:
    """One loop over every element: y[i] = value_fn(x[i]) (an Expr, or a (decls, Expr) pair)."""
    def body(i):
        v = value_fn(load(src, i))
        if isinstance(v, tuple):
            return seq(*v[0], store(dst, i, cast(v[1], y.dtype)))
        return store(dst, i, cast(v, y.dtype))
    params = tuple(p for p in (src, dst) if p.scope == "param")
    return PrimFunc(ctx.func_name(op), params, loop("i", y.size, body), doc=describe(op, [x], [y], *notes))


@lowering("CLIP")
def lower_clip(ctx: LowerContext, op: Op) -> PrimFunc:
    """Clamp to [min, max]: float directly; plain integers to [ceil(min), floor(max)]; quantized: requantize
    to the output params (skipped when the scales are equal) and clamp to the quantized bounds."""
    x, y, src, dst = _unary(ctx, op)
    arith = arithmetic_of(op, [x, y])
    lo, hi = op.attr("min"), op.attr("max")
    if arith == "float":
        def fn(v):
            v = cast(v, y.dtype)
            v = v if lo is None else maximum(v, const(float(np.float32(lo))))
            return v if hi is None else minimum(v, const(float(np.float32(hi))))
        return _flat(op, ctx, x, y, src, dst, fn, f"clamp to [{lo}, {hi}]")
    qmin, qmax = y.dtype.limits()
    if arith == "integer":
        if y.dtype in (DType.UINT64,) or x.dtype == DType.UINT64:
            raise UnsupportedOpError(f"{op.where()} CLIP: uint64 tensors are not supported")
        lo_i = qmin if lo is None else max(qmin, int(np.ceil(lo)))
        hi_i = qmax if hi is None else min(qmax, int(np.floor(hi)))
        # max(min(x, hi), lo): also right (all lo) for an empty range, as the reference has it.
        return _flat(op, ctx, x, y, src, dst, lambda v: maximum(minimum(v, hi_i), lo_i),
                     f"y = max(min(x, {hi_i}), {lo_i})")
    s_in, zp_in = quant_of(op, x, "input")
    s_out, zp_out = quant_of(op, y, "output")
    q_lo = qmin if lo is None else _quantized_bound(lo, s_out, zp_out, qmin, qmax)
    q_hi = qmax if hi is None else _quantized_bound(hi, s_out, zp_out, qmin, qmax)
    ratio = float(s_in) / float(s_out)
    m, s = quantize_multiplier(ratio)
    if ratio == 1.0:  # MultiplyByQuantizedMultiplier(x, 2^30, 1) is exactly x
        def fn(v):
            return minimum(maximum(add(v, zp_out - zp_in), q_lo), q_hi)
        note = f"y = clamp(x{_off(zp_in - zp_out)}, {q_lo}, {q_hi})"
    else:
        def fn(v):
            return minimum(maximum(add(requant(centered(v, zp_in, x.dtype), m, s), zp_out), q_lo), q_hi)
        note = f"y = clamp(requantize(x{_off(zp_in)}, {m}, {s}){_off(-zp_out)}, {q_lo}, {q_hi})"
    return _flat(op, ctx, x, y, src, dst, fn, note)


@lowering("LEAKY_RELU")
def lower_leaky_relu(ctx: LowerContext, op: Op) -> PrimFunc:
    """float: x > 0 ? x : x * alpha. Quantized (TFLM): one multiplier for x >= zp, another (alpha folded
    in) below it, both from float32 real multipliers."""
    x, y, src, dst = _unary(ctx, op)
    arith = arithmetic_of(op, [x, y])
    alpha = np.float32(op.attrs["alpha"])
    v = Var("v", y.dtype if arith == "float" else I32)
    if arith == "float":
        def fn(e):
            return [Decl(v, cast(e, y.dtype))], select(gt(v, const(0.0)), v, mul(v, const(float(alpha))))
        return _flat(op, ctx, x, y, src, dst, fn, f"alpha {float(alpha)}")
    if arith != "quantized":
        raise UnsupportedOpError(f"{op.where()} LEAKY_RELU: plain integer tensors are not supported")
    s_in, zp_in = quant_of(op, x, "input")
    s_out, zp_out = quant_of(op, y, "output")
    f32 = np.float32
    m_id, s_id = quantize_multiplier(float(f32(s_in) / f32(s_out)))
    m_a, s_a = quantize_multiplier(float(f32(s_in) * alpha / f32(s_out)))
    qmin, qmax = y.dtype.limits()

    def fn(e):
        r = select(ge(v, 0), requant(v, m_id, s_id), requant(v, m_a, s_a))
        return [Decl(v, centered(e, zp_in, x.dtype))], clamp(add(r, zp_out), qmin, qmax)
    note = (f"v = x{_off(zp_in)}; y = clamp(requantize(v, v >= 0 ? {m_id} : {m_a}, "
            f"v >= 0 ? {s_id} : {s_a}){_off(-zp_out)}, {qmin}, {qmax})")
    return _flat(op, ctx, x, y, src, dst, fn, note)


# -- QUANTIZE / DEQUANTIZE -------------------------------------------------------------------------
def _channel_nest(shape, axis: int | None, body) -> Stmt:
    """Loops over a tensor in row-major order; body(flat index, channel index or None)."""
    size = int(np.prod(shape, dtype=np.int64))
    if axis is None:
        return loop("i", size, lambda i: body(i, None))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    ch = int(shape[axis])
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return loop("i", outer, lambda i: loop("c", ch, lambda c: loop(
        "j", inner, lambda j: body(add(mul(add(mul(i, ch), c), inner), j), c))))


class _PerChannel:
    """A quantization parameter: one number, or a const table indexed by the channel."""

    def __init__(self, ctx: LowerContext, values, n_ch: int, hint: str, dtype: DType, doc: str):
        self.values = np.broadcast_to(np.ravel(np.asarray(values)), (n_ch,))
        self.dtype = dtype
        self.scalar = bool(np.all(self.values == self.values[0]))
        self.buf = None if self.scalar else ctx.const(hint, self.values, dtype, doc)
        self.hint = hint

    def at(self, c: Expr | None) -> Expr:
        if self.scalar:
            v = self.values[0]
            return const(float(v)) if self.dtype.is_float else const(int(v))
        return load(self.buf, c)

    def __str__(self) -> str:
        if not self.scalar:
            return f"{self.buf.name}[c]"
        v = self.values[0]
        return str(np.float32(v)) if self.dtype.is_float else str(int(v))

    def minus(self) -> str:
        """' - zp' for the doc comment: ' - 3', ' + 5', '' for 0, ' - table[c]'."""
        return _off(int(self.values[0])) if self.scalar else f" - {self}"

    def plus(self) -> str:
        return _off(-int(self.values[0])) if self.scalar else f" + {self}"


def _minus(v: Expr, zp: Expr, dtype: DType) -> Expr:
    if isinstance(zp, IntImm):
        return centered(v, zp.value, dtype)
    return wrapping("-", v, zp) if dtype.itemsize >= 4 else sub(v, zp)


def _qparams(op: Op, t: Tensor, role: str):
    if t.quant is None or not t.dtype.is_int:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: the {role} {t.name!r} ({t.describe()}) is not a "
                                 f"quantized integer tensor")
    if t.dtype.itemsize > 4 or (role == "output" and t.dtype.itemsize > 2):
        raise UnsupportedOpError(f"{op.where()} {op.kind}: {t.describe()} {role}s are not supported")
    return t.quant


@lowering("QUANTIZE")
def lower_quantize(ctx: LowerContext, op: Op) -> PrimFunc:
    """float -> int: clamp(round(x / scale) + zp) with the exact rounding; int -> int: TFLM Requantize
    (rounding half_away) or dequantize-then-quantize in float32 (half_even, ONNX)."""
    x, y, src, dst = _unary(ctx, op)
    out_q = _qparams(op, y, "output")
    rounding = op.attr("rounding", "half_away")
    if rounding not in ("half_away", "half_even"):
        raise UnsupportedOpError(f"{op.where()} QUANTIZE: unknown rounding {rounding!r}")
    in_q = None if x.dtype.is_float else _qparams(op, x, "input")
    axes = {q.axis for q in (in_q, out_q) if q is not None and q.axis is not None}
    if len(axes) > 1:
        raise UnsupportedOpError(f"{op.where()} QUANTIZE: input and output quantized along different axes")
    axis = axes.pop() if axes else None
    n_ch = x.shape[axis] if axis is not None else 1
    lo, hi = y.dtype.limits()
    out_zp = _PerChannel(ctx, out_q.zero_point, n_ch, "zp", I32, "output zero point per channel")
    notes = [f"rounding {rounding}"]

    if in_q is not None and rounding == "half_away":
        # TFLM Requantize: clamp(MultiplyByQuantizedMultiplier(x - in_zp) + out_zp).
        in_s = np.broadcast_to(np.asarray(in_q.scale, np.float32).astype(np.float64), (n_ch,))
        out_s = np.broadcast_to(np.asarray(out_q.scale, np.float32).astype(np.float64), (n_ch,))
        ratio = in_s / out_s
        m, s = quantize_multipliers(ratio)
        in_zp = _PerChannel(ctx, in_q.zero_point, n_ch, "in_zp", I32, "input zero point per channel")
        # MultiplyByQuantizedMultiplier(x, 2^30, 1) is exactly x while x << 1 cannot wrap (16-bit inputs)
        identity = bool(np.all(ratio == 1.0)) and x.dtype.itemsize <= 2
        if not identity:
            mult = _PerChannel(ctx, m, n_ch, "mult", I32, "requantization multipliers (Q31)")
            shift = _PerChannel(ctx, s, n_ch, "shift", I32, "requantization shifts (left > 0)")
        notes.append(f"same scale: y = clamp(x{in_zp.minus()}{out_zp.plus()})" if identity
                     else f"y = clamp(requantize(x{in_zp.minus()}, {mult}, {shift}){out_zp.plus()})")

        def body(i, c):
            diff = _minus(load(src, i), in_zp.at(c), x.dtype)
            scaled = diff if identity else requant(diff, mult.at(c), shift.at(c))
            return store(dst, i, cast(clamp(add(scaled, out_zp.at(c)), lo, hi), y.dtype))
    else:
        out_scale = _PerChannel(ctx, np.float32(out_q.scale), n_ch, "scale", DType.FLOAT32, "output scale per channel")
        zps = np.asarray(out_q.zero_point, np.int64)
        if in_q is not None:
            in_scale = _PerChannel(ctx, np.float32(in_q.scale), n_ch, "in_scale", DType.FLOAT32,
                                   "input scale per channel")
            in_zp = _PerChannel(ctx, in_q.zero_point, n_ch, "in_zp", I32, "input zero point per channel")
            notes.append(f"w = float(x{in_zp.minus()}) * {in_scale}; y = clamp(round(w / {out_scale}){out_zp.plus()})")
        else:
            notes.append(f"y = clamp(round(x / {out_scale}){out_zp.plus()})")

        def body(i, c):
            pre = []
            value = cast(load(src, i), DType.FLOAT32)
            if in_q is not None:
                w = Var("w", DType.FLOAT32)
                pre = [Decl(w, mul(cast(_minus(load(src, i), in_zp.at(c), x.dtype), DType.FLOAT32), in_scale.at(c)))]
                value = w
            decls, q = float_to_int(binop("/", value, out_scale.at(c)), out_zp.at(c), lo, hi,
                                    (int(zps.min()), int(zps.max())), rounding)
            return seq(*pre, *decls, store(dst, i, cast(q, y.dtype)))

    params = tuple(p for p in (src, dst) if p.scope == "param")
    return PrimFunc(ctx.func_name(op), params, _channel_nest(x.shape, axis, body),
                    doc=describe(op, [x], [y], *notes))


@lowering("DEQUANTIZE")
def lower_dequantize(ctx: LowerContext, op: Op) -> PrimFunc:
    """y = float32(x - zero_point) * float32(scale), per tensor or per channel."""
    x, y, src, dst = _unary(ctx, op)
    q = _qparams(op, x, "input")
    if y.dtype != DType.FLOAT32:
        raise UnsupportedOpError(f"{op.where()} DEQUANTIZE: the output {y.describe()} is not float32")
    n_ch = x.shape[q.axis] if q.axis is not None else 1
    scale = _PerChannel(ctx, np.float32(q.scale), n_ch, "scale", DType.FLOAT32, "scale per channel")
    zp = _PerChannel(ctx, q.zero_point, n_ch, "zp", I32, "zero point per channel")

    def body(i, c):
        return store(dst, i, mul(cast(_minus(load(src, i), zp.at(c), x.dtype), DType.FLOAT32), scale.at(c)))
    params = tuple(p for p in (src, dst) if p.scope == "param")
    return PrimFunc(ctx.func_name(op), params, _channel_nest(x.shape, q.axis, body),
                    doc=describe(op, [x], [y], f"y = float(x{zp.minus()}) * {scale}"))
