"""IR op -> TFLite builtin operator(s): the builtin, its operand list, options and op version.

Each lowering takes one IR op and returns one or more `TflOp`s. Operands TFLite wants as tensors (a
RESHAPE's shape, a TRANSPOSE's perm, MEAN's axes, ...) become new int32 constant tensors; a lowering
that needs a second op (a PAD before a conv, a RESHAPE after a slice) adds a new activation tensor.
Both are made through `ctx` (see tflite_writer.Context), which keeps their names unique.

Decisions (the IR can say more than TFLite can):
- Conv / depthwise / pool pads that are neither TFLite SAME nor VALID (as TFLM resolves them) become a
  separate PAD op followed by the op with VALID padding (tflite_lowering.spatial_padding). That is
  exact for CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL and AVERAGE_POOL with count_include_pad=True; an
  AVERAGE_POOL that excludes padding and a TRANSPOSE_CONV whose pads are neither raise
  UnsupportedOpError ("... cannot be expressed in TFLite without a separate PAD op").
- A quantized RELU6 / RELU_N1_TO_1 whose output params differ from its input's is written as QUANTIZE
  + the clamp (TFLM's RELU6 does not requantize; its RELU does).
- Ops TFLM computes differently from the IR meaning raise UnsupportedOpError instead of being
  written silently wrong: rounding="onnx" requantization, QUANTIZE float->int with half-to-even
  rounding, CONCATENATION of quantized inputs whose params differ from the output's (TFLM copies raw
  values) or with a fused activation (TFLM rejects it), TRANSPOSE_CONV with a fused activation (TFLM
  ignores it), CLIP bounds other than RELU / RELU6 / RELU_N1_TO_1, SOFTMAX over an axis other than
  the last, PAD modes other than constant.
- Op versions follow TFLite's op_version.cc for the tensor types (e.g. int8: CONV_2D 3,
  DEPTHWISE_CONV_2D 3, FULLY_CONNECTED 4, pools 2); TFLM resolves ops by builtin code only.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..graph import DType, Graph, Op
from . import tflite_ops_shape as shape
from .tflite_lowering import (TflOp, activation_code, check_rounding, fail, padding_code, spatial_padding,
                              version_for)

_CLIP_BUILTINS = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


# -- lowerings -------------------------------------------------------------------------------------
def _conv(op: Op, g: Graph, ctx) -> list[TflOp]:
    check_rounding(op)
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise fail(op, f"TFLite convolutions take 4-D tensors, got input {list(x.shape)}")
    dil = tuple(op.attrs.get("dilations", (1, 1)))
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    mode, src, pre = spatial_padding(op, g, ctx, w.shape[1:3], dil, fill="zero")
    strides = op.attrs["strides"]
    opts = dict(padding=padding_code(mode), stride_w=strides[1], stride_h=strides[0],
                fused_activation_function=activation_code(op), dilation_w_factor=dil[1],
                dilation_h_factor=dil[0])
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    if depthwise:
        opts["depth_multiplier"] = op.attrs.get("depth_multiplier", 1)
        version = 3 if x.dtype.is_int else (2 if dil != (1, 1) else 1)
        return pre + [TflOp("DEPTHWISE_CONV_2D", [src, op.inputs[1], bias], list(op.outputs),
                            ("DepthwiseConv2DOptions", opts), version)]
    grouped = w.shape[3] != x.shape[3]
    version = 6 if grouped else (3 if x.dtype.is_int else 1)
    return pre + [TflOp("CONV_2D", [src, op.inputs[1], bias], list(op.outputs), ("Conv2DOptions", opts),
                        version)]


def _transpose_conv(op: Op, g: Graph, ctx) -> list[TflOp]:
    """TFLite inputs (output_shape, filter, input, bias?). TFLM derives the crop from the output size as
    if the output were a conv input: pad_begin = max((ceil(out/s) - 1)*s + k - out, 0) // 2 (SAME) or 0
    (VALID); the IR's begin pads must be one of these (its end pads follow from the output size)."""
    w, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if tuple(op.attrs.get("dilations", (1, 1))) != (1, 1):
        raise fail(op, "TFLite TRANSPOSE_CONV has no dilation")
    if op.attrs.get("activation", "NONE") != "NONE":
        raise fail(op, "TFLM ignores a fused activation on TRANSPOSE_CONV")
    strides = tuple(op.attrs["strides"])
    begins = tuple(op.attrs.get("pads", (0, 0, 0, 0)))[:2]
    out_hw, k_hw = y.shape[1:3], w.shape[1:3]
    same = tuple(max((-(-out_hw[i] // strides[i]) - 1) * strides[i] + k_hw[i] - out_hw[i], 0) // 2
                 for i in range(2))
    mode = "VALID" if begins == (0, 0) else "SAME" if begins == same else None
    if mode is None:
        raise fail(op, f"pads {list(op.attrs.get('pads'))} are neither TFLite SAME nor VALID padding for "
                       f"output {list(out_hw)}; it cannot be expressed in TFLite")
    shape = ctx.const(f"{op.outputs[0]}/output_shape", np.asarray(y.shape, dtype=np.int32))
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    opts = dict(padding=padding_code(mode), stride_w=strides[1], stride_h=strides[0])
    version = 3 if bias else (2 if w.dtype is DType.INT8 else 1)
    return [TflOp("TRANSPOSE_CONV", [shape, op.inputs[1], op.inputs[0], bias], list(op.outputs),
                  ("TransposeConvOptions", opts), version)]


def _fully_connected(op: Op, g: Graph, ctx) -> list[TflOp]:
    check_rounding(op)
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    keep = len(x.shape) > 2 and y.shape == (*x.shape[:-1], y.shape[-1])
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    version = 5 if keep else (4 if x.dtype.is_int else 1)
    opts = dict(fused_activation_function=activation_code(op), keep_num_dims=keep)
    return [TflOp("FULLY_CONNECTED", [op.inputs[0], op.inputs[1], bias], list(op.outputs),
                  ("FullyConnectedOptions", opts), version)]


def _batch_matmul(op: Op, g: Graph, ctx) -> list[TflOp]:
    check_rounding(op)
    a, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise fail(op, "TFLite BATCH_MATMUL needs operands of rank 2 or more")
    return [TflOp("BATCH_MATMUL", list(op.inputs), list(op.outputs), ("BatchMatMulOptions", {}),
                  version_for(a.dtype, 2, 3))]


def _pool(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    kernel = tuple(op.attrs["kernel"])
    if len(x.shape) != 4 or len(kernel) != 2:
        raise fail(op, f"TFLite pools are 2-D only, got input {list(x.shape)} and kernel {list(kernel)}")
    dil = tuple(op.attrs.get("dilations") or (1, 1))
    if dil != (1, 1):
        raise fail(op, f"TFLite pools have no dilation (dilations {list(dil)})")
    average = op.kind == "AVERAGE_POOL"
    counts_pads = average and bool(op.attrs.get("count_include_pad"))
    fill = "lowest" if not average else ("zero" if counts_pads else None)
    mode, src, pre = spatial_padding(op, g, ctx, kernel, dil, fill, explicit=counts_pads)
    strides = op.attrs["strides"]
    opts = dict(padding=padding_code(mode), stride_w=strides[1], stride_h=strides[0], filter_width=kernel[1],
                filter_height=kernel[0], fused_activation_function=activation_code(op))
    builtin = "AVERAGE_POOL_2D" if average else "MAX_POOL_2D"
    return pre + [TflOp(builtin, [src], list(op.outputs), ("Pool2DOptions", opts),
                        version_for(x.dtype, 2, 3))]


def _binary(op: Op, g: Graph, ctx) -> list[TflOp]:
    a = g.tensors[op.inputs[0]]
    act = activation_code(op)
    if op.kind == "MUL":
        version = version_for(a.dtype, 2, 4)
        b, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if a.dtype is DType.INT8 and a.is_quantized and b.is_quantized and y.is_quantized and \
                a.quant.scale[0] * b.quant.scale[0] / y.quant.scale[0] >= 1.0:
            version = 3
        opts = ("MulOptions", dict(fused_activation_function=act))
        return [TflOp("MUL", list(op.inputs), list(op.outputs), opts, version)]
    # pot_scale_int16=False: the general (non power-of-two) int16 scaling the IR means.
    opts = dict(fused_activation_function=act, pot_scale_int16=False)
    version = version_for(a.dtype, 2, 3 if op.kind == "ADD" else 5)
    name = "AddOptions" if op.kind == "ADD" else "SubOptions"
    return [TflOp(op.kind, list(op.inputs), list(op.outputs), (name, opts), version)]


def _unary(builtin: str, int8: int, int16: int) -> Callable:
    def lower(op: Op, g: Graph, ctx) -> list[TflOp]:
        x = g.tensors[op.inputs[0]]
        return [TflOp(builtin, list(op.inputs), list(op.outputs), None, version_for(x.dtype, int8, int16))]
    return lower


def _clip(op: Op, g: Graph, ctx) -> list[TflOp]:
    """RELU / RELU6 / RELU_N1_TO_1. TFLM's RELU requantizes to the output params but its RELU6 clamps
    the raw input values (it assumes equal params), so a quantized RELU6 / RELU_N1_TO_1 whose params
    differ is written as QUANTIZE (the same requantization) followed by the clamp. TFLM has no
    RELU_N1_TO_1 kernel: such a file is valid TFLite that TFLM refuses to load."""
    lo, hi = op.attrs.get("min"), op.attrs.get("max")
    key = (None if lo is None else float(lo), None if hi is None else float(hi))
    builtin = _CLIP_BUILTINS.get(key)
    if builtin is None:
        raise fail(op, f"clip to [{lo}, {hi}] is none of RELU, RELU6, RELU_N1_TO_1")
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    version = {"RELU": version_for(x.dtype, 2, 3, 2 if x.dtype is DType.UINT8 else 1),
               "RELU6": version_for(x.dtype, 2, 3), "RELU_N1_TO_1": 1}[builtin]
    pre, src = [], op.inputs[0]
    if builtin != "RELU" and x.is_quantized and y.is_quantized and \
            (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        src = ctx.activation(f"{op.outputs[0]}/requantized", x.shape, y.dtype, y.quant)
        pre = [TflOp("QUANTIZE", [op.inputs[0]], [src], None, 2 if y.dtype is DType.INT16 else 1)]
    return pre + [TflOp(builtin, [src], list(op.outputs), None, version)]


def _leaky_relu(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    return [TflOp("LEAKY_RELU", list(op.inputs), list(op.outputs),
                  ("LeakyReluOptions", dict(alpha=op.attrs["alpha"])), version_for(x.dtype, 1, 2))]


def _softmax(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    axis = op.attrs.get("axis", -1)
    if axis not in (-1, len(x.shape) - 1):
        raise fail(op, f"TFLite SOFTMAX works on the last axis, not axis {axis}")
    opts = ("SoftmaxOptions", dict(beta=op.attrs.get("beta", 1.0)))
    return [TflOp("SOFTMAX", list(op.inputs), list(op.outputs), opts, version_for(x.dtype, 2, 3))]


def _quantize(op: Op, g: Graph, ctx) -> list[TflOp]:
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype.is_float and op.attrs.get("rounding", "half_away") != "half_away":
        raise fail(op, f"TFLite QUANTIZE rounds half away from zero, not {op.attrs.get('rounding')!r}")
    version = 3 if (y.quant is not None and y.quant.per_channel) else (2 if y.dtype is DType.INT16 else 1)
    return [TflOp("QUANTIZE", list(op.inputs), list(op.outputs), None, version)]


def _dequantize(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    version = 3 if x.dtype in (DType.INT16, DType.FLOAT16) else (
        (5 if x.quant is not None and x.quant.per_channel else 2) if x.dtype is DType.INT8 else 1)
    return [TflOp("DEQUANTIZE", list(op.inputs), list(op.outputs), None, version)]


def _mean(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    axes = ctx.const(f"{op.outputs[0]}/axes", np.asarray(op.attrs["axes"], dtype=np.int32).reshape(-1))
    return [TflOp("MEAN", [op.inputs[0], axes], list(op.outputs),
                  ("ReducerOptions", dict(keep_dims=op.attrs.get("keepdims", True))),
                  version_for(x.dtype, 2, 3))]


LOWERINGS: dict[str, Callable[[Op, Graph, Any], list[TflOp]]] = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected, "BATCH_MATMUL": _batch_matmul,
    "AVERAGE_POOL": _pool, "MAX_POOL": _pool, "MEAN": _mean,
    "ADD": _binary, "SUB": _binary, "MUL": _binary, "CLIP": _clip, "LEAKY_RELU": _leaky_relu,
    "HARD_SWISH": _unary("HARD_SWISH", 1, 1), "LOGISTIC": _unary("LOGISTIC", 2, 3),
    "TANH": _unary("TANH", 2, 3), "SOFTMAX": _softmax,
    "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
    **shape.LOWERINGS,
}


def lower(op: Op, g: Graph, ctx) -> list[TflOp]:
    """The TFLite operators for one IR op; raises UnsupportedOpError when TFLite cannot express it."""
    fn = LOWERINGS.get(op.kind)
    if fn is None:
        raise fail(op, "has no TFLite builtin equivalent in the writer")
    return fn(op, g, ctx)
