"""IR op -> TFLite builtin operator(s): the builtin, its operand list, options and op version.

Each lowering takes one IR op and returns one or more `TflOp`s. Operands TFLite wants as tensors (a
RESHAPE's shape, a TRANSPOSE's perm, MEAN's axes, ...) become new int32 constant tensors; a lowering
that needs a second op (a PAD before a conv, a RESHAPE after a slice) adds a new activation tensor.
Both are made through `ctx` (see tflite_writer.Context), which keeps their names unique.

Decisions (the IR can say more than TFLite can):
- Conv / depthwise / pool padding: TFLite only has SAME and VALID, resolved by TFLM as
  out = ceil(in / stride), pad_begin = max((out-1)*stride + eff_k - in, 0) // 2 (SAME) or
  out = (in - eff_k + stride) // stride, pad_begin = 0 (VALID), eff_k = (k-1)*dilation + 1.
  Explicit pads that are neither (e.g. PyTorch's symmetric pads on a stride-2 conv) are written as
  a separate PAD op (fill: the input zero point, i.e. real 0; for MAX_POOL the dtype's lowest value)
  followed by the op with VALID padding. That is exact for CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL and
  AVERAGE_POOL with count_include_pad=True; an AVERAGE_POOL that excludes padding and a
  TRANSPOSE_CONV whose pads are neither SAME nor VALID raise UnsupportedOpError.
- Ops TFLM computes differently from the IR meaning raise UnsupportedOpError instead of being
  written silently wrong: rounding="onnx" requantization, QUANTIZE float->int with half-to-even
  rounding, CONCATENATION of quantized inputs whose params differ from the output's (TFLM copies raw
  values) or with a fused activation (TFLM rejects it), CLIP bounds other than RELU / RELU6 /
  RELU_N1_TO_1, SOFTMAX over an axis other than the last, PAD modes other than constant.
- Op versions follow TFLite's op_version.cc for the tensor types (e.g. int8: CONV_2D 3,
  DEPTHWISE_CONV_2D 3, FULLY_CONNECTED 4, pools 2); TFLM resolves ops by builtin code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import DType, Graph, Op, Tensor
from .tflite_schema import ACTIVATION_CODES, PADDING_CODES

_CLIP_BUILTINS = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


@dataclass
class TflOp:
    """One TFLite operator: inputs are tensor names ('' for an omitted optional input)."""

    builtin: str
    inputs: list[str]
    outputs: list[str]
    options: tuple[str, dict[str, Any]] | None = None
    version: int = 1


def _fail(op: Op, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{op.where()} {op.kind}: {why}")


def _version(dtype: DType, int8: int = 1, int16: int = 1, other: int = 1) -> int:
    return int8 if dtype in (DType.INT8,) else int16 if dtype is DType.INT16 else other


def _act(op: Op) -> int:
    return ACTIVATION_CODES[op.attrs.get("activation", "NONE")]


def _check_rounding(op: Op) -> None:
    if op.attrs.get("rounding", "tflm") == "onnx":
        raise _fail(op, "requantizes with ONNX rounding (rounding='onnx'), which TFLite kernels do not do")


# -- padding ---------------------------------------------------------------------------------------
def _tflite_padding(in_hw, out_hw, kernel, strides, dilations, begins) -> str | None:
    """'VALID' or 'SAME' if TFLM would compute these begin pads and output sizes, else None."""
    for mode in ("VALID", "SAME"):
        ok = True
        for i in range(2):
            eff = (kernel[i] - 1) * dilations[i] + 1
            if mode == "SAME":
                out = -(-in_hw[i] // strides[i])
                before = max((out - 1) * strides[i] + eff - in_hw[i], 0) // 2
            else:
                out = (in_hw[i] - eff + strides[i]) // strides[i]
                before = 0
            ok = ok and out == out_hw[i] and before == begins[i]
        if ok:
            return mode
    return None


def _spatial_padding(op: Op, g: Graph, ctx, kernel, dilations, fill: str | None,
                     explicit: bool = False) -> tuple[str, str, list[TflOp]]:
    """(padding mode, input tensor name, PAD ops to put first) for a 2-D windowed op.

    fill: what an inserted PAD writes ('zero' = real 0, 'lowest' = the dtype's lowest value), or None
    when the op cannot take an inserted PAD. explicit: pad with a PAD op whenever a pad is nonzero
    (an average pool that counts padded cells, which TFLite SAME never does).
    """
    x = g.tensors[op.inputs[0]]
    y = g.tensors[op.outputs[0]]
    strides = tuple(op.attrs["strides"])
    pads = tuple(op.attrs.get("pads") or (0, 0, 0, 0))
    in_hw, out_hw = x.shape[1:3], y.shape[1:3]
    mode = _tflite_padding(in_hw, out_hw, kernel, strides, dilations, pads[:2])
    if explicit and any(pads):
        mode = None
    if mode is not None:
        return mode, op.inputs[0], []
    if fill is None or min(pads) < 0:
        raise _fail(op, f"pads {list(pads)} are neither TFLite SAME nor VALID padding for input "
                        f"{list(in_hw)} -> output {list(out_hw)}; it cannot be expressed in TFLite without a "
                        f"separate PAD op")
    # Pad explicitly, then run the op VALID: the end pads are what VALID needs for the output size.
    pairs = [(0, 0)] * 4
    for i in range(2):
        eff = (kernel[i] - 1) * dilations[i] + 1
        end = max((out_hw[i] - 1) * strides[i] + eff - in_hw[i] - pads[i], 0)
        if (in_hw[i] + pads[i] + end - eff) // strides[i] + 1 != out_hw[i]:
            raise _fail(op, f"output {list(out_hw)} does not follow from input {list(in_hw)}, pads "
                            f"{list(pads)} and strides {list(strides)}")
        pairs[i + 1] = (pads[i], end)
    if fill == "zero":
        value = x.quant.zero_point[0] if x.is_quantized else 0
    else:
        value = x.dtype.limits()[0] if x.dtype.is_int else float(np.finfo(np.float32).min)
    shape = tuple(n + b + e for n, (b, e) in zip(x.shape, pairs))
    padded = ctx.activation(f"{op.inputs[0]}/padded", shape, x.dtype, x.quant)
    return "VALID", padded, _pad_ops(ctx, op.inputs[0], padded, pairs, value, ctx.tensors[padded])


def _pad_ops(ctx, src: str, dst: str, pairs, value, y: Tensor) -> list[TflOp]:
    """PAD when TFLM's implicit fill (int8: the output zero point, else 0) equals the raw `value`, else
    PADV2 with a scalar constant_values tensor (with the output's quantization params).
    y: the output tensor."""
    paddings = ctx.const(f"{dst}/paddings", np.asarray(pairs, dtype=np.int32).reshape(-1, 2))
    implicit = y.quant.zero_point[0] if (y.dtype is DType.INT8 and y.quant is not None) else 0
    version = 4 if len(y.shape) > 4 else _version(y.dtype, 2, 3)
    if value == implicit:
        return [TflOp("PAD", [src, paddings], [dst], ("PadOptions", {}), version)]
    fill = ctx.const(f"{dst}/constant_values", np.asarray(value).astype(y.dtype.np), quant=y.quant)
    return [TflOp("PADV2", [src, paddings, fill], [dst], ("PadV2Options", {}), version)]


# -- lowerings -------------------------------------------------------------------------------------
def _conv(op: Op, g: Graph, ctx) -> list[TflOp]:
    _check_rounding(op)
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise _fail(op, f"TFLite convolutions take 4-D tensors, got input {list(x.shape)}")
    dil = tuple(op.attrs.get("dilations", (1, 1)))
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    mode, src, pre = _spatial_padding(op, g, ctx, w.shape[1:3], dil, fill="zero")
    opts = dict(padding=_pad_code(mode), stride_w=op.attrs["strides"][1], stride_h=op.attrs["strides"][0],
                fused_activation_function=_act(op), dilation_w_factor=dil[1], dilation_h_factor=dil[0])
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    if depthwise:
        opts["depth_multiplier"] = op.attrs.get("depth_multiplier", 1)
        version = 3 if x.dtype.is_int else (2 if dil != (1, 1) else 1)
        return pre + [TflOp("DEPTHWISE_CONV_2D", [src, op.inputs[1], bias], list(op.outputs),
                            ("DepthwiseConv2DOptions", opts), version)]
    grouped = w.shape[3] != x.shape[3]
    version = 6 if grouped else (3 if x.dtype.is_int else 1)
    return pre + [TflOp("CONV_2D", [src, op.inputs[1], bias], list(op.outputs), ("Conv2DOptions", opts), version)]


def _pad_code(mode: str) -> int:
    return PADDING_CODES[mode]


def _transpose_conv(op: Op, g: Graph, ctx) -> list[TflOp]:
    """TFLite inputs (output_shape, filter, input, bias?). TFLM derives the crop from the output size as
    if the output were a conv input: pad_begin = max((ceil(out/s) - 1)*s + k - out, 0) // 2 (SAME) or 0
    (VALID); the IR's begin pads must be one of these (its end pads follow from the output size)."""
    w, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if tuple(op.attrs.get("dilations", (1, 1))) != (1, 1):
        raise _fail(op, "TFLite TRANSPOSE_CONV has no dilation")
    if op.attrs.get("activation", "NONE") != "NONE":
        raise _fail(op, "TFLM ignores a fused activation on TRANSPOSE_CONV")
    strides = tuple(op.attrs["strides"])
    begins = tuple(op.attrs.get("pads", (0, 0, 0, 0)))[:2]
    same = tuple(max((-(-y.shape[1 + i] // strides[i]) - 1) * strides[i] + w.shape[1 + i] - y.shape[1 + i], 0) // 2
                 for i in range(2))
    mode = "VALID" if begins == (0, 0) else "SAME" if begins == same else None
    if mode is None:
        raise _fail(op, f"pads {list(op.attrs.get('pads'))} are neither TFLite SAME nor VALID padding for output "
                        f"{list(y.shape[1:3])}; it cannot be expressed in TFLite")
    shape = ctx.const(f"{op.outputs[0]}/output_shape", np.asarray(y.shape, dtype=np.int32))
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    opts = dict(padding=_pad_code(mode), stride_w=strides[1], stride_h=strides[0])
    version = 3 if bias else (2 if w.dtype is DType.INT8 else 1)
    return [TflOp("TRANSPOSE_CONV", [shape, op.inputs[1], op.inputs[0], bias], list(op.outputs),
                  ("TransposeConvOptions", opts), version)]


def _fully_connected(op: Op, g: Graph, ctx) -> list[TflOp]:
    _check_rounding(op)
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    keep = len(x.shape) > 2 and y.shape == (*x.shape[:-1], y.shape[-1])
    bias = op.inputs[2] if len(op.inputs) > 2 else ""
    version = 5 if keep else (4 if x.dtype.is_int else 1)
    opts = dict(fused_activation_function=_act(op), keep_num_dims=keep)
    return [TflOp("FULLY_CONNECTED", [op.inputs[0], op.inputs[1], bias], list(op.outputs),
                  ("FullyConnectedOptions", opts), version)]


def _batch_matmul(op: Op, g: Graph, ctx) -> list[TflOp]:
    _check_rounding(op)
    a, b = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise _fail(op, "TFLite BATCH_MATMUL needs operands of rank 2 or more")
    return [TflOp("BATCH_MATMUL", list(op.inputs), list(op.outputs), ("BatchMatMulOptions", {}),
                  _version(a.dtype, 2, 3))]


def _pool(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    kernel = tuple(op.attrs["kernel"])
    if len(x.shape) != 4 or len(kernel) != 2:
        raise _fail(op, f"TFLite pools are 2-D only, got input {list(x.shape)} and kernel {list(kernel)}")
    dil = tuple(op.attrs.get("dilations") or (1, 1))
    if dil != (1, 1):
        raise _fail(op, f"TFLite pools have no dilation (dilations {list(dil)})")
    average = op.kind == "AVERAGE_POOL"
    counts_pads = average and bool(op.attrs.get("count_include_pad"))
    fill = "lowest" if not average else ("zero" if counts_pads else None)
    mode, src, pre = _spatial_padding(op, g, ctx, kernel, dil, fill, explicit=counts_pads)
    strides = op.attrs["strides"]
    opts = dict(padding=_pad_code(mode), stride_w=strides[1], stride_h=strides[0], filter_width=kernel[1],
                filter_height=kernel[0], fused_activation_function=_act(op))
    builtin = "AVERAGE_POOL_2D" if average else "MAX_POOL_2D"
    return pre + [TflOp(builtin, [src], list(op.outputs), ("Pool2DOptions", opts), _version(x.dtype, 2, 3))]


def _binary(op: Op, g: Graph, ctx) -> list[TflOp]:
    a = g.tensors[op.inputs[0]]
    act = _act(op)
    if op.kind == "MUL":
        version = _version(a.dtype, 2, 4)
        b, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if a.dtype is DType.INT8 and a.is_quantized and b.is_quantized and y.is_quantized and \
                a.quant.scale[0] * b.quant.scale[0] / y.quant.scale[0] >= 1.0:
            version = 3
        return [TflOp("MUL", list(op.inputs), list(op.outputs), ("MulOptions", dict(fused_activation_function=act)),
                      version)]
    # pot_scale_int16=False: the general (non power-of-two) int16 scaling the IR means.
    opts = dict(fused_activation_function=act, pot_scale_int16=False)
    version = _version(a.dtype, 2, 3 if op.kind == "ADD" else 5)
    name = "AddOptions" if op.kind == "ADD" else "SubOptions"
    return [TflOp(op.kind, list(op.inputs), list(op.outputs), (name, opts), version)]


def _unary(builtin: str, int8: int, int16: int) -> Callable:
    def lower(op: Op, g: Graph, ctx) -> list[TflOp]:
        x = g.tensors[op.inputs[0]]
        return [TflOp(builtin, list(op.inputs), list(op.outputs), None, _version(x.dtype, int8, int16))]
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
        raise _fail(op, f"clip to [{lo}, {hi}] is none of RELU, RELU6, RELU_N1_TO_1")
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    version = {"RELU": _version(x.dtype, 2, 3, 2 if x.dtype is DType.UINT8 else 1),
               "RELU6": _version(x.dtype, 2, 3), "RELU_N1_TO_1": 1}[builtin]
    pre, src = [], op.inputs[0]
    if builtin != "RELU" and x.is_quantized and y.is_quantized and \
            (x.quant.scale, x.quant.zero_point) != (y.quant.scale, y.quant.zero_point):
        src = ctx.activation(f"{op.outputs[0]}/requantized", x.shape, y.dtype, y.quant)
        pre = [TflOp("QUANTIZE", [op.inputs[0]], [src], None, 2 if y.dtype is DType.INT16 else 1)]
    return pre + [TflOp(builtin, [src], list(op.outputs), None, version)]


def _leaky_relu(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    return [TflOp("LEAKY_RELU", list(op.inputs), list(op.outputs),
                  ("LeakyReluOptions", dict(alpha=op.attrs["alpha"])), _version(x.dtype, 1, 2))]


def _softmax(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    axis = op.attrs.get("axis", -1)
    if axis not in (-1, len(x.shape) - 1):
        raise _fail(op, f"TFLite SOFTMAX works on the last axis, not axis {axis}")
    return [TflOp("SOFTMAX", list(op.inputs), list(op.outputs), ("SoftmaxOptions", dict(beta=op.attrs.get("beta", 1.0))),
                  _version(x.dtype, 2, 3))]


def _quantize(op: Op, g: Graph, ctx) -> list[TflOp]:
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if x.dtype.is_float and op.attrs.get("rounding", "half_away") != "half_away":
        raise _fail(op, f"TFLite QUANTIZE rounds half away from zero, not {op.attrs.get('rounding')!r}")
    version = 3 if (y.quant is not None and y.quant.per_channel) else (2 if y.dtype is DType.INT16 else 1)
    return [TflOp("QUANTIZE", list(op.inputs), list(op.outputs), None, version)]


def _dequantize(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    version = 3 if x.dtype in (DType.INT16, DType.FLOAT16) else (
        (5 if x.quant is not None and x.quant.per_channel else 2) if x.dtype is DType.INT8 else 1)
    return [TflOp("DEQUANTIZE", list(op.inputs), list(op.outputs), None, version)]


def _reshape(op: Op, g: Graph, ctx) -> list[TflOp]:
    y = g.tensors[op.outputs[0]]
    shape = ctx.const(f"{op.outputs[0]}/shape", np.asarray(y.shape, dtype=np.int32))
    return [TflOp("RESHAPE", [op.inputs[0], shape], list(op.outputs), None, 1)]


def _transpose(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    perm = ctx.const(f"{op.outputs[0]}/perm", np.asarray(op.attrs["perm"], dtype=np.int32))
    rank = len(x.shape)
    version = 6 if rank > 5 else 5 if x.dtype is DType.INT16 else 4 if rank > 4 else (
        3 if x.dtype is DType.BOOL else _version(x.dtype, 2))
    return [TflOp("TRANSPOSE", [op.inputs[0], perm], list(op.outputs), None, version)]


def _concatenation(op: Op, g: Graph, ctx) -> list[TflOp]:
    y = g.tensors[op.outputs[0]]
    if op.attrs.get("activation", "NONE") != "NONE":
        raise _fail(op, "TFLM does not run CONCATENATION with a fused activation")
    if y.is_quantized:
        for name in op.inputs:
            q = g.tensors[name].quant
            if q is None or (q.scale, q.zero_point) != (y.quant.scale, y.quant.zero_point):
                raise _fail(op, f"input {name!r} has quantization params ({q}) other than the output's "
                                f"({y.quant}); TFLM concatenates raw values without requantizing")
    opts = dict(axis=op.attrs["axis"], fused_activation_function=0)
    return [TflOp("CONCATENATION", list(op.inputs), list(op.outputs), ("ConcatenationOptions", opts),
                  _version(y.dtype, 2, 3))]


def _pad(op: Op, g: Graph, ctx) -> list[TflOp]:
    if op.attrs.get("mode", "constant") != "constant":
        raise _fail(op, f"mode {op.attrs.get('mode')!r}: only constant padding is written (PAD / PADV2)")
    pairs = [tuple(int(v) for v in p) for p in op.attrs["pads"]]
    return _pad_ops(ctx, op.inputs[0], op.outputs[0], pairs, op.attrs.get("value", 0), g.tensors[op.outputs[0]])


def _mean(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    axes = ctx.const(f"{op.outputs[0]}/axes", np.asarray(op.attrs["axes"], dtype=np.int32).reshape(-1))
    return [TflOp("MEAN", [op.inputs[0], axes], list(op.outputs),
                  ("ReducerOptions", dict(keep_dims=op.attrs.get("keepdims", True))), _version(x.dtype, 2, 3))]


def _slice(op: Op, g: Graph, ctx) -> list[TflOp]:
    """STRIDED_SLICE with every bound resolved to an explicit index; axes that the output tensor drops
    become shrink_axis_mask bits, any other reshape a RESHAPE after it."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    begin, end, strides = (list(op.attrs[k]) for k in ("begin", "end", "strides"))
    tb, te, ts, extents, end_mask = [], [], [], [], 0
    for i, n in enumerate(x.shape):
        sl = slice(begin[i], end[i], strides[i]) if i < len(begin) else slice(None)
        idx = range(n)[sl]
        if len(idx) == 0:
            raise _fail(op, f"the slice of axis {i} is empty")
        step = idx.step if len(idx) > 1 else 1
        stop = idx[-1] + (1 if step > 0 else -1)
        if stop < 0:
            end_mask |= 1 << i
            stop = 0
        tb.append(idx[0])
        te.append(stop)
        ts.append(step)
        extents.append(len(idx))
    shrink, j, out = 0, 0, list(y.shape)
    for i, n in enumerate(extents):
        if j < len(out) and out[j] == n:
            j += 1
        elif n == 1:
            shrink |= 1 << i
        else:
            j = -1
            break
    if j != len(out):
        shrink = 0
    rank = len(x.shape)
    version = 4 if rank > 4 else (3 if x.dtype is DType.BOOL else 2 if x.dtype in (DType.INT8, DType.INT16) else 1)
    ins = [op.inputs[0]] + [ctx.const(f"{op.outputs[0]}/{k}", np.asarray(v, dtype=np.int32))
                            for k, v in (("begin", tb), ("end", te), ("strides", ts))]
    opts = ("StridedSliceOptions", dict(end_mask=end_mask, shrink_axis_mask=shrink))
    if j == len(out):
        return [TflOp("STRIDED_SLICE", ins, list(op.outputs), opts, version)]
    mid = ctx.activation(f"{op.outputs[0]}/sliced", tuple(extents), x.dtype, x.quant)
    shape = ctx.const(f"{op.outputs[0]}/shape", np.asarray(y.shape, dtype=np.int32))
    return [TflOp("STRIDED_SLICE", ins, [mid], opts, version),
            TflOp("RESHAPE", [mid, shape], list(op.outputs), None, 1)]


def _split(op: Op, g: Graph, ctx) -> list[TflOp]:
    x = g.tensors[op.inputs[0]]
    sizes = [int(s) for s in op.attrs["sizes"]]
    axis = ctx.const(f"{op.outputs[0]}/axis", np.asarray(op.attrs["axis"], dtype=np.int32))
    n = len(sizes)
    if len(set(sizes)) == 1:
        version = 4 if x.dtype is DType.INT16 else 3 if x.dtype is DType.INT32 else _version(x.dtype, 2)
        return [TflOp("SPLIT", [axis, op.inputs[0]], list(op.outputs), ("SplitOptions", dict(num_splits=n)),
                      version)]
    size_t = ctx.const(f"{op.outputs[0]}/size_splits", np.asarray(sizes, dtype=np.int32))
    return [TflOp("SPLIT_V", [op.inputs[0], size_t, axis], list(op.outputs), ("SplitVOptions", dict(num_splits=n)),
                  _version(x.dtype, 2, 3))]


def _resize_nearest(op: Op, g: Graph, ctx) -> list[TflOp]:
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    size = ctx.const(f"{op.outputs[0]}/size", np.asarray(y.shape[1:3], dtype=np.int32))
    align, half = bool(op.attrs.get("align_corners")), bool(op.attrs.get("half_pixel_centers"))
    version = 4 if x.dtype is DType.INT16 else 3 if (align or half) else _version(x.dtype, 2)
    opts = ("ResizeNearestNeighborOptions", dict(align_corners=align, half_pixel_centers=half))
    return [TflOp("RESIZE_NEAREST_NEIGHBOR", [op.inputs[0], size], list(op.outputs), opts, version)]


LOWERINGS: dict[str, Callable[[Op, Graph, Any], list[TflOp]]] = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected, "BATCH_MATMUL": _batch_matmul,
    "AVERAGE_POOL": _pool, "MAX_POOL": _pool, "MEAN": _mean,
    "ADD": _binary, "SUB": _binary, "MUL": _binary, "CLIP": _clip, "LEAKY_RELU": _leaky_relu,
    "HARD_SWISH": _unary("HARD_SWISH", 1, 1), "LOGISTIC": _unary("LOGISTIC", 2, 3),
    "TANH": _unary("TANH", 2, 3), "SOFTMAX": _softmax,
    "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
    "RESHAPE": _reshape, "TRANSPOSE": _transpose, "CONCATENATION": _concatenation, "PAD": _pad,
    "SLICE": _slice, "SPLIT": _split, "RESIZE_NEAREST_NEIGHBOR": _resize_nearest,
}


def lower(op: Op, g: Graph, ctx) -> list[TflOp]:
    """The TFLite operators for one IR op; raises UnsupportedOpError when TFLite cannot express it."""
    fn = LOWERINGS.get(op.kind)
    if fn is None:
        raise _fail(op, "has no TFLite builtin equivalent in the writer")
    return fn(op, g, ctx)
