"""QuantizeLinear, DequantizeLinear and com.microsoft QLinearAdd.

QuantizeLinear -> QUANTIZE with rounding "half_even" (ONNX rounds half to even), in the input's layout.
DequantizeLinear is lazy: its output is a `Value` pointing at the integer source with the DQ's params;
a DEQUANTIZE is emitted only if a consumer needs the float data (QDQ fusion reads the integers).
Per-tensor and per-axis params are supported (int8/uint8/int16/uint16, int32 for DequantizeLinear);
blocked quantization (block_size, scales of rank > 1) is not.
"""

from __future__ import annotations

from ...graph import DType
from . import qdq
from .common import (CheckView, broadcast_shape, choose_layout, converter, dequantize, make_quant,
                     need_const, quantize, unary_layout)
from .context import Ctx, QSource
from .parse import ONNX_TO_DTYPE, Node

Q_OUT = (DType.INT8, DType.UINT8, DType.INT16, DType.UINT16)


def _check_qdq(view: CheckView, node: Node) -> str | None:
    if node.attr("block_size", 0):
        return "blocked quantization (block_size)"
    s = view.shape(node.input(1))
    if s is not None and len(s) > 1:
        return "blocked quantization (scale of rank > 1)"
    if node.op_type == "QuantizeLinear":
        dt = view.dtype(node.input(0))
        if dt is not None and not dt.is_float:
            return f"QuantizeLinear of a {dt.value} tensor"
    else:
        dt = view.dtype(node.input(0))
        if dt is not None and dt not in Q_OUT + (DType.INT32,):
            return f"DequantizeLinear of a {dt.value} tensor"
    return need_const(view, node, [1, 2], "scale/zero point")


@converter("QuantizeLinear", check=_check_qdq)
def quantize_linear(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    zp = ctx.const(node.input(2))
    if zp is not None:
        dtype = DType.from_numpy(zp.dtype)
    else:
        dtype = ONNX_TO_DTYPE.get(int(node.attr("output_dtype", 0) or 0), DType.UINT8)
    if dtype not in Q_OUT:
        raise ctx.unsupported(f"QuantizeLinear to {dtype.value}")
    quant = make_quant(ctx, ctx.const(node.input(1)), zp, int(node.attr("axis", 1)), v.shape, "y_scale")
    out = node.outputs[0]
    if v.const is not None:
        ctx.define_const(out, quantize(v.const, quant, dtype), quant)
        return
    if v.dq_of is not None and qdq.requantize(ctx, node, v.dq_of, quant, dtype):
        return
    perm = unary_layout(ctx, x)
    ctx.emit("QUANTIZE", [ctx.get(x, perm)], [ctx.produce(out, v.shape, dtype, perm, quant)],
             rounding="half_even")


@converter("DequantizeLinear", check=_check_qdq)
def dequantize_linear(ctx: Ctx, node: Node) -> None:
    x = node.input(0)
    v = ctx.val(x)
    scale = ctx.const(node.input(1))
    quant = make_quant(ctx, scale, ctx.const(node.input(2)), int(node.attr("axis", 1)), v.shape, "x_scale")
    out_dt = ONNX_TO_DTYPE.get(int(node.attr("output_dtype", 0) or 0)) or DType.from_numpy(scale.dtype)
    qs = QSource(x, quant)
    if v.const is not None:
        w = ctx.define_const(node.outputs[0], dequantize(v.const, quant, out_dt.np))
        w.dq_of = qs
    else:
        ctx.define(node.outputs[0], v.shape, out_dt, dq_of=qs, dq_node=node)


def _check_qladd(view: CheckView, node: Node) -> str | None:
    return need_const(view, node, [1, 2, 4, 5, 6, 7], "scale/zero point")


@converter("QLinearAdd", domain="com.microsoft", check=_check_qladd)
def qlinear_add(ctx: Ctx, node: Node) -> None:
    """onnxruntime's contrib QLinearAdd as a quantized ADD (TFLM arithmetic, not onnxruntime's float
    requantization: results can differ by one step)."""
    a, b = node.input(0), node.input(3)
    c = {i: ctx.const(node.input(i)) for i in (1, 2, 4, 5, 6, 7)}
    qa = QSource(a, make_quant(ctx, c[1], c[2], 0, (), "A_scale"))
    qb = QSource(b, make_quant(ctx, c[4], c[5], 0, (), "B_scale"))
    yq = make_quant(ctx, c[6], c[7], 0, (), "C_scale")
    shape = broadcast_shape(ctx, [ctx.shape(a), ctx.shape(b)])
    perm = choose_layout(ctx, [a, b], len(shape))
    dt = DType.from_numpy(c[7].dtype) if c[7] is not None else ctx.val(a).dtype
    irs = [ctx.get_q(q, perm, len(shape)) for q in (qa, qb)]
    ctx.emit("ADD", irs, [ctx.produce(node.outputs[0], shape, dt, perm, yq)])

