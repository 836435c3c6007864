"""CONV_2D, and what the convolution family shares: the MAC arithmetic (`Mac`) and the sliding-window
loop nest (`Axis`, `window_nest`). DEPTHWISE_CONV_2D, TRANSPOSE_CONV and BATCH_MATMUL live in their own
modules and reuse these.

Semantics: microgen/reference/conv.py (bit-exact with TFLM). Layouts: activations NHWC; CONV_2D filters
[Cout, KH, KW, Cin/groups], kept as they are (a tap's Cin/groups weights are contiguous, like its input).

Padding: an output pixel whose window lies inside the input ("interior", a rectangle of output rows and
columns computed at build time) runs the reduction over every tap with no bounds checks, and the input zero
point is folded into its bias. The other pixels compute their valid tap range once per row / pixel (outside
the reduction) and add the input offset to each input value, since their folded bias would count the
missing taps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import activation_range_float
from ..graph import DType, Op, Tensor
from .lower import LowerContext, lowering
from .lower_fc import describe
from .nodes import (Assign, BinOp, Decl, Expr, If, IntImm, PrimFunc, Stmt, Var, add, as_expr, binop, cast, const,
                    eq, ge, gt, load, logical_and, loop, lt, maximum, minimum, mul, select, seq, store, sub)
from .quant import Requant, conv_requant, requant_consts, requantize

INT32_LIMIT = 2 ** 31


# -- the arithmetic ----------------------------------------------------------------------------------
class Mac:
    """How a MAC op computes, decided at build time.

    domain "float": float32 accumulation of x * w (integer weights of hybrid models are dequantized at
    build time), + bias, fused activation clamp.
    domain "quant": integer accumulation of x * w_eff, w_eff = weights - weight zero point; the input zero
    point is either folded into the bias or added to each input value (x + x_off). The accumulator is
    int64 where TFLM's is (`wide`, requantized with mg_requantize_i64), else int32 when no partial sum can
    overflow it, else int64 wrapped to int32 before requantization (TFLM's int32 accumulator wraps).
    rounding="tflm": mg_requantize per channel; rounding="onnx": float64 multiply by the float32 multiplier
    and round half to even (an exact inline epilogue, no math.h).
    """

    def __init__(self, ctx: LowerContext, op: Op, x: Tensor, w: Tensor, y: Tensor, channels: int, wide: bool):
        self.ctx, self.op, self.x, self.w, self.y, self.channels = ctx, op, x, w, y, channels
        self.is_float = y.dtype.is_float
        self.wide = wide and not self.is_float
        self.onnx = op.attr("rounding", "tflm") == "onnx"
        self.rq: Requant | None = None
        self.mult = self.shift = None
        self.x_off = 0
        if self.is_float:
            if not x.dtype.is_float:
                raise self.unsupported(f"integer input {x.describe()} with a float output")
            self.lo, self.hi = activation_range_float(op.attr("activation", "NONE"))
            self.acc = Var("acc", DType.FLOAT32)
            return
        if y.quant is None:
            raise self.unsupported(f"integer output {y.describe()} without quantization parameters")
        if x.dtype.is_float or w.dtype.is_float or x.quant is None or w.quant is None:
            raise self.unsupported(f"quantized output needs quantized operands ({x.describe()}, {w.describe()})")
        if x.quant.per_channel or y.quant.per_channel:
            raise self.unsupported(f"per-axis quantized activations ({x.describe()} -> {y.describe()})")
        if op.attr("rounding", "tflm") not in ("tflm", "onnx"):
            raise self.unsupported(f"unknown rounding {op.attr('rounding')!r}")
        self.x_off = -x.quant.zp
        self.rq = replace(conv_requant(ctx.graph, op, x, w, y, channels), wide=self.wide)
        if self.onnx:
            in_s, out_s = np.float32(x.quant.s), np.float32(y.quant.s)
            m = (in_s * np.asarray(w.quant.scale, np.float32) / out_s).astype(np.float32)  # float32, as onnx
            self.onnx_mult = np.broadcast_to(m, (channels,)) if m.size == 1 else m
            if np.all(self.onnx_mult == self.onnx_mult[0]):
                self.mult = None
            else:
                self.mult = ctx.const("mult", self.onnx_mult, DType.FLOAT32,
                                      "per-channel requantization multipliers (float32, onnx rounding)")
        else:
            self.mult, self.shift = requant_consts(ctx, self.rq)
        self.acc = Var("acc", DType.INT64 if self.wide else DType.INT32)

    def unsupported(self, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.op.where()} {self.op.kind}: {what}")

    # -- operands --------------------------------------------------------------------------------------
    def weights(self, w: Tensor) -> tuple[np.ndarray, DType]:
        """The weight values the kernel multiplies by, in w's layout, and the C type to store them in:
        float32 (dequantized if integer); or w - zero point (per axis) in the narrowest of int8/int16/int32."""
        if self.is_float:
            if w.dtype.is_float:
                return w.data.astype(np.float32), DType.FLOAT32
            if w.quant is None:
                raise self.unsupported(f"integer weights {w.describe()} without quant params in a float op")
            zp, s = self._along(w, w.quant.zero_point, np.float64), self._along(w, w.quant.scale, np.float32)
            return ((w.data.astype(np.float64) - zp) * s.astype(np.float64)).astype(np.float32), DType.FLOAT32
        eff = w.data.astype(np.int64) - self._along(w, w.quant.zero_point, np.int64)
        self.check_products(int(np.abs(eff).max(initial=0)))
        for dt in (DType.INT8, DType.INT16, DType.INT32):
            lo, hi = dt.limits()
            if eff.min(initial=0) >= lo and eff.max(initial=0) <= hi:
                return eff, dt
        raise self.unsupported(f"weights {w.describe()} minus their zero point do not fit int32")

    @staticmethod
    def _along(t: Tensor, values, dtype) -> np.ndarray:
        arr = np.asarray(values, dtype)
        if t.quant.axis is None or arr.size == 1:
            return arr.reshape(())
        shape = [1] * len(t.shape)
        shape[t.quant.axis] = arr.size
        return arr.reshape(shape)

    def check_products(self, w_max: int) -> None:
        """Products are computed in C's int: refuse operands whose product could overflow it."""
        if max(self.x_range(0), self.x_range(self.x_off)) * w_max >= INT32_LIMIT:
            raise self.unsupported(f"products of {self.x.describe()} and {self.w.describe()} can overflow int32")

    def x_range(self, offset: int) -> int:
        """max |x + offset| over the input type's values."""
        lo, hi = self.x.dtype.limits()
        return max(abs(lo + offset), abs(hi + offset))

    def bias_values(self, b: Tensor | None) -> np.ndarray:
        """The bias per channel: float32, or int64 (integer bias of any width)."""
        if self.is_float:
            return np.zeros(self.channels, np.float32) if b is None else b.data.astype(np.float32).ravel()
        return np.zeros(self.channels, np.int64) if b is None else b.data.astype(np.int64).ravel()

    def fit_accumulator(self, bound: int) -> None:
        """bound: the largest |partial sum| any reduction can reach (bias included). An int32 accumulator
        that could overflow (C UB) becomes int64, wrapped to int32 at the end as TFLM's wraps."""
        if not self.is_float and not self.wide and bound >= INT32_LIMIT:
            self.acc = Var("acc", DType.INT64)

    def bias_init(self, values: np.ndarray, hint: str, doc: str):
        """channel -> initial accumulator value: a const array, or a literal 0 when every value is 0."""
        if not np.any(values):
            zero = const(0.0) if self.is_float else const(0, self.acc.dtype)
            return lambda c: zero
        if self.is_float:
            buf = self.ctx.const(hint, values, DType.FLOAT32, doc)
        else:
            fits = np.all(np.abs(values) < INT32_LIMIT)
            buf = self.ctx.const(hint, values, DType.INT32 if fits else DType.INT64, doc)
        return lambda c: load(buf, c)

    def window_bias(self, b: Tensor | None, w_rows: np.ndarray, has_inner: bool, has_border: bool):
        """Initial accumulator values (channel -> Expr) for interior pixels (input zero point folded into the
        bias) and border pixels (the plain bias; they add the offset per tap), and the accumulator type
        fitted to both paths' partial sums. w_rows: effective weights [channels, taps]."""
        bias = self.bias_values(b)
        if self.is_float:
            init = self.bias_init(bias, "bias", "bias")
            return init, init
        w_rows = w_rows.astype(np.int64)
        folded = bias + self.x_off * w_rows.sum(axis=1)
        wabs = int(np.abs(w_rows).sum(axis=1).max(initial=0))
        bounds = [0]
        if has_inner:
            bounds.append(int(np.abs(folded).max()) + self.x_range(0) * wabs)
        if has_border:
            bounds.append(int(np.abs(bias).max()) + self.x_range(self.x_off) * wabs)
        self.fit_accumulator(max(bounds))
        inner = border = None
        if has_inner:
            inner = self.bias_init(folded, "bias", "bias + input_offset * sum(weights[c]) (input zero point "
                                   "folded in; interior pixels)" if self.x_off else "bias")
        if has_border:
            border = (inner if self.x_off == 0 and has_inner else
                      self.bias_init(bias, "bias_raw", "bias (border pixels add the input offset per tap)"))
        return inner, border

    # -- the epilogue ----------------------------------------------------------------------------------
    def finish(self, channel: Expr, out, index: Expr) -> Stmt:
        """Store the finished accumulator `self.acc` of `channel` to out[index]."""
        acc = self.acc
        if self.is_float:
            value: Expr = acc
            if self.lo != -np.inf:
                value = maximum(value, const(float(self.lo)))
            if self.hi != np.inf:
                value = minimum(value, const(float(self.hi)))
            return store(out, index, value)
        if acc.dtype == DType.INT64 and (not self.wide or self.onnx):
            acc = cast(acc, DType.INT32)  # wraps like TFLM's int32 accumulator (and the onnx reference)
        if self.onnx:
            return self._finish_onnx(acc, channel, out, index)
        return store(out, index, requantize(acc, self.rq, channel, self.mult, self.shift, self.y.dtype))

    def _finish_onnx(self, acc: Expr, channel: Expr, out, index: Expr) -> Stmt:
        """y = clamp(round_half_even(double(acc) * mult + zp)): the onnx reference's float requantization.
        Exact in C: double arithmetic is IEEE binary64 (-std=c99 keeps gcc from contracting to FMA);
        clamping before the rounding is the same as after (both bounds are integers); the truncated value
        t and the fraction f = v - t are exact, and a tie (|f| == 0.5) rounds to the even neighbour."""
        rq, f64 = self.rq, DType.FLOAT64
        m = load(self.mult, channel) if self.mult is not None else const(float(self.onnx_mult[0]))
        v, t, f = Var("v", f64), Var("t"), Var("f", f64)
        scaled = mul(cast(acc, f64), m)
        if rq.out_zp:
            scaled = add(scaled, const(float(rq.out_zp), f64))
        lo, hi = const(float(rq.act_min), f64), const(float(rq.act_max), f64)
        half, neg_half = const(0.5, f64), const(-0.5, f64)
        tie = binop("||", eq(f, half), eq(f, neg_half))
        step = select(tie, t % 2, sub(gt(f, half), lt(f, neg_half)))
        return seq(Decl(v, scaled), Assign(v, select(lt(v, lo), lo, select(gt(v, hi), hi, v))),
                   Decl(t, cast(v, DType.INT32)), Decl(f, sub(v, cast(t, f64))),
                   store(out, index, cast(add(t, step), self.y.dtype)))

    def describe_quant(self) -> list[str]:
        if self.is_float:
            return []
        rq = self.rq
        lines = [f"input offset {self.x_off}, output zero point {rq.out_zp}, clamp [{rq.act_min}, {rq.act_max}]",
                 f"accumulator {self.acc.dtype.c_type}"
                 + (" (64-bit as TFLM's 16x8 kernels)" if self.wide else "")]
        if self.onnx:
            lines.append("requantization: onnx (float32 multiplier, round half to even)")
        elif not rq.per_channel:
            lines.append(f"requantization: multiplier {int(rq.multiplier[0])}, shift {int(rq.shift[0])}")
        return lines


def check_reads_input(mac: Mac, ay: Axis, ax: Axis) -> None:
    if not (ay.reads_input() and ax.reads_input()):
        raise mac.unsupported("every window lies in the padding (the output is constant); such a layer reads "
                              "no input and is not compiled")


def wide_accumulator(x: Tensor, b: Tensor | None, by_bias: bool) -> bool:
    """Does TFLM accumulate in int64? 16-bit activations do, except CONV_2D / FULLY_CONNECTED with an int32
    bias (reference/conv.py `_wide`)."""
    if x.dtype.itemsize < 2 or x.dtype.is_float:
        return False
    return not (by_bias and b is not None and b.dtype == DType.INT32)


def mac_step(acc: Var, a: Expr, b: Expr) -> Stmt:
    """acc += a * b (int8/int16 operands multiply as int: no overflow, no casts needed)."""
    return Assign(acc, add(acc, mul(a, b)))


# -- the sliding window ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One spatial axis of a window: output o reads input o * stride - pad + t * dil for taps t in [0, k).
    Inputs outside [0, n_in) are padding (contribute nothing)."""

    n_in: int
    n_out: int
    k: int
    stride: int
    dil: int
    pad: int

    def interior(self) -> tuple[int, int]:
        """[a, b): the outputs whose every tap is inside the input (a == b: none)."""
        a = min(self.n_out, -(-self.pad // self.stride))
        b = min(self.n_out, (self.n_in - 1 - (self.k - 1) * self.dil + self.pad) // self.stride + 1)
        return a, max(a, b)

    def reads_input(self) -> bool:
        """Does any output have a tap inside the input?"""
        return any(0 <= o * self.stride - self.pad + t * self.dil < self.n_in
                   for o in range(self.n_out) for t in range(self.k))

    @property
    def clips(self) -> bool:
        return self.interior() != (0, self.n_out)

    def origin(self, o: Expr) -> Expr:
        return add(mul(o, self.stride), -self.pad)

    def taps(self, o: Expr, name: str) -> tuple[list[Stmt], Expr, Expr]:
        """(declarations, first valid tap, number of valid taps) of output o. C's `/` truncates toward
        zero, which is the ceiling for the negative numerators that occur, and <= 0 whenever the true
        bound is: so no branch is needed."""
        s, d = self.stride, self.dil
        stmts: list[Stmt] = []
        start: Expr = const(0)
        if self.pad > 0:  # output 0 starts before the input
            num = sub(self.pad + d - 1, mul(o, s))
            start = bind(stmts, f"{name}0", maximum(0, num if d == 1 else binop("/", num, d)))
        end: Expr = const(self.k)
        if (self.n_out - 1) * s - self.pad + (self.k - 1) * d >= self.n_in:  # the last output runs past
            num = sub(self.n_in + self.pad + d - 1, mul(o, s))
            end = minimum(self.k, num if d == 1 else binop("/", num, d))
        count = bind(stmts, f"n{name}", sub(end, start))
        return stmts, start, count


def bind(stmts: list[Stmt], name: str, value: Expr) -> Expr:
    """A named local for a non-trivial expression (appending its declaration), else the expression."""
    value = as_expr(value)
    if isinstance(value, (Var, IntImm)):
        return value
    narrow = value.dtype.is_int and value.dtype.itemsize < 4  # e.g. a load from an int16 table
    var = Var(name, DType.INT32 if narrow else value.dtype)
    stmts.append(Decl(var, value))
    return var


@dataclass(frozen=True)
class Taps:
    """The valid taps of one output pixel: rows [ky0, ky0 + nky), columns [kx0, kx0 + nkx)."""

    ky0: Expr
    nky: Expr
    kx0: Expr
    nkx: Expr
    clipped: bool = False


def window_nest(batch: int, ay: Axis, ax: Axis, pixel) -> Stmt:
    """for n, oy, ox: pixel(n, oy, ox) -> (declarations, body(taps: Taps) -> Stmt).

    Interior pixels get the full, constant tap range (clipped=False); the others, when there are any,
    their valid range computed per row / pixel, and the choice is one branch per pixel."""
    (ya, yb), (xa, xb) = ay.interior(), ax.interior()
    has_inner = ya < yb and xa < xb
    has_border = ay.clips or ax.clips
    full = Taps(const(0), const(ay.k), const(0), const(ax.k))

    def row(n, oy):
        row_decls, ky0, nky = ay.taps(oy, "ky") if has_border else ([], None, None)

        def col(ox):
            decls, body = pixel(n, oy, ox)
            if not has_border:
                return seq(*decls, body(full))
            col_decls, kx0, nkx = ax.taps(ox, "kx")
            border = seq(*col_decls, body(Taps(ky0, nky, kx0, nkx, clipped=True)))
            conds = [_in_range(oy, ya, yb, ay.n_out), _in_range(ox, xa, xb, ax.n_out)]
            if not has_inner or False in conds:
                return seq(*decls, border)
            inside = logical_and(*conds)
            return seq(*decls, body(full) if inside is None else If(inside, body(full), border))
        return seq(*row_decls, loop("ox", ax.n_out, col))

    return loop("n", batch, lambda n: loop("oy", ay.n_out, lambda oy: row(n, oy)))


def _in_range(o: Expr, a: int, b: int, n: int) -> Expr | bool | None:
    """a <= o < b: None when always true, False when never (o known at build time), else the test."""
    if isinstance(o, IntImm):
        return None if a <= o.value < b else False
    return logical_and(ge(o, a) if a > 0 else None, lt(o, b) if b < n else None)


def pixel_bases(decls: list[Stmt], n: Expr, oy: Expr, ox: Expr, ay: Axis, ax: Axis, cin: int,
                cout: int) -> tuple[Expr, Expr]:
    """xp: the NHWC index of channel 0 of the window's top-left tap (negative or past the row when that tap
    is padding; only valid taps are read); yp: the index of the output pixel's channel 0."""
    row = linear_sum(mul(n, ay.n_in), ay.origin(oy))
    xp = bind(decls, "xp", mul(linear_sum(scaled(row, ax.n_in), ax.origin(ox)), cin))
    yp = bind(decls, "yp", mul(linear_sum(mul(linear_sum(mul(n, ay.n_out), oy), ax.n_out), ox), cout))
    return xp, yp


def spatial_attrs(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    strides = tuple(op.attr("strides", (1, 1)))
    dilations = tuple(op.attr("dilations", (1, 1)))
    pads = tuple(op.attr("pads", (0, 0, 0, 0)))
    return strides, dilations, pads[:2]  # end pads follow from the output shape, as in TFLM


def window_doc(ay: Axis, ax: Axis, extra: str = "") -> str:
    (ya, yb), (xa, xb) = ay.interior(), ax.interior()
    text = (f"kernel {ay.k}x{ax.k}, strides {ay.stride}x{ax.stride}, dilations {ay.dil}x{ax.dil}, "
            f"pads top {ay.pad} left {ax.pad}{extra}")
    if ay.clips or ax.clips:
        text += f"\ninterior (no padding taps): rows [{ya}, {yb}) x columns [{xa}, {xb}); other pixels clip taps"
    return text


def scaled(e: Expr, k: int) -> Expr:
    """e * k, folding (a * c) * k into a * (c * k)."""
    if isinstance(e, BinOp) and e.op == "*" and isinstance(e.b, IntImm):
        return mul(e.a, e.b.value * k)
    return mul(e, k)


def linear_sum(*terms) -> Expr:
    """t0 + t1 + ... with constants gathered at the end (prints `a * 8 + b * 2 - 1`, not `a + (b - 1)`)."""
    c, out = 0, const(0)
    for t in terms:
        t = as_expr(t)
        if isinstance(t, BinOp) and t.op == "+" and isinstance(t.b, IntImm):
            c, t = c + t.b.value, t.a
        if isinstance(t, IntImm):
            c += t.value
        else:
            out = add(out, t)
    return add(out, c)


# -- CONV_2D -----------------------------------------------------------------------------------------
@lowering("CONV_2D")
def lower_conv_2d(ctx: LowerContext, op: Op) -> PrimFunc:
    """y[n, oy, ox, co] = act(requant(sum_{ky, kx, c} x[n, iy, ix, g * cg + c] * w[co, ky, kx, c] + b[co])),
    iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw, g = co / (Cout / groups)."""
    g_ = ctx.graph
    x, w, b = (g_.op_inputs(op) + [None])[:3]
    y = g_.tensors[op.outputs[0]]
    n, h, wd, cin = x.shape
    cout, kh, kw, cg = w.shape
    groups = cin // cg
    og = cout // groups
    assert groups * cg == cin and og * groups == cout, (x.shape, w.shape)
    (sh, sw), (dh, dw), (pt, pl) = spatial_attrs(op)
    ay, ax = Axis(h, y.shape[1], kh, sh, dh, pt), Axis(wd, y.shape[2], kw, sw, dw, pl)
    (ya, yb), (xa, xb) = ay.interior(), ax.interior()
    has_inner, has_border = ya < yb and xa < xb, ay.clips or ax.clips

    mac = Mac(ctx, op, x, w, y, cout, wide_accumulator(x, b, by_bias=True))
    check_reads_input(mac, ay, ax)
    xin = ctx.param(x.name, "x", readonly=True)
    out = ctx.param(y.name, "y")
    w_eff, w_dtype = mac.weights(w)
    weights = ctx.const("weights", w_eff, w_dtype, f"weights [{cout}][{kh}][{kw}][{cg}] (Cout, KH, KW, Cin/groups)"
                        + ("" if mac.is_float or not np.any(w.quant.zero_point) else ", zero point subtracted"))
    init_inner, init_border = mac.window_bias(b, w_eff.reshape(cout, -1), has_inner, has_border)
    acc = mac.acc
    merged = dw == 1 and groups == 1  # a row of taps is one contiguous run of KW * Cin in x and in w

    def pixel(nn, oy, ox):
        decls: list[Stmt] = []
        xp, yp = pixel_bases(decls, nn, oy, ox, ay, ax, cin, cout)

        def body(t: Taps) -> Stmt:
            off = mac.x_off if t.clipped else 0
            init = init_border if t.clipped else init_inner

            def xv(i):
                return add(load(xin, i), off) if off else load(xin, i)

            def channel(g, o):
                stmts: list[Stmt] = []
                co = bind(stmts, "co", add(mul(g, og), o))
                wb = mul(co, kh * kw * cg)

                def ky_loop(ky):
                    xr, wr = add(xp, mul(ky, dh * wd * cin)), add(wb, mul(ky, kw * cg))
                    if merged:
                        return loop("k", mul(t.nkx, cin), lambda k: mac_step(acc, xv(add(xr, k)),
                                                                            load(weights, add(wr, k))),
                                    start=mul(t.kx0, cin))
                    return loop("kx", t.nkx, lambda kx: loop("c", cg, lambda c: mac_step(
                        acc, xv(linear_sum(xr, mul(kx, dw * cin), mul(g, cg), c)),
                        load(weights, linear_sum(wr, mul(kx, cg), c)))), start=t.kx0)
                return seq(*stmts, Decl(acc, init(co)), loop("ky", t.nky, ky_loop, start=t.ky0),
                           mac.finish(co, out, add(yp, co)))
            return loop("g", groups, lambda g: loop("o", og, lambda o: channel(g, o)))
        return decls, body

    doc = "\n".join([describe(op, x, w, y), window_doc(ay, ax, f", groups {groups}" if groups > 1 else ""),
                     *mac.describe_quant()])
    return PrimFunc(ctx.func_name(op), (xin, out), window_nest(n, ay, ax, pixel), doc=doc)
