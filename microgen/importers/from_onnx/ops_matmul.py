"""Matrix products: Gemm, MatMul, QLinearMatMul.

A constant 2-D right operand makes a FULLY_CONNECTED (filter [N, K] = B transposed); otherwise
BATCH_MATMUL on two activations. Operands are read in ONNX (row-major) order. A float MatMul/Gemm
whose only consumer is an Add of a constant [N] vector takes it as the FC bias, and a following
Relu/Clip as its fused activation.
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelFormatError
from ...graph import DType
from . import qdq
from .common import (CheckView, broadcast_shape, converter, elementwise, following_bias, fused_output,
                     make_quant, need_const)
from .context import Ctx, QSource
from .ops_shape import rowmajor
from .parse import Node
from .layout import contiguous as _c



def matmul_shape(ctx: Ctx, sa, sb) -> tuple[int, ...]:
    """numpy.matmul's output shape (1-D operands promoted and the added dims dropped)."""
    a = (1, *sa) if len(sa) == 1 else tuple(sa)
    b = (*sb, 1) if len(sb) == 1 else tuple(sb)
    if a[-1] != b[-2]:
        raise ModelFormatError(f"{ctx.info.path}: {ctx.node.where()}: cannot multiply {list(sa)} by "
                               f"{list(sb)}")
    out = (*broadcast_shape(ctx, [a[:-2], b[:-2]]), a[-2], b[-1])
    if len(sb) == 1:
        out = out[:-1]
    if len(sa) == 1:
        out = out[:-2] + out[-1:] if len(sb) != 1 else out[:-1]
    return out


def _fc(ctx: Ctx, node: Node, a_ir: str, a_rows_shape, weight_nk: np.ndarray, bias: np.ndarray | None,
        out: str, out_shape, dtype: DType, act: str) -> None:
    f_ir = ctx.const_tensor(f"{node.input(1)}__nk", weight_nk)
    b_ir = ctx.const_tensor(f"{node.label}__bias", bias) if bias is not None else ""
    ctx.emit("FULLY_CONNECTED", [a_ir, f_ir, b_ir], [ctx.produce(out, out_shape, dtype)], activation=act)


@converter("MatMul")
def matmul(ctx: Ctx, node: Node) -> None:
    if qdq.try_matmul(ctx, node):
        return
    a, b = node.input(0), node.input(1)
    va, vb = ctx.val(a), ctx.val(b)
    shape = matmul_shape(ctx, va.shape, vb.shape)
    w = vb.const
    if w is not None and w.ndim == 2 and va.dtype.is_float:
        bias, add = following_bias(ctx, node.outputs[0], w.shape[1], len(shape), len(shape) - 1)
        if add is not None:
            ctx.skip.add(add.index)
            out, act = fused_output(ctx, add)
        else:
            out, act = fused_output(ctx, node)
        _fc(ctx, node, rowmajor(ctx, a), va.shape, _c(w.T.astype(va.dtype.np)),
            None if bias is None else bias.astype(va.dtype.np), out, shape, va.dtype, act)
        return
    ctx.emit("BATCH_MATMUL", [ctx.get(a), ctx.get(b)], [ctx.produce(node.outputs[0], shape, va.dtype)])


@converter("Gemm")
def gemm(ctx: Ctx, node: Node) -> None:
    """Y = alpha * A' @ B' + beta * C. With a constant B: FULLY_CONNECTED with alpha folded into the
    filter and beta * C as its bias when C is a scalar or an [N] vector (else an ADD). With a
    non-constant B: BATCH_MATMUL, then MUL by alpha and ADD of beta * C as needed."""
    if qdq.try_matmul(ctx, node):
        return
    a, b, c = node.input(0), node.input(1), node.input(2)
    va, vb = ctx.val(a), ctx.val(b)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    ta, tb = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    dt = va.dtype
    m, k = va.shape[::-1] if ta else va.shape
    n = vb.shape[0] if tb else vb.shape[1]
    cc = ctx.const(c) if c else None
    c_vec = None
    if cc is not None and (cc.size == 1 or (cc.ndim and cc.shape[-1] == n and cc.size == n)):
        c_vec = np.broadcast_to(cc.astype(np.float64).reshape(-1) * beta, (n,)).astype(dt.np)
    fc = vb.const is not None
    post_add = bool(c) and not (fc and c_vec is not None)
    last = "ADD" if post_add else ("FULLY_CONNECTED" if fc else ("MUL" if alpha != 1.0 else "BATCH_MATMUL"))
    out, act = fused_output(ctx, node, fuse=last != "BATCH_MATMUL")

    a_ir = ctx.get(a)
    if ta:
        t = ctx.temp(f"{a}__t", (m, k), dt)
        ctx.emit("TRANSPOSE", [a_ir], [t], perm=(1, 0))
        a_ir = t
    prod_out = ctx.fresh(f"{node.label}__mm") if post_add else out
    if fc:
        w = vb.const if tb else vb.const.T
        w = (w.astype(np.float64) * alpha).astype(dt.np) if alpha != 1.0 else w.astype(dt.np)
        _fc(ctx, node, a_ir, (m, k), _c(w), None if post_add else c_vec, prod_out,
            (m, n), dt, "NONE" if post_add else act)
    else:
        b_ir = ctx.get(b)
        if tb:
            t = ctx.temp(f"{b}__t", (k, n), dt)
            ctx.emit("TRANSPOSE", [b_ir], [t], perm=(1, 0))
            b_ir = t
        ab = ctx.fresh(f"{node.label}__ab") if alpha != 1.0 else prod_out
        ctx.emit("BATCH_MATMUL", [a_ir, b_ir], [ctx.produce(ab, (m, n), dt)])
        if alpha != 1.0:
            al = ctx.define_const(ctx.fresh(f"{node.label}__alpha"), np.array(alpha, dt.np))
            elementwise(ctx, "MUL", [ab, al.name], prod_out, "NONE" if post_add else act)
    if post_add:
        if cc is not None:
            scaled = (cc.astype(np.float64) * beta).astype(dt.np)
            cn = ctx.define_const(ctx.fresh(f"{node.label}__c"), scaled).name
        elif beta != 1.0:
            be = ctx.define_const(ctx.fresh(f"{node.label}__beta"), np.array(beta, dt.np))
            cn = ctx.fresh(f"{node.label}__betac")
            elementwise(ctx, "MUL", [c, be.name], cn)
        else:
            cn = c
        elementwise(ctx, "ADD", [prod_out, cn], out, act)


def _check_qlmm(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1, 2, 4, 5, 6, 7], "scale/zero point")


@converter("QLinearMatMul", check=_check_qlmm)
def qlinear_matmul(ctx: Ctx, node: Node) -> None:
    """Integer matmul with ONNX requantization (rounding="onnx"). b's params may be per column."""
    a, b = node.input(0), node.input(3)
    va, vb = ctx.val(a), ctx.val(b)
    c = {i: ctx.const(node.input(i)) for i in (1, 2, 4, 5, 6, 7)}
    aq = make_quant(ctx, c[1], c[2], 0, va.shape, "a_scale")
    bq = make_quant(ctx, c[4], c[5], vb.rank - 1, vb.shape, "b_scale")
    yq = make_quant(ctx, c[6], c[7], 0, (), "y_scale")
    if aq.axis is not None or yq.axis is not None:
        raise ctx.unsupported("per-axis quantization of a or y")
    dt = DType.from_numpy(c[7].dtype) if c[7] is not None else va.dtype
    shape = matmul_shape(ctx, va.shape, vb.shape)
    a_ir = ctx.get_q(QSource(a, aq))
    out = ctx.produce(node.outputs[0], shape, dt, quant=yq)
    if vb.const is not None and vb.rank == 2:
        wq = bq if bq.axis is None else type(bq)(bq.scale, bq.zero_point, 0)
        f_ir = ctx.const_tensor(f"{b}__nk", _c(vb.const.T), wq)
        ctx.emit("FULLY_CONNECTED", [a_ir, f_ir, ""], [out], rounding="onnx")
    else:
        ctx.emit("BATCH_MATMUL", [a_ir, ctx.get_q(QSource(b, bq))], [out], rounding="onnx")
