"""LOGISTIC, TANH, HARD_SWISH and SOFTMAX: int8 (table lookups), int16 and float32.

Semantics: microgen/reference/activations.py (bit-exact with TFLM). As much as possible runs at build
time:
- 8-bit LOGISTIC / TANH / HARD_SWISH: a 256-entry table made by running the reference kernel over every
  input value, so the kernel is y[i] = table[x[i] - min] and exact by construction.
- int16 LOGISTIC / TANH: TFLM's interpolated sigmoid table (256 entries), input rescale constants folded.
- int8 SOFTMAX (int8 or int16 output): exp(x - max) depends only on max - x in [0, 255]; its gemmlowp
  Q0.31 value is tabulated (0 past TFLM's diff_min cut-off, which then gives the output's minimum,
  exactly as the reference's masking does). Sum, reciprocal and the final rounding run as TFLM's.
- int16 SOFTMAX: TFLM's exp and 1/(1+x) interpolation tables (513 entries each), built by the reference.
- float32: mg_expf / mg_tanhf from the runtime header (no libm; within 1 ulp / 2e-7 relative).

Every kernel reads x[i] before writing y[i] at the same index and reads nothing it wrote before, so
output and input may share memory (the planner places elementwise outputs over dying inputs).
Tensor layout does not matter except for SOFTMAX, whose rows run along `axis` (outer x n x inner).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..fixedpoint import gemmlowp as gl
from ..graph import DType, Op, Tensor
from ..reference import activations as ref_act
from ..reference.registry import KERNELS
from .lower import LowerContext, lowering
from .nodes import (Assign, Buffer, Decl, Expr, IntImm, PrimFunc, Stmt, Var, binop, call, cast, clamp, const, ge, gt,
                    load, loop, lt, maximum, minimum, mul, select, seq, store, sub)

F32 = DType.FLOAT32
I32 = DType.INT32


# -- shared -------------------------------------------------------------------------------------------
def _run_reference(ctx: LowerContext, op: Op, x: np.ndarray) -> np.ndarray:
    """The reference kernel of `op` on x (any shape of the input's size or not): the op's tensors are
    reshaped to x's shape in a copy of the graph. Raises the reference's UnsupportedOpError for
    quantizations TFLM refuses, so the lowering refuses exactly what the reference refuses."""
    g = ctx.graph
    tin, tout = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    tensors = {**g.tensors, tin.name: dataclasses.replace(tin, shape=x.shape),
               tout.name: dataclasses.replace(tout, shape=x.shape)}
    return KERNELS[op.kind](op, dataclasses.replace(g, tensors=tensors), [x])[0]


def _tensors(ctx: LowerContext, op: Op) -> tuple[Tensor, Tensor, Buffer, Buffer]:
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    return x, y, ctx.param(x.name, "input", readonly=True), ctx.param(y.name, "output")


def _doc(op: Op, x: Tensor, y: Tensor, *notes: str) -> str:
    return "\n".join([f"{op.kind} {op.where()}", f"input  {x.describe()}", f"output {y.describe()}", *notes])


def _unsupported(op: Op, x: Tensor, y: Tensor) -> UnsupportedOpError:
    return UnsupportedOpError(f"{op.where()} {op.kind}: no C code generation for {x.describe()} -> "
                              f"{y.describe()} (supported: float32, 8-bit quantized, int16 LOGISTIC/TANH/"
                              f"SOFTMAX, int8 -> int16 SOFTMAX)")


# -- LOGISTIC, TANH, HARD_SWISH -----------------------------------------------------------------------
@lowering("LOGISTIC", "TANH", "HARD_SWISH")
def lower_unary_activation(ctx: LowerContext, op: Op) -> PrimFunc:
    x, y, xin, out = _tensors(ctx, op)
    if x.dtype in (DType.INT8, DType.UINT8):
        return _lut8(ctx, op, x, y, xin, out)
    # Check the quantization is one TFLM accepts (the reference refuses the others).
    _run_reference(ctx, op, np.zeros(1, x.dtype.np))
    if x.dtype == F32 and y.dtype == F32:
        return _float_unary(ctx, op, x, y, xin, out)
    if x.dtype == DType.INT16 and y.dtype == DType.INT16 and op.kind != "HARD_SWISH":
        return _sigmoid_int16(ctx, op, x, y, xin, out)
    raise _unsupported(op, x, y)


def _lut8(ctx, op, x, y, xin, out) -> PrimFunc:
    """y[i] = table[x[i] - min]: the reference kernel evaluated on all 256 inputs at build time."""
    lo, hi = x.dtype.limits()
    values = _run_reference(ctx, op, np.arange(lo, hi + 1).astype(x.dtype.np))
    table = ctx.const("table", values, y.dtype,
                      f"{op.kind} of every {x.dtype.value} input {lo}..{hi} (the reference kernel, run at build "
                      f"time): {x.quant} -> {y.quant}")
    body = loop("i", x.size, lambda i: store(out, i, load(table, load(xin, i) - lo)))
    return PrimFunc(ctx.func_name(op), (xin, out), body,
                    doc=_doc(op, x, y, "a 256-entry lookup table, exact by construction"))


def _float_unary(ctx, op, x, y, xin, out) -> PrimFunc:
    """TFLM's float kernels: logistic saturates past 16.619 and is exp(x) below -9; tanh; hard swish."""
    v = Var("v", F32)

    def expf(e: Expr) -> Expr:
        return call("mg_expf", F32, e)

    one = const(1.0)
    if op.kind == "LOGISTIC":
        value = select(gt(v, const(16.619047164916992188)), one,
                       select(lt(v, const(-9.0)), expf(v), binop("/", one, one + expf(sub(const(0.0), v)))))
    elif op.kind == "TANH":
        value = call("mg_tanhf", F32, v)
    else:  # HARD_SWISH: x * relu6(x + 3) / 6
        relu6 = minimum(maximum(v + const(3.0), const(0.0)), const(6.0))
        value = binop("/", mul(v, relu6), const(6.0))
    body = loop("i", x.size, lambda i: seq(Decl(v, load(xin, i)), store(out, i, value)))
    return PrimFunc(ctx.func_name(op), (xin, out), body, doc=_doc(op, x, y))


def _sigmoid_int16(ctx, op, x, y, xin, out) -> PrimFunc:
    """reference integer_ops/logistic.h and tanh.h, int16: v = (x * multiplier + round) >> left_shift, then
    TFLM's sigmoid table on |v| >> 9 (logistic) or >> 8 (tanh), interpolated with the low bits."""
    is_logistic = op.kind == "LOGISTIC"
    multiplier, left_shift = ref_act._int16_sigmoid_params(
        op, x.quant.s, y.quant.s, (0,) if is_logistic else (0, 1))
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    table = ctx.const("sigmoid", gl.SIGMOID_TABLE_UINT16, DType.UINT16,
                      "TFLM sigmoid_table_uint16: sigmoid(i / 24) in Q0.16")
    bits = 9 if is_logistic else 8
    v, a, uh, idx, r, p = Var("v"), Var("a"), Var("uh"), Var("idx"), Var("r"), Var("p")
    lo_in, hi_in = -32768 * multiplier + rounding, 32767 * multiplier + rounding
    fits = -(1 << 31) < lo_in and hi_in < (1 << 31)

    def element(i) -> Stmt:
        if fits:
            # (the sum gets its own variable: gcc -Wparentheses wants `(a + b) >> c` spelled out)
            scaled = load(xin, i) * multiplier + rounding
            stmts = [Decl(p, scaled), Decl(v, p >> left_shift)] if left_shift else [Decl(v, scaled)]
            stmts.append(Decl(a, select(ge(v, 0), v, sub(const(0), v))))
        else:
            # x * multiplier wraps in int32 (TFLM's arithmetic, undefined in C): compute it in uint32.
            prod = cast(load(xin, i), DType.UINT32) * const(multiplier, DType.UINT32) + const(rounding, DType.UINT32)
            a64 = Var("a_wide", DType.INT64)
            wrapped = call("mg_u32_to_i32", I32, prod)
            stmts = [Decl(v, wrapped >> left_shift if left_shift else wrapped),
                     Decl(a64, select(ge(v, 0), cast(v, DType.INT64), sub(const(0), cast(v, DType.INT64)))),
                     Decl(a, cast(minimum(a64, 255 << bits), I32))]  # beyond the table: saturated anyway
        mask = (1 << bits) - 1
        stmts += [Decl(uh, a >> bits), Decl(idx, minimum(uh, 254))]
        ua, ub = load(table, idx), load(table, idx + 1)
        interp = (ua << bits) + mul(a & mask, ub - ua)
        if is_logistic:
            stmts.append(Decl(r, select(ge(uh, 255), 0x7FFF << 10, interp)))
            value = select(ge(v, 0), r + (1 << 9), sub(const((1 << 25) + (1 << 9) - 1), r)) >> 10
        else:
            stmts.append(Decl(r, select(ge(uh, 255), 0xFFFF << 8, interp)))
            value = select(ge(v, 0), r - ((1 << 23) - (1 << 7)), sub(const((1 << 23) + (1 << 7) - 1), r)) >> 8
        return seq(*stmts, store(out, i, cast(value, DType.INT16)))

    rescale = f"(x * {multiplier} + {rounding}) >> {left_shift}" if left_shift else f"x * {multiplier}"
    notes = (f"v = {rescale}: the input in steps of 1/(3*4096)",
             f"table index |v| >> {bits}, interpolated with the low {bits} bits")
    return PrimFunc(ctx.func_name(op), (xin, out), loop("i", x.size, element), doc=_doc(op, x, y, *notes))


# -- SOFTMAX ------------------------------------------------------------------------------------------
@lowering("SOFTMAX")
def lower_softmax(ctx: LowerContext, op: Op) -> PrimFunc:
    x, y, xin, out = _tensors(ctx, op)
    _run_reference(ctx, op, np.zeros((1,) * len(x.shape), x.dtype.np))  # refuses what TFLM refuses
    axis = int(op.attr("axis", -1)) % len(x.shape)
    n = x.shape[axis]
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    outer = x.size // (n * inner)
    beta = float(np.float32(op.attr("beta", 1.0)))

    def rows(body_fn) -> Stmt:
        """body_fn(at) for each row, at(k) the flat index of the row's k-th element (the row's start is
        computed once per row)."""
        def row(o, j) -> Stmt:
            start = mul(o, n * inner) + j
            if isinstance(start, IntImm):
                return body_fn(lambda k: start + mul(k, inner))
            first = Var("row")
            return seq(Decl(first, start), body_fn(lambda k: first + mul(k, inner)))
        return loop("o", outer, lambda o: loop("j", inner, lambda j: row(o, j)))

    shape_note = f"rows of {n} along axis {axis} ({outer} x {inner} of them), beta {beta:g}"
    if x.dtype == F32 and y.dtype == F32:
        body = rows(lambda at: _softmax_float_row(xin, out, n, beta, at))
        return PrimFunc(ctx.func_name(op), (xin, out), body, doc=_doc(op, x, y, shape_note))
    if x.dtype == DType.INT8 and y.dtype in (DType.INT8, DType.INT16):
        return _softmax_int8(ctx, op, x, y, xin, out, n, beta, rows, shape_note)
    if x.dtype == DType.INT16 and y.dtype == DType.INT16:
        return _softmax_int16(ctx, op, x, y, xin, out, n, beta, rows, shape_note)
    raise _unsupported(op, x, y)


def _row_max(xin: Buffer, n: int, at, dtype: DType) -> tuple[Var, Stmt]:
    m = Var("row_max", dtype)
    if dtype.is_float:  # start from the first element: no -INFINITY literal (math.h) needed
        return m, seq(Decl(m, load(xin, at(0))),
                      loop("k", n - 1, lambda k: Assign(m, maximum(m, load(xin, at(k)))), start=1))
    return m, seq(Decl(m, const(xin.dtype.limits()[0])),
                  loop("k", n, lambda k: Assign(m, maximum(m, load(xin, at(k))))))


def _softmax_float_row(xin, out, n, beta, at) -> Stmt:
    """TFLM float softmax: e = exp((x - max) * beta) stored in the output, summed, then divided."""
    m, find_max = _row_max(xin, n, at, F32)
    total, e = Var("sum", F32), Var("e", F32)

    def exp_pass(k) -> Stmt:
        diff = load(xin, at(k)) - m
        arg = diff if beta == 1.0 else mul(diff, const(beta))
        return seq(Decl(e, call("mg_expf", F32, arg)), store(out, at(k), e), Assign(total, total + e))

    return seq(find_max, Decl(total, const(0.0)), loop("k", n, exp_pass),
               loop("k", n, lambda k: store(out, at(k), binop("/", load(out, at(k)), total))))


def _softmax_int8(ctx, op, x, y, xin, out, n, beta, rows, shape_note) -> PrimFunc:
    """reference softmax.h, int8 input: exps[max - x] (Q0.31) from a table, a Q12.19 sum, its reciprocal
    (gemmlowp), y = RDBPOT(SRDHM(reciprocal, exp), num_bits_over_unit + 31 - out_bits) + out_min."""
    out_bits = 8 * y.dtype.itemsize
    out_min, out_max = y.dtype.limits()
    m, left_shift = gl.preprocess_softmax_scaling(beta, x.quant.s, 5)
    diff_min = -gl.calculate_input_radius(5, left_shift, 31)
    diffs = -np.arange(256, dtype=np.int64)
    exps = gl.exp_on_negative_values(multiply_by_quantized_multiplier(diffs, m, left_shift), 5)
    exps = np.where(diffs >= diff_min, exps, 0)
    table = ctx.const("exp", exps, I32, f"exp(-d * {beta:g} * {x.quant.s:.6g}) in Q0.31 for d = max - x = 0..255 "
                                        f"(gemmlowp); 0 below diff_min {diff_min}")
    # A term of the sum is at most 2^19 (exp(0) in Q12.19): find what the row length allows.
    max_sum = n << 19
    wraps = max_sum >= 1 << 31                       # TFLM's int32 sum overflows: add as uint32
    min_headroom = 0 if wraps else 32 - max_sum.bit_length()
    exp_bias = 12 + 31 - out_bits                    # exponent = num_bits_over_unit + 31 - out_bits
    clamp_exponent = wraps or exp_bias - min_headroom > 31

    def row(at) -> Stmt:
        mx, find_max = _row_max(xin, n, at, I32)
        exp_at = lambda k: load(table, mx - load(xin, at(k)))  # noqa: E731
        acc = Var("sum_u", DType.UINT32) if wraps else Var("sum")
        total, headroom, recip, exponent = Var("sum"), Var("headroom"), Var("recip"), Var("exponent")

        def add_term(k) -> Stmt:
            t = call("mg_rounding_divide_by_pot", I32, exp_at(k), 12)  # Rescale<12>: Q0.31 -> Q12.19
            return Assign(acc, acc + (cast(t, DType.UINT32) if wraps else t))

        exp_value = sub(const(exp_bias), headroom)
        if wraps:
            exp_value = clamp(exp_value, 0, 31)
        elif clamp_exponent:  # a long row of near-equal values: TFLM shifts by 32 or more (undefined)
            exp_value = minimum(exp_value, 31)
        stmts = [find_max, Decl(acc, const(0, acc.dtype)), loop("k", n, add_term)]
        if wraps:
            stmts.append(Decl(total, call("mg_u32_to_i32", I32, acc)))
        stmts += [Decl(headroom, call("mg_clz_u32", I32, cast(total, DType.UINT32))),
                  Decl(recip, call("mg_get_reciprocal", I32, total, headroom)),
                  Decl(exponent, exp_value)]

        def output(k) -> Stmt:
            q = Var("q")
            scaled = call("mg_rounding_divide_by_pot", I32, call("mg_srdhm", I32, recip, exp_at(k)), exponent)
            return seq(Decl(q, scaled), store(out, at(k), cast(clamp(q + out_min, out_min, out_max), y.dtype)))
        return seq(*stmts, loop("k", n, output))

    notes = (shape_note, f"input multiplier {m} << {left_shift} (Q5.26 differences), diff_min {diff_min}",
             "exp from a 256-entry table indexed by max - x")
    return PrimFunc(ctx.func_name(op), (xin, out), rows(row), doc=_doc(op, x, y, *notes))


def _lut16(lut: Buffer, value: Expr, name: str) -> tuple[Stmt, Var]:
    """TFLM LUTLookup on a 513-entry int16 table: the entry for the top 9 bits of value (an int16 in an
    int32), interpolated with the low 7 bits, rounded; int16 wrap-around as TFLM's casts."""
    v, idx, base, delta, res = (Var(f"{name}_in"), Var(f"{name}_idx"), Var(f"{name}_base"), Var(f"{name}_delta"),
                                Var(name))
    slope = cast(load(lut, idx + 1) - base, DType.INT16)
    return seq(Decl(v, value), Decl(idx, const(256) + (v >> 7)), Decl(base, load(lut, idx)),
               Decl(delta, mul(slope, v & 0x7F) + 64),
               Decl(res, cast(base + (delta >> 7), DType.INT16))), res


def _softmax_int16(ctx, op, x, y, xin, out, n, beta, rows, shape_note) -> PrimFunc:
    """reference softmax.h SoftmaxInt16: exp of the rescaled difference and 1 / (1 + x) of the normalised
    sum from TFLM's interpolated tables; the exps are kept in the output between the two passes."""
    if n * 32767 >= 1 << 31:
        raise UnsupportedOpError(f"{op.where()} SOFTMAX: int16 rows of {n} overflow TFLM's int32 sum")
    exp_lut, reciprocal_lut = ref_act._int16_softmax_luts()
    # As the reference: the difference to the exp table's input scale 10 / 65535.
    m, shift = quantize_multiplier(float(x.quant.s) * float(np.float32(beta)) / (10.0 / 65535.0))
    exp_t = ctx.const("exp_lut", exp_lut, DType.INT16, "TFLM exp table: exp(x) on [-10, 0], Q0.15, 513 entries")
    rec_t = ctx.const("recip_lut", reciprocal_lut, DType.INT16,
                      "TFLM reciprocal table: 1 / (1 + x) on [0, 1], Q0.15, 513 entries")

    def row(at) -> Stmt:
        mx, find_max = _row_max(xin, n, at, I32)
        total, headroom, shifted = Var("sum"), Var("headroom"), Var("shifted_sum")
        normalized, rnd, right_shift, p = Var("normalized", DType.INT64), Var("round"), Var("right_shift"), Var("p")

        def exp_pass(k) -> Stmt:
            scaled = call("mg_requantize", I32, load(xin, at(k)) - mx, m, shift)
            lookup, e = _lut16(exp_t, clamp(scaled + 32767, -32768, 32767), "e")
            return seq(lookup, store(out, at(k), cast(e, DType.INT16)), Assign(total, total + e))

        # TFLM: ((int64)sum << (headroom - 1)) + 2^13) >> 14, the same as this with one more bit.
        wide = (cast(total, DType.INT64) << headroom) + (1 << 14)
        recip_lookup, recip = _lut16(rec_t, clamp(shifted - ((1 << 15) + (1 << 16)), -32768, 32767), "recip")

        def output(k) -> Stmt:
            return seq(Decl(p, mul(load(out, at(k)), recip) + rnd),
                       store(out, at(k), cast(clamp(p >> right_shift, 0, 32767), DType.INT16)))

        return seq(find_max, Decl(total, const(0)), loop("k", n, exp_pass),
                   Decl(headroom, call("mg_clz_u32", I32, cast(total, DType.UINT32))),
                   Decl(normalized, wide), Decl(shifted, cast(normalized >> 15, I32)), recip_lookup,
                   Decl(right_shift, sub(const(31), headroom)), Decl(rnd, const(1 << 30) >> headroom),
                   loop("k", n, output))

    notes = (shape_note, f"difference multiplier {m}, shift {shift} (to the exp table's 10/65535 per step)")
    return PrimFunc(ctx.func_name(op), (xin, out), rows(row), doc=_doc(op, x, y, *notes))
