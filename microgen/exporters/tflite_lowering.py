"""Shared pieces of the IR -> TFLite op lowerings (tflite_ops, tflite_ops_shape): the `TflOp` record,
errors, op versions, and SAME/VALID padding with PAD insertion.

Conv / depthwise / pool padding: TFLite only has SAME and VALID, resolved by TFLM as
out = ceil(in / stride), pad_begin = max((out-1)*stride + eff_k - in, 0) // 2 (SAME) or
out = (in - eff_k + stride) // stride, pad_begin = 0 (VALID), eff_k = (k-1)*dilation + 1.
Explicit pads that are neither (e.g. PyTorch's symmetric pads on a stride-2 conv) are written as a
separate PAD op (fill: the input zero point, i.e. real 0; for MAX_POOL the dtype's lowest value)
followed by the op with VALID padding; see `spatial_padding`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import DType, Graph, Op, Tensor
from .tflite_schema import ACTIVATION_CODES, PADDING_CODES


@dataclass
class TflOp:
    """One TFLite operator: inputs are tensor names ('' for an omitted optional input)."""

    builtin: str
    inputs: list[str]
    outputs: list[str]
    options: tuple[str, dict[str, Any]] | None = None
    version: int = 1


def fail(op: Op, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{op.where()} {op.kind}: {why}")


def version_for(dtype: DType, int8: int = 1, int16: int = 1, other: int = 1) -> int:
    return int8 if dtype in (DType.INT8,) else int16 if dtype is DType.INT16 else other


def activation_code(op: Op) -> int:
    return ACTIVATION_CODES[op.attrs.get("activation", "NONE")]


def check_rounding(op: Op) -> None:
    if op.attrs.get("rounding", "tflm") == "onnx":
        raise fail(op, "requantizes with ONNX rounding (rounding='onnx'), which TFLite kernels do not do")


def padding_code(mode: str) -> int:
    return PADDING_CODES[mode]


# -- padding ---------------------------------------------------------------------------------------
def tflite_padding(in_hw, out_hw, kernel, strides, dilations, begins) -> str | None:
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


def spatial_padding(op: Op, g: Graph, ctx, kernel, dilations, fill: str | None,
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
    mode = tflite_padding(in_hw, out_hw, kernel, strides, dilations, pads[:2])
    if explicit and any(pads):
        mode = None
    if mode is not None:
        return mode, op.inputs[0], []
    if fill is None or min(pads) < 0:
        raise fail(op, f"pads {list(pads)} are neither TFLite SAME nor VALID padding for input "
                       f"{list(in_hw)} -> output {list(out_hw)}; it cannot be expressed in TFLite without a "
                       f"separate PAD op")
    # Pad explicitly, then run the op VALID: the end pads are what VALID needs for the output size.
    pairs = [(0, 0)] * 4
    for i in range(2):
        eff = (kernel[i] - 1) * dilations[i] + 1
        end = max((out_hw[i] - 1) * strides[i] + eff - in_hw[i] - pads[i], 0)
        if (in_hw[i] + pads[i] + end - eff) // strides[i] + 1 != out_hw[i]:
            raise fail(op, f"output {list(out_hw)} does not follow from input {list(in_hw)}, pads "
                           f"{list(pads)} and strides {list(strides)}")
        pairs[i + 1] = (pads[i], end)
    if fill == "zero":
        value = x.quant.zero_point[0] if x.is_quantized else 0
    else:
        value = x.dtype.limits()[0] if x.dtype.is_int else float(np.finfo(np.float32).min)
    shape = tuple(n + b + e for n, (b, e) in zip(x.shape, pairs))
    padded = ctx.activation(f"{op.inputs[0]}/padded", shape, x.dtype, x.quant)
    return "VALID", padded, pad_ops(ctx, op.inputs[0], padded, pairs, value, ctx.tensors[padded])


def pad_ops(ctx, src: str, dst: str, pairs, value, y: Tensor) -> list[TflOp]:
    """PAD when TFLM's implicit fill (int8: the output zero point, else 0) equals the raw `value`, else
    PADV2 with a scalar constant_values tensor (with the output's quantization params).
    y: the output tensor."""
    paddings = ctx.const(f"{dst}/paddings", np.asarray(pairs, dtype=np.int32).reshape(-1, 2))
    implicit = y.quant.zero_point[0] if (y.dtype is DType.INT8 and y.quant is not None) else 0
    version = 4 if len(y.shape) > 4 else version_for(y.dtype, 2, 3)
    if value == implicit:
        return [TflOp("PAD", [src, paddings], [dst], ("PadOptions", {}), version)]
    fill = ctx.const(f"{dst}/constant_values", np.asarray(value).astype(y.dtype.np), quant=y.quant)
    return [TflOp("PADV2", [src, paddings, fill], [dst], ("PadV2Options", {}), version)]
