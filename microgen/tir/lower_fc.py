"""FULLY_CONNECTED: y[r, o] = act(requant(sum_k x[r, k] * w[o, k] + bias[o])).

int8 (per-tensor or per-channel weights, and ONNX-style weight zero points), int16 x int8 with int64
accumulators, float32. The input zero point is folded into the bias at build time and the weight zero
point subtracted from the stored weights, so the inner loop is a plain dot product.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import activation_range_float
from ..graph import DType, Op
from .lower import LowerContext, lowering
from .nodes import Assign, Decl, PrimFunc, Var, add, cast, const, load, loop, maximum, minimum, mul, seq, store
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
    doc = describe(op, x, w, y)

    if y.dtype.is_float:
        weights = ctx.const("weights", w.data, w.dtype, f"weights [{cout}][{k}]")
        bias = ctx.const("bias", b.data if b is not None else np.zeros(cout, np.float32), DType.FLOAT32, "bias")
        lo, hi = activation_range_float(op.attr("activation", "NONE"))
        acc = Var("acc", DType.FLOAT32)

        def float_row(r):
            def out_channel(o):
                def tap(i):
                    return Assign(acc, acc + mul(load(xin, r * k + i), load(weights, o * k + i)))
                return seq(Decl(acc, load(bias, o)), loop("k", k, tap),
                           store(out, r * cout + o, clamp_float(acc, lo, hi)))
            return loop("o", cout, out_channel)
        return PrimFunc(ctx.func_name(op), (xin, out), loop("r", rows, float_row), doc=doc)

    if op.attr("rounding", "tflm") != "tflm":
        raise UnsupportedOpError(f"{g.name}: {op.where()} FULLY_CONNECTED with ONNX rounding (QLinearMatMul) "
                                 f"has no C code generation yet")
    rq = conv_requant(g, op, x, w, y, cout)
    # Weights with a zero point (ONNX QDQ allows one): store w - zp, widened to int16 when needed.
    w_zp = np.asarray(w.quant.zero_point if w.quant else (0,), np.int64).reshape(-1, 1)
    w_eff = w.data.astype(np.int64) - w_zp
    w_type = DType.INT8 if w_eff.min(initial=0) >= -128 and w_eff.max(initial=0) <= 127 else DType.INT16
    weights = ctx.const("weights", w_eff, w_type,
                        f"weights [{cout}][{k}]" + (" minus their zero point" if np.any(w_zp) else ""))
    fb = folded_bias(b.data if b is not None else None, w_eff, -x.quant.zp, cout, (1,), rq.wide)
    bias = ctx.const("bias", fb, DType.INT64 if rq.wide else DType.INT32,
                     "bias + input_offset * sum(weights) (input zero point folded in)")
    mult, shift = requant_consts(ctx, rq)
    acc = Var("acc", DType.INT64 if rq.wide else DType.INT32)

    def row(r):
        def out_channel(o):
            def tap(i):
                prod = mul(cast(load(xin, r * k + i), acc.dtype), cast(load(weights, o * k + i), acc.dtype))
                return Assign(acc, add(acc, prod))
            return seq(Decl(acc, load(bias, o)), loop("k", k, tap),
                       store(out, r * cout + o, requantize(acc, rq, o, mult, shift, y.dtype)))
        return loop("o", cout, out_channel)

    return PrimFunc(ctx.func_name(op), (xin, out), loop("r", rows, row), doc=doc)


def clamp_float(value, lo: float, hi: float):
    """The fused activation on a float value (no code when it is NONE)."""
    if lo != -np.inf:
        value = maximum(value, const(float(lo)))
    if hi != np.inf:
        value = minimum(value, const(float(hi)))
    return value


def describe(op: Op, x, w, y) -> str:
    """The comment block above a kernel: op, shapes, quantization."""
    lines = [f"{op.kind} {op.where()}",
             f"input  {x.describe()}", f"weights {w.describe()}", f"output {y.describe()}"]
    act = op.attr("activation", "NONE")
    if act != "NONE":
        lines.append(f"fused activation {act}")
    return "\n".join(lines)
