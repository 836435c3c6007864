"""FULLY_CONNECTED: y[b, o] = act(requant(sum_k x[b, k] * w[o, k] + bias[o])).

int8 (per-tensor or per-channel weights), int16 x int8 with int64 accumulators, float32. The input zero
point is folded into the bias at build time, so the inner loop is a plain dot product.
"""

from __future__ import annotations

import numpy as np

from ..fixedpoint import activation_range_float
from ..graph import DType, Op
from .lower import LowerContext, lowering
from .nodes import Decl, PrimFunc, Var, add, cast, clamp, const, load, loop, mul, seq, store, Assign
from .quant import conv_requant, folded_bias, requant_consts, requantize


@lowering("FULLY_CONNECTED")
def lower_fully_connected(ctx: LowerContext, op: Op) -> PrimFunc:
    g = ctx.graph
    x, w, b = g.op_inputs(op)
    y = g.tensors[op.outputs[0]]
    cout, k = w.shape
    rows = x.size // k
    xin = ctx.param(x.name, "input", readonly=True)
    out = ctx.param(y.name, "output")
    weights = ctx.const("weights", w.data, w.dtype, f"weights [{cout}][{k}]")
    acc = Var("acc", DType.FLOAT32 if y.dtype.is_float else (DType.INT64 if x.dtype == DType.INT16 else DType.INT32))

    if y.dtype.is_float:
        bias = ctx.const("bias", b.data if b is not None else np.zeros(cout, np.float32), DType.FLOAT32, "bias")
        lo, hi = activation_range_float(op.attr("activation", "NONE"))

        def row(r):
            def out_channel(o):
                def tap(i):
                    return Assign(acc, acc + mul(load(xin, r * k + i), load(weights, o * k + i)))
                value = acc
                if lo != -np.inf:
                    value = clamp_f(value, lo, hi)
                return seq(Decl(acc, load(bias, o)), loop("k", k, tap), store(out, r * cout + o, value))
            return loop("o", cout, out_channel)
        body = loop("r", rows, row)
        doc = describe(op, x, w, y)
        return PrimFunc(ctx.func_name(op), (xin, out), body, doc=doc)

    rq = conv_requant(g, op, x, w, y, cout)
    wide = rq.wide
    fb = folded_bias(b.data if b is not None else None, w.data, -x.quant.zp, cout, (1,), wide)
    bias = ctx.const("bias", fb, DType.INT64 if wide else DType.INT32,
                     "bias + input_offset * sum(weights) (input zero point folded in)")
    mult, shift = requant_consts(ctx, rq)
    acc_t = acc.dtype

    def row(r):
        def out_channel(o):
            def tap(i):
                prod = mul(cast(load(xin, r * k + i), acc_t), cast(load(weights, o * k + i), acc_t))
                return Assign(acc, add(acc, prod))
            return seq(Decl(acc, load(bias, o)), loop("k", k, tap),
                       store(out, r * cout + o, requantize(acc, rq, o, mult, shift, y.dtype)))
        return loop("o", cout, out_channel)

    return PrimFunc(ctx.func_name(op), (xin, out), loop("r", rows, row), doc=describe(op, x, w, y))


def clamp_f(value, lo, hi):
    from .nodes import maximum, minimum
    out = maximum(value, const(float(lo)))
    if hi != np.inf:
        out = minimum(out, const(float(hi)))
    return out


def describe(op: Op, x, w, y) -> str:
    """The comment block above a kernel: op, shapes, quantization."""
    lines = [f"{op.kind} {op.where()}",
             f"input  {x.describe()}", f"weights {w.describe()}", f"output {y.describe()}"]
    act = op.attr("activation", "NONE")
    if act != "NONE":
        lines.append(f"fused activation {act}")
    return "\n".join(lines)
