"""QDQ fusion: DequantizeLinear -> float op -> QuantizeLinear becomes one quantized IR op.

ONNX QDQ models (onnxruntime's quantizer) wrap every float op in DequantizeLinear on its inputs and a
QuantizeLinear on its output. Here such a pattern becomes the TFLM-style quantized op on int8 tensors
with quant params (rounding "tflm"): Conv, MatMul/Gemm (constant weights -> FULLY_CONNECTED), Add/Sub/
Mul, Concat, data movement and MaxPool (on the integers), Relu/Clip, Sigmoid and Softmax. A Relu/Clip
between the op and the QuantizeLinear is fused as the op's activation.

Conditions (else the float op runs on DEQUANTIZE'd inputs, followed by a QUANTIZE): int8 per-tensor
activations, int8 weights with zero point 0 for convs (per-tensor or per-output-channel), the float
output consumed only by the QuantizeLinear, an int32-representable bias.

Biases: a DequantizeLinear'd int32 bias whose scale is in_scale * w_scale (to 1e-6) is used as is;
others are requantized to that scale with round-half-to-even. A constant bias Add between a Conv and its
QuantizeLinear is folded into the int32 bias; one after the Conv's own QuantizeLinear stays a quantized
ADD (folding it would skip a rounding step the model, and onnxruntime, performs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...graph import DType, QuantParams
from . import layout as L
from .common import (ACT_BOUNDS, broadcast_shape, choose_layout, clip_bounds, following_bias, make_quant,
                     round_half_even_int32)
from .context import Ctx, QSource
from .parse import Node
from .layout import contiguous as _c


Q_DTYPES = (DType.INT8,)
SOFTMAX_OUT = QuantParams.per_tensor(1.0 / 256, -128)   # TFLM's int8 softmax / logistic output


@dataclass
class Plan:
    out: str                # the QuantizeLinear output the fused op writes
    quant: QuantParams
    dtype: DType
    act: str
    skip: list[int]


def qin(ctx: Ctx, name: str, const: bool | None = False) -> QSource | None:
    """The int8 per-tensor source of a DequantizeLinear output (const: False = must be an
    activation, True = must be a constant, None = either)."""
    v = ctx.values.get(name) if name else None
    if v is None or v.dq_of is None:
        return None
    qs = v.dq_of
    src = ctx.val(qs.name)
    if src.dtype not in Q_DTYPES or (const is not None and (src.const is not None) != const):
        return None
    if src.const is None and qs.quant.axis is not None:
        return None  # activations must be per-tensor
    return qs


def plan_output(ctx: Ctx, node: Node, allow_act: bool) -> Plan | None:
    """The QuantizeLinear (optionally behind a Relu/Clip) that alone consumes the node's output."""
    out, act, skip = node.outputs[0], "NONE", []
    cons = ctx.info.consumers.get(out, [])
    if out in ctx.graph_outputs or len(cons) != 1:
        return None
    c = cons[0]
    if allow_act and c.op_type in ("Relu", "Clip") and not c.domain and c.input(0) == out:
        bounds = clip_bounds(ctx, c)
        act = ACT_BOUNDS.get(bounds) if bounds is not None else None
        out = c.outputs[0]
        cons = ctx.info.consumers.get(out, [])
        if act is None or out in ctx.graph_outputs or len(cons) != 1:
            return None
        skip.append(c.index)
        c = cons[0]
    if c.op_type != "QuantizeLinear" or c.domain or c.input(0) != out or c.attr("block_size"):
        return None
    scale = ctx.values.get(c.input(1))
    zp = ctx.values.get(c.input(2)) if c.input(2) else None
    if scale is None or scale.const is None or (c.input(2) and (zp is None or zp.const is None)):
        return None
    dtype = DType.from_numpy(zp.const.dtype) if zp is not None else DType.UINT8
    if dtype not in Q_DTYPES or scale.const.size != 1:
        return None
    quant = QuantParams.per_tensor(float(scale.const.ravel()[0]), int(zp.const.ravel()[0]))
    return Plan(c.outputs[0], quant, dtype, act, skip + [c.index])


def _finish(ctx: Ctx, kind: str, inputs, plan: Plan, shape, perm, natural: QuantParams | None = None,
            **attrs) -> None:
    """Emit `kind` writing plan.out; when the op's own output params (`natural`) differ from the
    QuantizeLinear's, write them to a temporary and requantize with QUANTIZE."""
    if natural is None or natural == plan.quant:
        ctx.emit(kind, inputs, [ctx.produce(plan.out, shape, plan.dtype, perm, plan.quant)], **attrs)
    else:
        tmp = ctx.temp(f"{plan.out}__pre", L.apply(shape, perm), plan.dtype, natural)
        ctx.emit(kind, inputs, [tmp], **attrs)
        ctx.emit("QUANTIZE", [tmp], [ctx.produce(plan.out, shape, plan.dtype, perm, plan.quant)])
    ctx.skip.update(plan.skip)


def bias_int32(ctx: Ctx, b: str, s_in: float, w_quant: QuantParams, n: int, beta: float = 1.0,
               extra: np.ndarray | None = None):
    """(int32 bias [n], its QuantParams) at scale s_in * s_w from bias input `b` (times beta) plus a
    real-valued `extra` [n] (a folded bias Add), or (None, None) for no bias; (False, None) when the bias
    cannot be used."""
    if not b and extra is None:
        return None, None
    s_b = s_in * np.broadcast_to(np.asarray(w_quant.scale, np.float64), (n,))
    real = np.zeros(n) if extra is None else extra.astype(np.float64)
    if b:
        v = ctx.val(b)
        src = ctx.val(v.dq_of.name) if v.dq_of is not None else None
        if src is not None and src.const is not None and src.dtype == DType.INT32 and src.const.size in (1, n):
            given = np.broadcast_to(np.asarray(v.dq_of.quant.scale, np.float64), (n,))
            if beta == 1.0 and extra is None and not any(v.dq_of.quant.zero_point) and \
                    np.allclose(given, s_b, rtol=1e-6, atol=0):
                q = np.broadcast_to(src.const.reshape(-1), (n,)).astype(np.int32)
                return _c(q), _bias_quant(s_b, w_quant)   # already at the accumulator scale
        if v.const is None or v.const.size not in (1, n) or not v.dtype.is_float:
            return False, None
        real = real + np.broadcast_to(v.const.astype(np.float64).reshape(-1), (n,)) * beta
    q = round_half_even_int32(real / s_b)
    return (False, None) if q is None else (q, _bias_quant(s_b, w_quant))


def _bias_quant(s_b: np.ndarray, w_quant: QuantParams) -> QuantParams:
    if w_quant.axis is None:
        return QuantParams.per_tensor(float(s_b[0]))
    return QuantParams(tuple(float(s) for s in s_b), (0,) * len(s_b), 0)


# -- the fusions ------------------------------------------------------------------------------------
def try_conv(ctx: Ctx, node: Node) -> bool:
    """Conv on int8; a constant per-channel Add right after the conv (before any QuantizeLinear) is
    folded into the int32 bias (rounded to the accumulator scale)."""
    from .ops_conv import conv_core
    qx, qw = qin(ctx, node.input(0)), qin(ctx, node.input(1), const=True)
    if qx is None or qw is None or any(qw.quant.zero_point) or qw.quant.axis not in (None, 0):
        return False
    w = ctx.val(qw.name).const
    xs = ctx.val(node.input(0)).shape
    plan, extra = plan_output(ctx, node, allow_act=True), None
    if plan is None:
        extra, add = following_bias(ctx, node.outputs[0], w.shape[0], len(xs), 1)
        plan = plan_output(ctx, add, allow_act=True) if add is not None else None
        if plan is None:
            return False
        plan.skip.append(add.index)
    bias, bq = bias_int32(ctx, node.input(2), qx.quant.s, qw.quant, w.shape[0], extra=extra)
    if bias is False:
        return False
    conv_core(ctx, node, ctx.get_q(qx, L.channels_last(len(xs))), xs, w, bias, plan.out, plan.dtype,
              out_quant=plan.quant, w_quant=qw.quant, b_quant=bq, activation=plan.act, rounding="tflm")
    ctx.skip.update(plan.skip)
    return True


def try_matmul(ctx: Ctx, node: Node) -> bool:
    """MatMul / Gemm: constant 2-D weights -> FULLY_CONNECTED; MatMul of two activations ->
    BATCH_MATMUL."""
    from .ops_matmul import matmul_shape
    gemm = node.op_type == "Gemm"
    a, b, c = node.input(0), node.input(1), node.input(2) if gemm else ""
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    tb = int(node.attr("transB", 0)) if gemm else 0
    qa, qb = qin(ctx, a), qin(ctx, b, const=None)
    if qa is None or qb is None or (gemm and node.attr("transA", 0)) or alpha <= 0:
        return False
    plan = plan_output(ctx, node, allow_act=True)
    if plan is None:
        return False
    vb = ctx.val(qb.name)
    shape = matmul_shape(ctx, ctx.shape(a), vb.shape[::-1] if tb else vb.shape)
    if vb.const is not None and vb.rank == 2:
        w = vb.const if tb else vb.const.T          # [N, K]
        wq = qb.quant
        if wq.axis is not None:
            if wq.axis != (0 if tb else 1) or any(wq.zero_point):
                return False
            wq = dataclasses.replace(wq, axis=0)
        if alpha != 1.0:
            wq = dataclasses.replace(wq, scale=tuple(s * alpha for s in wq.scale))
        bias, bq = bias_int32(ctx, c, qa.quant.s, wq, w.shape[0], beta)
        if bias is False:
            return False
        f_ir = ctx.const_tensor(f"{qb.name}__nk", _c(w), wq)
        b_ir = ctx.const_tensor(f"{node.label}__bias", bias, bq) if bias is not None else ""
        _finish(ctx, "FULLY_CONNECTED", [ctx.get_q(qa), f_ir, b_ir], plan, shape, L.identity(len(shape)),
                activation=plan.act, rounding="tflm")
        return True
    if gemm or vb.const is not None or qb.quant.axis is not None or plan.act != "NONE" or alpha != 1.0:
        return False
    _finish(ctx, "BATCH_MATMUL", [ctx.get_q(qa), ctx.get_q(qb)], plan, shape, L.identity(len(shape)),
            rounding="tflm")
    return True


def _layout_of_sources(ctx: Ctx, qs: list[QSource], rank: int) -> tuple[int, ...]:
    names = [q.name for q in qs]
    return choose_layout(ctx, names, rank, lambda n: None if ctx.is_const(n) else ctx.layouts(n))


def try_binary(ctx: Ctx, node: Node) -> bool:
    qs = [qin(ctx, n, const=None) for n in node.inputs[:2]]
    if len(node.inputs) != 2 or any(q is None or q.quant.axis is not None for q in qs):
        return False
    plan = plan_output(ctx, node, allow_act=True)
    if plan is None:
        return False
    shape = broadcast_shape(ctx, [ctx.shape(n) for n in node.inputs])
    perm = _layout_of_sources(ctx, qs, len(shape))
    irs = [ctx.get_q(q, perm, len(shape)) for q in qs]
    kind = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL"}[node.op_type]
    _finish(ctx, kind, irs, plan, shape, perm, activation=plan.act)
    return True


def try_concat(ctx: Ctx, node: Node) -> bool:
    names = [n for n in node.inputs if n]
    qs = [qin(ctx, n, const=None) for n in names]
    if any(q is None or q.quant.axis is not None for q in qs):
        return False
    plan = plan_output(ctx, node, allow_act=False)
    if plan is None:
        return False
    r = len(ctx.shape(names[0]))
    axis = L.normalize_axis(int(node.attr("axis", 0)), r)
    shape = list(ctx.shape(names[0]))
    shape[axis] = sum(ctx.shape(n)[axis] for n in names)
    perm = _layout_of_sources(ctx, qs, r)
    _finish(ctx, "CONCATENATION", [ctx.get_q(q, perm) for q in qs], plan, shape, perm,
            axis=L.axis_in(perm, axis))
    return True


def try_unary(ctx: Ctx, node: Node) -> bool:
    """Relu/Clip -> CLIP, Sigmoid -> LOGISTIC, Softmax (last axis) -> SOFTMAX on int8."""
    qx = qin(ctx, node.input(0))
    if qx is None:
        return False
    plan = plan_output(ctx, node, allow_act=False)
    if plan is None:
        return False
    shape = ctx.shape(node.input(0))
    lay = ctx.layouts(qx.name)
    perm = lay[0] if lay else L.identity(len(shape))
    if node.op_type in ("Relu", "Clip"):
        bounds = clip_bounds(ctx, node)
        if bounds is None:
            return False
        _finish(ctx, "CLIP", [ctx.get_q(qx, perm)], plan, shape, perm, qx.quant, min=bounds[0], max=bounds[1])
    elif node.op_type == "Sigmoid":
        _finish(ctx, "LOGISTIC", [ctx.get_q(qx, perm)], plan, shape, perm, SOFTMAX_OUT)
    else:
        from .ops_elementwise import softmax_axis
        if softmax_axis(node, len(shape)) != len(shape) - 1:
            return False  # TFLM's softmax runs along the last axis only
        if L.axis_in(perm, len(shape) - 1) != len(shape) - 1:
            perm = L.identity(len(shape))
        _finish(ctx, "SOFTMAX", [ctx.get_q(qx, perm)], plan, shape, perm, SOFTMAX_OUT, axis=-1, beta=1.0)
    return True


def try_movement(ctx: Ctx, node: Node, convert) -> bool:
    """Ops that only move (or max-select) values run on the integers: the node is converted again
    with the int8 source as its input; a requantization follows if the QuantizeLinear's params differ."""
    qx = qin(ctx, node.input(0))
    if qx is None:
        return False
    plan = plan_output(ctx, node, allow_act=False)
    if plan is None:
        return False
    src = ctx.val(qx.name)
    lay = ctx.layouts(qx.name)
    perm = lay[0] if lay else L.identity(src.rank)
    tmp_in = ctx.fresh(f"{qx.name}__dq")
    ctx.define(tmp_in, src.shape, src.dtype, quant=qx.quant).variants[perm] = ctx.get_q(qx, perm)
    same = plan.quant == qx.quant and plan.dtype == src.dtype
    out = plan.out if same else ctx.fresh(f"{plan.out}__pre")
    convert(ctx, dataclasses.replace(node, inputs=(tmp_in, *node.inputs[1:]),
                                     outputs=(out, *node.outputs[1:])))
    if not same:
        v = ctx.val(out)
        p = ctx.layouts(out)[0]
        ctx.emit("QUANTIZE", [ctx.get(out, p)], [ctx.produce(plan.out, v.shape, plan.dtype, p, plan.quant)])
    ctx.skip.update(plan.skip)
    return True


def requantize(ctx: Ctx, node: Node, qs: QSource, quant: QuantParams, dtype: DType) -> bool:
    """QuantizeLinear of a lazily dequantized value: the same integers when the params agree, else an
    integer requantization (TFLM QUANTIZE int -> int)."""
    src = ctx.val(qs.name)
    if quant.axis is not None or qs.quant.axis is not None or src.const is not None:
        return False
    lay = ctx.layouts(qs.name)
    perm = lay[0] if lay else L.identity(src.rank)
    out = node.outputs[0]
    if quant == qs.quant and dtype == src.dtype:
        ctx.define(out, src.shape, dtype, quant=quant).variants[perm] = ctx.get_q(qs, perm)
        return True
    if src.dtype not in (DType.INT8, DType.INT16) or dtype not in (DType.INT8, DType.INT16):
        return False
    ctx.emit("QUANTIZE", [ctx.get_q(qs, perm)], [ctx.produce(out, src.shape, dtype, perm, quant)])
    return True


__all__ = ["try_conv", "try_matmul", "try_binary", "try_concat", "try_unary", "try_movement", "requantize",
           "make_quant"]
