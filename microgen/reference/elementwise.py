"""Reference kernels for the binary elementwise ops ADD, SUB and MUL (numpy broadcasting, fused activation).

Which arithmetic runs is decided by the tensors (see graph/ops.py):

- float: the op in the output's float dtype (float32 for TFLite), then the fused activation clamp.
- quantized: all three tensors 8- or 16-bit integers with per-tensor quant params. The TFLM reference
  recipes, bit for bit:
  ADD / SUB (add_common.cc / sub_common.cc, reference add.h / sub.h): both inputs are brought onto a
    common scale 2 * max(s1, s2) with extra headroom, summed in int32, and requantized:
        left_shift = 20 (8-bit output) or 15 (16-bit output)
        x_i' = MBQM((x_i - zp_i) << left_shift, QM(s_i / (2 max(s1, s2))))
        y = clamp(MBQM(x_1' +- x_2', QM(2 max(s1, s2) / (2^left_shift s_out))) + zp_out, act range)
    QM = QuantizeMultiplier, MBQM = MultiplyByQuantizedMultiplier; the real multipliers are computed in
    double from the float32 scales (measured against the TFLM build: its SUB does this too, although
    some sub_common.cc revisions compute them in float32).
    TFLM's int16 ADD always takes this general path (never the power-of-two-scale one).
  MUL (mul_common.cc, integer_ops/mul.h):
        y = clamp(MBQM((x_1 - zp_1) * (x_2 - zp_2), QM(double s1 * s2 / s_out)) + zp_out, act range)
    with TFLM's requirement that int16 MUL has zero points 0.
  The activation range is CalculateActivationRangeQuantized of the fused activation on the output.
- plain integer: integer tensors without quant params (ONNX Add/Mul on int8 ... uint64), and 32/64-bit
  integer tensors whatever their params (TFLM's int32 kernels ignore them): numpy arithmetic in the
  output dtype, wrapping on overflow. SUB and MUL clamp to the fused activation's integer range as
  TFLM's int32 kernels do; TFLM's int32 ADD ignores the fused activation, and so does this one.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFormatError, UnsupportedOpError
from ..fixedpoint import (
    activation_range_float,
    activation_range_quantized,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    wrap_int32,
)
from ..graph import Graph, Op, Tensor
from .registry import kernel, out_like


def quant_of(op: Op, t: Tensor, role: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantized tensor; per-axis params are not supported here."""
    assert t.quant is not None
    if t.quant.axis is not None:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: the {role} {t.name!r} has per-axis quantization "
                                 f"({t.quant}); {op.kind} needs per-tensor params")
    return t.quant.scale[0], t.quant.zero_point[0]


def arithmetic_of(op: Op, tensors: list[Tensor]) -> str:
    """'float', 'quantized' or 'integer': how an op over these tensors computes (module docstring)."""
    dtypes = {t.dtype for t in tensors}
    if all(d.is_float for d in dtypes):
        return "float"
    if all(d.is_int for d in dtypes):
        small = all(d.itemsize <= 2 for d in dtypes)
        if small and all(t.quant is not None for t in tensors):
            return "quantized"
        if not small or all(t.quant is None for t in tensors):
            return "integer"
    described = ", ".join(f"{t.name!r} {t.describe()}" for t in tensors)
    raise UnsupportedOpError(f"{op.where()} {op.kind}: unsupported mix of tensor types ({described}); "
                             f"expected all float, all quantized 8/16-bit, or all plain integer tensors")


def _broadcast_check(op: Op, a: np.ndarray, b: np.ndarray, out: Tensor) -> None:
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ModelFormatError(f"{op.where()} {op.kind}: input shapes {list(a.shape)} and {list(b.shape)} "
                               f"do not broadcast") from None
    if int(np.prod(shape, dtype=np.int64)) != out.size:
        raise ModelFormatError(f"{op.where()} {op.kind}: inputs broadcast to {list(shape)} but the output "
                               f"is {out.describe()}")


def _float_op(kind: str, a: np.ndarray, b: np.ndarray, out: Tensor, activation: str) -> np.ndarray:
    dt = out.dtype.np
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        y = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[kind](a, b)
    lo, hi = activation_range_float(activation)
    if activation != "NONE":
        y = np.minimum(np.maximum(y, dt.type(lo)), dt.type(hi))
    return y


def _integer_op(kind: str, a: np.ndarray, b: np.ndarray, out: Tensor, activation: str) -> np.ndarray:
    dt = out.dtype.np
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    with np.errstate(over="ignore"):
        y = np.asarray({"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[kind](a, b), dtype=dt)
    if kind != "ADD" and activation != "NONE":
        # TFLM CalculateActivationRange<int32_t>: the float bounds taken as integers.
        lo, hi = activation_range_float(activation)
        info = np.iinfo(dt)
        y = np.clip(y, max(info.min, lo), min(info.max, hi)).astype(dt)
    return y


def add_sub_params(s1: float, s2: float, s_out: float, out_bits: int) -> dict:
    """The TFLM ADD/SUB requantization parameters: left_shift and (multiplier, shift) for each input and
    the output, from real multipliers computed in double from the float32 scales."""
    left_shift = 15 if out_bits == 16 else 20
    twice_max = 2 * max(float(s1), float(s2))
    real_out = twice_max / ((1 << left_shift) * float(s_out))
    return dict(left_shift=left_shift, in1=quantize_multiplier(float(s1) / twice_max),
                in2=quantize_multiplier(float(s2) / twice_max), out=quantize_multiplier(real_out))


def _quantized_op(op: Op, a: np.ndarray, b: np.ndarray, ta: Tensor, tb: Tensor, out: Tensor,
                  activation: str) -> np.ndarray:
    s1, zp1 = quant_of(op, ta, "first input")
    s2, zp2 = quant_of(op, tb, "second input")
    s_out, zp_out = quant_of(op, out, "output")
    qmin, qmax = out.dtype.limits()
    act_min, act_max = activation_range_quantized(activation, s_out, zp_out, qmin, qmax)
    x1 = a.astype(np.int64) - zp1
    x2 = b.astype(np.int64) - zp2
    if op.kind == "MUL":
        if out.dtype.itemsize == 2 and (zp1, zp2, zp_out) != (0, 0, 0):
            raise UnsupportedOpError(f"{op.where()} MUL: 16-bit quantized MUL needs zero points 0 (TFLM), "
                                     f"got {zp1}, {zp2} -> {zp_out}")
        m, shift = quantize_multiplier(float(s1) * float(s2) / float(s_out))
        y = multiply_by_quantized_multiplier(wrap_int32(x1 * x2), m, shift) + zp_out
    else:
        p = add_sub_params(s1, s2, s_out, 8 * out.dtype.itemsize)
        ls = p["left_shift"]
        scaled1 = multiply_by_quantized_multiplier(wrap_int32(x1 << ls), *p["in1"])
        scaled2 = multiply_by_quantized_multiplier(wrap_int32(x2 << ls), *p["in2"])
        raw = wrap_int32(scaled1 + scaled2 if op.kind == "ADD" else scaled1 - scaled2)
        y = multiply_by_quantized_multiplier(raw, *p["out"]) + zp_out
    return np.clip(y, act_min, act_max)


@kernel("ADD", "SUB", "MUL")
def binary_elementwise(op: Op, graph: Graph, inputs: list) -> list:
    """a (op) b with numpy broadcasting: float, quantized (TFLM recipes) or plain integer, then the
    fused activation. Output: the output tensor's dtype and shape (module docstring)."""
    a, b = inputs
    ta, tb = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    out = graph.tensors[op.outputs[0]]
    _broadcast_check(op, a, b, out)
    activation = op.attrs.get("activation", "NONE")
    arithmetic = arithmetic_of(op, [ta, tb, out])
    if arithmetic == "float":
        y = _float_op(op.kind, a, b, out, activation)
    elif arithmetic == "integer":
        y = _integer_op(op.kind, a, b, out, activation)
    else:
        y = _quantized_op(op, a, b, ta, tb, out, activation)
    return [out_like(graph, op.outputs[0], y)]
