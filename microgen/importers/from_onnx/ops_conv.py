"""Convolutions: Conv, QLinearConv, ConvTranspose (1-D and 2-D).

The input is read channels-last ([N,H,W,C]; 1-D convs get a unit H dim through a RESHAPE). Weights
are re-laid-out at import: ONNX [Cout, Cin/g, KH, KW] -> CONV_2D [Cout, KH, KW, Cin/g], or for
group == Cin > 1 -> DEPTHWISE_CONV_2D [1, KH, KW, Cout] with depth_multiplier Cout / Cin.
ConvTranspose weights [Cin, Cout/g, KH, KW] -> TRANSPOSE_CONV [Cout, KH, KW, Cin] (block-diagonal
for groups > 1, which keeps one op and is exact: the added terms are zero products).
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelFormatError
from ...graph import DType, QuantParams
from . import layout as L
from . import qdq
from .common import (CheckView, converter, following_bias, fused_output, make_quant, need_const,
                     window_geometry)
from .context import Ctx, QSource, quant_in
from .parse import Node


def _check_conv(view: CheckView, node: Node) -> str | None:
    r = view.rank(node.input(0))
    if r is not None and r not in (3, 4):
        return f"{r - 2}-D convolution (1-D and 2-D are supported)"
    if node.op_type == "QLinearConv":
        return need_const(view, node, range(1, 9), "weight/scale/zero point/bias")
    return need_const(view, node, [1, 2], "weight/bias")


def conv_core(ctx: Ctx, node: Node, x_ir: str, x_shape, weight: np.ndarray, bias: np.ndarray | None,
              out: str, dtype: DType, *, out_quant: QuantParams | None = None,
              w_quant: QuantParams | None = None, b_quant: QuantParams | None = None,
              activation: str = "NONE", rounding: str = "tflm") -> None:
    """Emit CONV_2D / DEPTHWISE_CONV_2D reading x_ir (channels-last) and writing ONNX value `out`.

    weight: ONNX layout [Cout, Cin/g, *k]; w_quant / b_quant: per-tensor or per-axis along Cout
    (axis 0). out_quant: per-tensor params of the output (axis in ONNX dims)."""
    n_sp = len(x_shape) - 2
    n, cin = x_shape[:2]
    cout, cin_g = weight.shape[:2]
    group = int(node.attr("group", 1))
    if group < 1 or cin % group or cout % group or cin_g * group != cin:
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: weight {list(weight.shape)} does not fit "
                               f"input {list(x_shape)} with group={group}")
    strides, dil, pads, out_sp = window_geometry(ctx, node, x_shape[2:], weight.shape[2:])
    x_q = ctx.tensors[x_ir].quant
    if n_sp == 1:  # [N,L,C] -> [N,1,L,C]
        x4 = ctx.temp(f"{x_ir}__2d", (n, 1, x_shape[2], cin), ctx.tensors[x_ir].dtype, x_q)
        ctx.emit("RESHAPE", [x_ir], [x4])
        x_ir, weight = x4, weight[:, :, None, :]
        strides, dil, pads = (1, *strides), (1, *dil), (0, pads[0], 0, pads[1])
    depthwise = group > 1 and group == cin
    wperm = (1, 2, 3, 0) if depthwise else (0, 2, 3, 1)
    f_ir = ctx.const_tensor(f"{node.input(1)}__{'1hwo' if depthwise else 'ohwi'}",
                            weight.transpose(wperm), quant_in(w_quant, wperm))
    b_ir = ctx.const_tensor(f"{node.label}__bias", bias, b_quant) if bias is not None else ""
    attrs = dict(strides=strides, dilations=dil, pads=pads, activation=activation, rounding=rounding)
    kind = "CONV_2D"
    if depthwise:
        kind, attrs["depth_multiplier"] = "DEPTHWISE_CONV_2D", cout // cin
    out_shape = (n, cout, *out_sp)
    perm = L.channels_last(len(out_shape))
    if n_sp == 1:
        y4 = ctx.temp(f"{out}__2d", (n, 1, out_sp[0], cout), dtype, out_quant)
        ctx.emit(kind, [x_ir, f_ir, b_ir], [y4], **attrs)
        ctx.emit("RESHAPE", [y4], [ctx.produce(out, out_shape, dtype, perm, out_quant)])
    else:
        ctx.emit(kind, [x_ir, f_ir, b_ir], [ctx.produce(out, out_shape, dtype, perm, out_quant)], **attrs)


@converter("Conv", check=_check_conv)
def conv(ctx: Ctx, node: Node) -> None:
    if qdq.try_conv(ctx, node):
        return
    x = node.input(0)
    v = ctx.val(x)
    w = ctx.const(node.input(1)).astype(v.dtype.np)
    b = ctx.const(node.input(2))
    src = node
    if b is None:  # a separate constant bias Add (e.g. CNTK/mnist-8) becomes the conv bias
        b, add = following_bias(ctx, node.outputs[0], w.shape[0], v.rank, 1)
        if add is not None:
            ctx.skip.add(add.index)
            src = add
    out, act = fused_output(ctx, src)
    conv_core(ctx, node, ctx.get(x, L.channels_last(v.rank)), v.shape, w,
              None if b is None else b.astype(v.dtype.np), out, v.dtype, activation=act)


@converter("QLinearConv", check=_check_conv)
def qlinear_conv(ctx: Ctx, node: Node) -> None:
    """Integer conv with ONNX requantization (rounding="onnx"); bias int32 at scale x_s * w_s."""
    x = node.input(0)
    v = ctx.val(x)
    c = [ctx.const(node.input(i)) for i in range(1, 9)]
    x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias = c
    xq = make_quant(ctx, x_scale, x_zp, 0, v.shape, "x_scale")
    wq = make_quant(ctx, w_scale, w_zp, 0, w.shape, "w_scale")
    yq = make_quant(ctx, y_scale, y_zp, 0, (), "y_scale")
    if yq.axis is not None or xq.axis is not None:
        raise ctx.unsupported("per-axis input/output quantization")
    out_dtype = DType.from_numpy(y_zp.dtype) if y_zp is not None else v.dtype
    bq = None
    if bias is not None:
        bs = xq.s * np.asarray(wq.scale)
        bq = QuantParams.per_tensor(float(bs[0])) if wq.axis is None else \
            QuantParams(tuple(float(s) for s in bs), (0,) * len(bs), 0)
        bias = bias.astype(np.int32)
    x_ir = ctx.get_q(QSource(x, xq), L.channels_last(v.rank))
    conv_core(ctx, node, x_ir, v.shape, w, bias, node.outputs[0], out_dtype, out_quant=yq, w_quant=wq,
              b_quant=bq, rounding="onnx")


# -- ConvTranspose -------------------------------------------------------------------------------------
def _check_convtranspose(view: CheckView, node: Node) -> str | None:
    r = view.rank(node.input(0))
    if r is not None and r not in (3, 4):
        return f"{r - 2}-D transposed convolution (1-D and 2-D are supported)"
    return need_const(view, node, [1, 2], "weight/bias")


def transpose_geometry(node: Node, in_sp, kernel):
    """Strides, dilations, begin pads, and output sizes of a ConvTranspose (ONNX reference rules)."""
    n = len(in_sp)
    strides = tuple(int(s) for s in node.attr("strides", [1] * n))
    dil = tuple(int(d) for d in node.attr("dilations", [1] * n))
    opad = tuple(int(p) for p in node.attr("output_padding", [0] * n))
    full = [(i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(in_sp, strides, kernel, dil)]
    auto = node.attr("auto_pad", "NOTSET") or "NOTSET"
    out_attr = node.attr("output_shape")
    out_attr = None if not out_attr else [int(o) for o in out_attr][-n:]
    pads = node.attr("pads")
    if pads is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        out = out_attr or [i * s for i, s in zip(in_sp, strides)]
        total = [f + p - o for f, p, o in zip(full, opad, out)]
        begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        return strides, dil, tuple(begin), tuple(out)
    pads = [int(p) for p in pads] if pads is not None else [0] * (2 * n)
    out = out_attr or [f + p - pads[k] - pads[n + k] for k, (f, p) in enumerate(zip(full, opad))]
    return strides, dil, tuple(pads[:n]), tuple(out)


@converter("ConvTranspose", check=_check_convtranspose)
def conv_transpose(ctx: Ctx, node: Node) -> None:
    """TRANSPOSE_CONV. IR pads (top, left, bottom, right) crop the full result of size
    (in-1)*stride + (k-1)*dilation + 1; the end pads are negative where the output reaches past it
    (output_padding / output_shape): those cells only get the bias."""
    x = node.input(0)
    v = ctx.val(x)
    w = ctx.const(node.input(1)).astype(v.dtype.np)
    b = ctx.const(node.input(2))
    group = int(node.attr("group", 1))
    n, cin = v.shape[:2]
    if w.shape[0] != cin or cin % group:
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: weight {list(w.shape)} does not fit input "
                               f"{list(v.shape)} with group={group}")
    cin_g, cout_g = cin // group, w.shape[1]
    cout = cout_g * group
    n_sp = v.rank - 2
    strides, dil, begin, out_sp = transpose_geometry(node, v.shape[2:], w.shape[2:])
    full = [(i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(v.shape[2:], strides, w.shape[2:], dil)]
    end = [f - bp - o for f, bp, o in zip(full, begin, out_sp)]
    filt = np.zeros((cout, *w.shape[2:], cin), dtype=w.dtype)
    for g in range(group):
        wg = w[g * cin_g:(g + 1) * cin_g]  # [Cin/g, Cout/g, *k]
        filt[g * cout_g:(g + 1) * cout_g, ..., g * cin_g:(g + 1) * cin_g] = np.moveaxis(wg, 0, -1)
    src = ctx.get(x, L.channels_last(v.rank))
    if n_sp == 1:
        x4 = ctx.temp(f"{src}__2d", (n, 1, v.shape[2], cin), v.dtype)
        ctx.emit("RESHAPE", [src], [x4])
        src, filt = x4, filt[:, None]
        strides, dil, begin, end = (1, *strides), (1, *dil), (0, *begin), [0, *end]
    f_ir = ctx.const_tensor(f"{node.input(1)}__ohwi", filt)
    b_ir = ctx.const_tensor(f"{node.label}__bias", b.astype(v.dtype.np)) if b is not None else ""
    attrs = dict(strides=tuple(strides), dilations=tuple(dil), pads=(*begin, *end))
    out_shape = (n, cout, *out_sp)
    y = ctx.produce(node.outputs[0], out_shape, v.dtype, L.channels_last(v.rank))
    if n_sp == 1:
        y4 = ctx.temp(f"{node.outputs[0]}__2d", (n, 1, out_sp[0], cout), v.dtype)
        ctx.emit("TRANSPOSE_CONV", [src, f_ir, b_ir], [y4], **attrs)
        ctx.emit("RESHAPE", [y4], [y])
    else:
        ctx.emit("TRANSPOSE_CONV", [src, f_ir, b_ir], [y], **attrs)
