"""BATCH_MATMUL: y[..., r, c] = requant(sum_k (a[..., r, k] - a_zp) * (b[..., k, c] - b_zp[c])), numpy matmul
broadcasting over the leading (batch) dims, 1-D operands promoted as numpy does.

Semantics: microgen/reference/conv.py `batch_matmul` (no bias, no fused activation; 16-bit operands
accumulate in int64). b is usually an activation (ONNX MatMul / QLinearMatMul with a non-constant B); a
constant b becomes a const array with its zero point already subtracted. Both zero points of activation
operands are subtracted in the inner loop: nothing about the operands is known at build time to fold.
"""

from __future__ import annotations

import numpy as np

from ..graph import DType, Op
from .lower import LowerContext, lowering
from .lower_conv import Mac, linear_sum, mac_step
from .nodes import Decl, Expr, PrimFunc, add, const, load, loop, mul, seq


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


@lowering("BATCH_MATMUL")
def lower_batch_matmul(ctx: LowerContext, op: Op) -> PrimFunc:
    g_ = ctx.graph
    a_t, b_t = g_.op_inputs(op)[:2]
    y = g_.tensors[op.outputs[0]]
    sa = (1, *a_t.shape) if len(a_t.shape) == 1 else tuple(a_t.shape)
    sb = (*b_t.shape, 1) if len(b_t.shape) == 1 else tuple(b_t.shape)
    rows, depth = sa[-2:]
    cols = sb[-1]
    assert sb[-2] == depth, (a_t.shape, b_t.shape)
    batch = tuple(int(d) for d in np.broadcast_shapes(sa[:-2], sb[:-2]))
    assert int(np.prod(batch, dtype=np.int64)) * rows * cols == y.size, (a_t.shape, b_t.shape, y.shape)

    mac = Mac(ctx, op, a_t, b_t, y, cols, wide=a_t.dtype.itemsize >= 2 and not a_t.dtype.is_float)
    if not mac.is_float and b_t.quant.per_channel and b_t.quant.axis != len(b_t.shape) - 1:
        raise mac.unsupported(f"operand b {b_t.describe()} is quantized along axis {b_t.quant.axis}; only "
                              f"per-column (last axis) params are supported")
    a = ctx.param(a_t.name, "a", readonly=True)
    out = ctx.param(y.name, "y")
    if b_t.is_const:
        b_eff, b_dtype = mac.weights(b_t)
        b = ctx.const("b", b_eff, b_dtype, f"operand b {list(b_t.shape)}" +
                      ("" if mac.is_float or not np.any(b_t.quant.zero_point) else ", zero point subtracted"))
        b_off = None
        b_max = int(np.abs(b_eff).max(initial=0)) if not mac.is_float else 0
    else:
        b = ctx.param(b_t.name, "b", readonly=True)
        b_off = None if mac.is_float else -np.broadcast_to(np.asarray(b_t.quant.zero_point, np.int64), (cols,))
        b_max = 0
        if b_off is not None:
            lo, hi = b_t.dtype.limits()
            b_max = int(max(np.abs(lo + b_off).max(), np.abs(hi + b_off).max()))
    if mac.is_float and not b_t.dtype.is_float and not b_t.is_const:
        raise mac.unsupported(f"integer operand b {b_t.describe()} in a float product")
    if not mac.is_float:
        mac.check_products(b_max)
        mac.fit_accumulator(depth * mac.x_range(mac.x_off) * b_max)
    acc = mac.acc

    def b_value(index: Expr, c: Expr) -> Expr:
        v = load(b, index)
        if b_off is None or not np.any(b_off):
            return v
        if np.all(b_off == b_off[0]):
            return add(v, int(b_off[0]))
        return add(v, load(zp_buf, c))
    zp_buf = None
    if b_off is not None and np.any(b_off) and not np.all(b_off == b_off[0]):
        zp_buf = ctx.const("b_offset", b_off, DType.INT32, "-(zero point of b) per column")

    # Batch strides in elements; a broadcast dim (size 1 against a larger batch) does not advance.
    nb = len(batch)
    a_batch = (1,) * (nb - len(sa[:-2])) + sa[:-2]
    b_batch = (1,) * (nb - len(sb[:-2])) + sb[:-2]
    a_str = [0 if d == 1 else s * rows * depth for d, s in zip(a_batch, _strides(a_batch))]
    b_str = [0 if d == 1 else s * depth * cols for d, s in zip(b_batch, _strides(b_batch))]
    y_str = [s * rows * cols for s in _strides(batch)]

    def batch_loops(i: int, ao: Expr, bo: Expr, yo: Expr):
        if i == nb:
            return matrix(ao, bo, yo)
        return loop(f"p{i}", batch[i], lambda p: batch_loops(i + 1, add(ao, mul(p, a_str[i])),
                                                               add(bo, mul(p, b_str[i])), add(yo, mul(p, y_str[i]))))

    def matrix(ao: Expr, bo: Expr, yo: Expr):
        def cell(r, c):
            def step(k):
                av = load(a, linear_sum(ao, mul(r, depth), k))
                return mac_step(acc, add(av, mac.x_off) if mac.x_off else av,
                                b_value(linear_sum(bo, mul(k, cols), c), c))
            init = const(0.0) if mac.is_float else const(0, acc.dtype)
            return seq(Decl(acc, init), loop("k", depth, step), mac.finish(c, out, linear_sum(yo, mul(r, cols), c)))
        return loop("r", rows, lambda r: loop("c", cols, lambda c: cell(r, c)))

    params = (a, out) if b_t.is_const else (a, b, out)
    doc = "\n".join([f"{op.kind} {op.where()}", f"a {a_t.describe()}", f"b {b_t.describe()}",
                     f"output {y.describe()}",
                     f"batch {list(batch)} of [{rows} x {depth}] @ [{depth} x {cols}]", *mac.describe_quant()])
    return PrimFunc(ctx.func_name(op), params, batch_loops(0, const(0), const(0), const(0)), doc=doc)
