"""Reference kernels for QUANTIZE and DEQUANTIZE (per-tensor and per-axis).

QUANTIZE, float input (float32 math, as TFLM and onnxruntime do it):
- rounding "half_away" (TFLite AffineQuantize / PerChannelQuantize):
  q = clamp(round_half_away(float32(x) / float32(scale)) + zp)
- rounding "half_even" (ONNX QuantizeLinear): q = saturate(round_half_even(float32(x) / scale) + zp)
QUANTIZE, integer input (requantization):
- "half_away" is TFLM's quantize.cc: multiplier/shift = QuantizeMultiplier(double(in_scale) /
  double(out_scale)), q = clamp(MultiplyByQuantizedMultiplier(x - in_zp) + out_zp). TFLM's int8<->uint8
  fast path (x ^ 0x80 when the scales match and the zero points differ by 128) gives the same values, so
  it needs no special case.
- "half_even" is what an ONNX DequantizeLinear -> QuantizeLinear pair computes: dequantize in float32,
  then quantize as above.
DEQUANTIZE: float32(scale) * float32(q - zp) (TFLM Dequantize / PerChannelDequantize; ONNX
DequantizeLinear gives the same float32 values for 8- and 16-bit inputs).

Per-axis params (`quant.axis` set) apply one scale / zero point per slice along that axis. Out-of-range
results saturate to the output dtype (where C would hit undefined behaviour for values past int32).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import multiply_by_quantized_multiplier, np_round_half_away, quantize_multipliers, wrap_int32
from ..graph import Graph, Op, QuantParams, Tensor
from .registry import kernel, out_like

ROUNDINGS = ("half_away", "half_even")


def _broadcast_params(q: QuantParams, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale as float32, zero point as int64), shaped to broadcast against a tensor of ndim dims."""
    shape = [1] * ndim
    if q.axis is not None:
        shape[q.axis] = len(q.scale)
    scale = np.asarray(q.scale, dtype=np.float32).reshape(shape)
    zero_point = np.asarray(q.zero_point, dtype=np.int64).reshape(shape)
    return scale, zero_point


def _quant_of(op: Op, t: Tensor, role: str) -> QuantParams:
    if t.quant is None or not t.dtype.is_int:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: the {role} {t.name!r} ({t.describe()}) is not a "
                                 f"quantized integer tensor")
    return t.quant


def _round(op: Op, x: np.ndarray) -> np.ndarray:
    rounding = op.attrs.get("rounding", "half_away")
    if rounding == "half_away":
        return np_round_half_away(x)
    if rounding == "half_even":
        return np.rint(x)
    raise UnsupportedOpError(f"{op.where()} {op.kind}: unknown rounding {rounding!r} (expected one of "
                             f"{', '.join(ROUNDINGS)})")


def _quantize_float(op: Op, x: np.ndarray, out_t: Tensor, out_q: QuantParams) -> np.ndarray:
    """float -> int: clamp(round(float32(x) / float32(scale)) + zp)."""
    scale, zero_point = _broadcast_params(out_q, x.ndim)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rounded = _round(op, x.astype(np.float32) / scale)
    lo, hi = out_t.dtype.limits()
    # Clamp in float64 before the integer cast so huge values saturate instead of wrapping.
    return np.clip(rounded.astype(np.float64) + zero_point, lo, hi).astype(np.int64)


@kernel("QUANTIZE")
def quantize(op: Op, graph: Graph, inputs: list) -> list:
    """float -> int quantization or int -> int requantization (see the module docstring)."""
    x = inputs[0]
    in_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    out_q = _quant_of(op, out_t, "output")
    if in_t.dtype.is_float:
        return [out_like(graph, op.outputs[0], _quantize_float(op, x, out_t, out_q))]
    in_q = _quant_of(op, in_t, "input")
    if op.attrs.get("rounding", "half_away") == "half_away":
        out = _requantize_tflm(x, in_q, out_q, out_t)
    else:
        out = _quantize_float(op, _dequantize(x, in_q), out_t, out_q)
    return [out_like(graph, op.outputs[0], out)]


def _requantize_tflm(x: np.ndarray, in_q: QuantParams, out_q: QuantParams, out_t: Tensor) -> np.ndarray:
    """TFLM Requantize: clamp(MultiplyByQuantizedMultiplier(x - in_zp, m, s) + out_zp), with (m, s) from
    QuantizeMultiplier(double(float32 in_scale) / double(float32 out_scale)), per channel if per-axis."""
    in_scale, in_zp = _broadcast_params(in_q, x.ndim)
    out_scale, out_zp = _broadcast_params(out_q, x.ndim)
    effective = in_scale.astype(np.float64) / out_scale.astype(np.float64)
    multiplier, shift = quantize_multipliers(effective)
    centered = wrap_int32(x.astype(np.int64) - in_zp)   # int32 arithmetic in TFLM
    out = multiply_by_quantized_multiplier(centered, multiplier, shift) + out_zp
    lo, hi = out_t.dtype.limits()
    return np.clip(out, lo, hi)


def _dequantize(q: np.ndarray, quant: QuantParams) -> np.ndarray:
    """float32(scale) * float32(q - zp), the difference taken in int32 as TFLM does."""
    scale, zero_point = _broadcast_params(quant, q.ndim)
    centered = wrap_int32(q.astype(np.int64) - zero_point).astype(np.float32)
    return centered * scale


@kernel("DEQUANTIZE")
def dequantize(op: Op, graph: Graph, inputs: list) -> list:
    """int -> float: float32(scale) * float32(q - zero_point), per-tensor or per-axis (input's params)."""
    in_t = graph.tensors[op.inputs[0]]
    out_t = graph.tensors[op.outputs[0]]
    if not out_t.dtype.is_float:
        raise UnsupportedOpError(f"{op.where()} DEQUANTIZE: the output {out_t.name!r} ({out_t.describe()}) "
                                 f"is not a float tensor")
    return [out_like(graph, op.outputs[0], _dequantize(inputs[0], _quant_of(op, in_t, "input")))]
