"""Reference kernels for the activations CLIP, LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH and SOFTMAX.

Float tensors compute in the tensor's float dtype (float32 for TFLite) as TFLM's float kernels do.
Quantized tensors (8/16-bit integers with per-tensor params) follow the TFLM reference kernels bit for
bit; the recipe of each is in its kernel's docstring. Where TFLM's Prepare refuses a quantization (say an
int16 LOGISTIC whose output scale is not 2^-15), the kernel raises UnsupportedOpError, as a model TFLM
cannot run has no reference result. Plain integer tensors (no quant params) are only supported by CLIP.

Input and output share one shape; SOFTMAX works along `axis` (TFLite: the last one).
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)
from ..fixedpoint import gemmlowp as gl
from ..graph import Graph, Op, Tensor
from .elementwise import arithmetic_of, quant_of
from .registry import kernel, out_like


def _unary(op: Op, graph: Graph) -> tuple[Tensor, Tensor, str]:
    tin, tout = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if tin.size != tout.size:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: input {tin.describe()} and output "
                                 f"{tout.describe()} differ in size")
    return tin, tout, arithmetic_of(op, [tin, tout])


def _refuse(op: Op, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"{op.where()} {op.kind}: {why} (TFLite Micro refuses this quantization)")


def _quantized_bound(value: float, scale: float, zero_point: int, qmin: int, qmax: int) -> int:
    """zero_point + roundf(float32(value) / float32(scale)), clamped to [qmin, qmax] (TFLM's relu bounds)."""
    q = gl.round_half_away_float(np.float32(value) / np.float32(scale))
    return int(np.clip(float(q) + zero_point, qmin, qmax))


@kernel("CLIP")
def clip(op: Op, graph: Graph, inputs: list) -> list:
    """Clamp to [min, max] (real values, None = unbounded).

    Quantized (TFLM RELU / RELU6, activations_common.cc): the input is requantized to the output params,
    y = zp_out + MBQM(x - zp_in, QuantizeMultiplier(double s_in / s_out)), then clamped to
    [max(qmin, zp_out + roundf(min / s_out)), min(qmax, zp_out + roundf(max / s_out))]. With equal
    input/output params (what converters emit) the requantization is the identity and this is exactly
    TFLM's RELU6 too; TFLM's RELU6 skips the requantization even when the params differ, which this
    kernel does not copy (it would be wrong arithmetic).
    Plain integers: clamp to [ceil(min), floor(max)].
    """
    x = inputs[0]
    tin, tout, arithmetic = _unary(op, graph)
    lo, hi = op.attrs.get("min"), op.attrs.get("max")
    if arithmetic == "float":
        dt = tout.dtype.np
        y = x.astype(dt, copy=False)
        if lo is not None:
            y = np.maximum(y, dt.type(lo))
        if hi is not None:
            y = np.minimum(y, dt.type(hi))
    elif arithmetic == "integer":
        qmin, qmax = tout.dtype.limits()
        lo_i = qmin if lo is None else max(qmin, int(np.ceil(lo)))
        hi_i = qmax if hi is None else min(qmax, int(np.floor(hi)))
        y = np.clip(x.astype(np.int64), lo_i, hi_i) if lo_i <= hi_i else np.full(x.shape, lo_i)
    else:
        s_in, zp_in = quant_of(op, tin, "input")
        s_out, zp_out = quant_of(op, tout, "output")
        qmin, qmax = tout.dtype.limits()
        m, shift = quantize_multiplier(float(s_in) / float(s_out))
        y = zp_out + multiply_by_quantized_multiplier(wrap_int32(x.astype(np.int64) - zp_in), m, shift)
        q_lo = qmin if lo is None else _quantized_bound(lo, s_out, zp_out, qmin, qmax)
        q_hi = qmax if hi is None else _quantized_bound(hi, s_out, zp_out, qmin, qmax)
        y = np.minimum(np.maximum(y, q_lo), q_hi)
    return [out_like(graph, op.outputs[0], y)]


@kernel("LEAKY_RELU")
def leaky_relu(op: Op, graph: Graph, inputs: list) -> list:
    """x if x >= 0 else alpha * x.

    Float: x > 0 ? x : x * alpha. Quantized (leaky_relu_common.cc, reference leaky_relu.h), with the
    real multipliers computed in float32: identity = s_in / s_out, alpha' = s_in * alpha / s_out;
    y = clamp(zp_out + MBQM(x - zp_in, QM(identity if x - zp_in >= 0 else alpha'))).
    """
    x = inputs[0]
    tin, tout, arithmetic = _unary(op, graph)
    alpha = np.float32(op.attrs["alpha"])
    if arithmetic == "float":
        dt = tout.dtype.np
        xf = x.astype(dt, copy=False)
        return [out_like(graph, op.outputs[0], np.where(xf > 0, xf, xf * dt.type(alpha)))]
    if arithmetic != "quantized":
        raise UnsupportedOpError(f"{op.where()} LEAKY_RELU: plain integer tensors are not supported")
    s_in, zp_in = quant_of(op, tin, "input")
    s_out, zp_out = quant_of(op, tout, "output")
    f32 = np.float32
    m_id, s_id = quantize_multiplier(float(f32(s_in) / f32(s_out)))
    m_alpha, s_alpha = quantize_multiplier(float(f32(s_in) * alpha / f32(s_out)))
    xv = wrap_int32(x.astype(np.int64) - zp_in)
    y = zp_out + np.where(xv >= 0, multiply_by_quantized_multiplier(xv, m_id, s_id),
                          multiply_by_quantized_multiplier(xv, m_alpha, s_alpha))
    return [out_like(graph, op.outputs[0], np.clip(y, *tout.dtype.limits()))]


@kernel("HARD_SWISH")
def hard_swish(op: Op, graph: Graph, inputs: list) -> list:
    """x * relu6(x + 3) / 6.

    Float: in * min(6, max(0, in + 3)) / 6. Quantized: 8-bit only (as TFLM), reference hard_swish.h with
    hard_swish_common.cc's params: the input on a "hires" scale s_in / 128 as int16, an output multiplier
    (hires / s_out) and a "reluish" multiplier (hires / (3 / 32768)), both Q31 rounded to Q15; the
    reluish value in [-1, 1] (saturating shifts) is mapped to [0, 1] and multiplied in (no rounding).
    """
    x = inputs[0]
    tin, tout, arithmetic = _unary(op, graph)
    if arithmetic == "float":
        dt = tout.dtype.np
        xf = x.astype(dt, copy=False)
        relu6 = np.minimum(dt.type(6), np.maximum(dt.type(0), xf + dt.type(3)))
        return [out_like(graph, op.outputs[0], xf * relu6 / dt.type(6))]
    if arithmetic != "quantized" or tin.dtype.itemsize != 1 or tout.dtype.itemsize != 1:
        raise UnsupportedOpError(f"{op.where()} HARD_SWISH: only float and 8-bit quantized tensors are "
                                 f"supported (as in TFLite Micro), got {tin.describe()}")
    s_in, zp_in = quant_of(op, tin, "input")
    s_out, zp_out = quant_of(op, tout, "output")
    f32 = np.float32
    hires_scale = f32(1.0 / 128.0) * f32(s_in)
    out_m32, out_exp = quantize_multiplier(float(hires_scale / f32(s_out)))
    relu_m32, relu_exp = quantize_multiplier(float(hires_scale / (f32(3.0) / f32(32768.0))))
    if out_exp > 0:
        raise _refuse(op, f"output multiplier {float(hires_scale / f32(s_out)):.6g} must be below 1")
    out_m = gl.downscale_int32_to_int16_multiplier(out_m32)
    relu_m = gl.downscale_int32_to_int16_multiplier(relu_m32)

    hires = (x.astype(np.int64) - zp_in) * 128                  # fits int16 for 8-bit inputs
    preshift_out = gl.saturating_rounding_doubling_high_mul_int16(hires, out_m)
    reluish = hires
    if relu_exp > 0:
        # All but the last bit of left shift before the multiply, the last one after it: any saturation
        # that matters then happens in that final shift.
        reluish = gl.saturating_left_shift_int16(reluish, relu_exp - 1)
    reluish = gl.saturating_rounding_doubling_high_mul_int16(reluish, relu_m)
    if relu_exp > 0:
        reluish = gl.saturating_left_shift_int16(reluish, 1)
    if relu_exp < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1                        # [-1, 1] -> [0, 1]
    pre = gl.saturating_doubling_high_mul_int16(reluish, preshift_out)
    y = gl.wrap_int16(rounding_divide_by_pot(pre, -out_exp) + zp_out)
    return [out_like(graph, op.outputs[0], np.clip(y, *tout.dtype.limits()))]


def _int8_sigmoid_params(s_in: float) -> tuple[int, int, int]:
    """TFLM int8 LOGISTIC/TANH Prepare: (input_multiplier, input_left_shift, input_range_radius) for an
    input in Q4.27: real multiplier s_in * 2^27, frexp'd."""
    m, left_shift = gl.input_multiplier_from_frexp(float(s_in) * float(1 << 27))
    return m, left_shift, gl.calculate_input_radius(4, left_shift, 31)


def _int16_sigmoid_params(op: Op, s_in: float, s_out: float, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """TFLM int16 LOGISTIC/TANH Prepare: (input_multiplier, input_left_shift) taking the input to the
    sigmoid table's scale 1 / (3 * 4096), then folded as the kernel does for the power-of-two case."""
    is_pot, log2_in = gl.checked_log2(s_in)
    left_shift = 12 + log2_in
    if is_pot and left_shift in pot_shifts:
        multiplier, left_shift = 3 << left_shift, 0
    else:
        real = float(s_in) * 4096.0 * 3.0
        left_shift = 0
        while real <= 32767.0 / 2.0 and left_shift <= 30:
            left_shift += 1
            real *= 2.0
        multiplier = int(real)
    out_pot, log2_out = gl.checked_log2(s_out)
    if not out_pot or log2_out != -15:
        raise _refuse(op, f"int16 output scale {s_out:.6g} must be 2^-15")
    return multiplier, left_shift


def _sigmoid_int16_input(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return wrap_int32(x.astype(np.int64) * multiplier + rounding) >> left_shift


def _logistic_int16(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """reference integer_ops/logistic.h, int16: table lookup on |x| >> 9 with 9-bit interpolation."""
    v = _sigmoid_int16_input(x, multiplier, left_shift)
    a = np.abs(v)
    uh = a >> 9
    idx = np.minimum(uh, 254)
    ua, ub = gl.SIGMOID_TABLE_UINT16[idx], gl.SIGMOID_TABLE_UINT16[idx + 1]
    result = np.where(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    result = np.where(v >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1)
    return gl.wrap_int16(result >> 10)


def _tanh_int16(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    """reference integer_ops/tanh.h, int16: the sigmoid table on |x| >> 8 (tanh x = 2 sigmoid 2x - 1)."""
    v = _sigmoid_int16_input(x, multiplier, left_shift)
    a = np.abs(v)
    uh = a >> 8
    idx = np.minimum(uh, 254)
    ua, ub = gl.SIGMOID_TABLE_UINT16[idx], gl.SIGMOID_TABLE_UINT16[idx + 1]
    result = np.where(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return gl.wrap_int16(result >> 8)


@kernel("LOGISTIC", "TANH")
def sigmoid_like(op: Op, graph: Graph, inputs: list) -> list:
    """LOGISTIC 1 / (1 + exp(-x)) and TANH tanh(x).

    Float: TFLM's logistic (1 beyond 16.619, exp(x) below -9, else 1 / (1 + exp(-x))) and tanh.
    int8 (logistic_common.cc / tanh.cc, integer_ops/logistic.h / tanh.h): |x - zp| at or past the input
    radius saturates; otherwise x goes to Q4.27 with MBQM(x - zp, input_multiplier, input_left_shift),
    through gemmlowp's logistic / tanh to Q0.31, and down to 8 bits: logistic
    RDBPOT(., 23) - 128 (output zero point -128 required), tanh RDBPOT(., 24) (TFLM assumes the output
    params 1/128, 0 and ignores the actual ones, so does this kernel).
    int16 (zero points 0, output scale 2^-15 required): the shared sigmoid table with interpolation,
    input rescaled to 1 / (3 * 4096) per step.
    """
    x = inputs[0]
    tin, tout, arithmetic = _unary(op, graph)
    is_logistic = op.kind == "LOGISTIC"
    if arithmetic == "float":
        dt = tout.dtype.np
        xf = x.astype(dt, copy=False)
        if not is_logistic:
            return [out_like(graph, op.outputs[0], np.tanh(xf))]
        with np.errstate(over="ignore"):
            y = np.where(xf > dt.type(16.619047164916992188), dt.type(1),
                         np.where(xf < dt.type(-9), np.exp(xf), dt.type(1) / (dt.type(1) + np.exp(-xf))))
        return [out_like(graph, op.outputs[0], y)]
    if arithmetic != "quantized" or tin.dtype != tout.dtype or tin.dtype.value not in ("int8", "int16"):
        raise UnsupportedOpError(f"{op.where()} {op.kind}: needs float, or int8 / int16 quantized tensors of "
                                 f"one type, got {tin.describe()} -> {tout.describe()}")
    s_in, zp_in = quant_of(op, tin, "input")
    s_out, zp_out = quant_of(op, tout, "output")
    if tin.dtype.itemsize == 1:
        if is_logistic and zp_out != -128:
            raise _refuse(op, f"int8 LOGISTIC output zero point must be -128, got {zp_out}")
        m, left_shift, radius = _int8_sigmoid_params(s_in)
        xv = x.astype(np.int64) - zp_in
        inner = np.clip(xv, -radius + 1, radius - 1)      # values outside are overwritten below
        q4 = multiply_by_quantized_multiplier(inner, m, left_shift)
        if is_logistic:
            y = rounding_divide_by_pot(gl.logistic(q4, 4), 23) - 128
        else:
            y = rounding_divide_by_pot(gl.tanh(q4, 4), 24)
        y = np.where(xv <= -radius, -128, np.where(xv >= radius, 127, np.clip(y, -128, 127)))
        return [out_like(graph, op.outputs[0], y)]
    if zp_in != 0 or zp_out != 0:
        raise _refuse(op, f"16-bit {op.kind} needs zero points 0, got {zp_in} -> {zp_out}")
    multiplier, left_shift = _int16_sigmoid_params(op, s_in, s_out, (0,) if is_logistic else (0, 1))
    fn = _logistic_int16 if is_logistic else _tanh_int16
    return [out_like(graph, op.outputs[0], fn(x, multiplier, left_shift))]


def _softmax_int8(x: np.ndarray, s_in: float, beta: float, out_bits: int) -> np.ndarray:
    """reference softmax.h, 8-bit input, rows along the last axis; returns values in the int8/int16
    output range (zero point -2^(bits-1), scale 2^-bits)."""
    m, left_shift = gl.preprocess_softmax_scaling(beta, s_in, 5)
    diff_min = -gl.calculate_input_radius(5, left_shift, 31)
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), m, left_shift)   # Q5.26
    exps = gl.exp_on_negative_values(scaled, 5)                                          # Q0.31
    sum_of_exps = wrap_int32(np.sum(np.where(valid, gl.rescale(exps, 0, 12), 0), axis=-1, keepdims=True))
    reciprocal, num_bits_over_unit = gl.get_reciprocal(sum_of_exps, 12)
    exponent = num_bits_over_unit + 31 - out_bits
    assert np.all((0 <= exponent) & (exponent <= 31)), exponent
    out_min = -(1 << (out_bits - 1))
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(reciprocal, exps), exponent) + out_min
    return np.where(valid, np.clip(y, out_min, -out_min - 1), out_min)


@functools.lru_cache(maxsize=1)
def _int16_softmax_luts() -> tuple[np.ndarray, np.ndarray]:
    """TFLM's int16 softmax tables: exp on [-10, 0] and 1 / (1 + x) on [0, 1], both onto [-1, 1]."""
    span = np.float32(65535)
    exp_lut = gl.lut_populate_int16(np.float32(10.0) / span, 32767, np.float32(2.0) / span, 0, gl.expf)
    reciprocal_lut = gl.lut_populate_int16(np.float32(1.0) / span, -32768, np.float32(2.0) / span, 0,
                                           lambda v: np.float32(1.0) / (np.float32(1.0) + v))
    return exp_lut, reciprocal_lut


def _softmax_int16(x: np.ndarray, s_in: float, beta: float) -> np.ndarray:
    """reference softmax.h SoftmaxInt16: exp and reciprocal from interpolated tables; output Q0.15."""
    exp_lut, reciprocal_lut = _int16_softmax_luts()
    m, shift = quantize_multiplier(float(s_in) * float(np.float32(beta)) / (10.0 / 65535.0))
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, m, shift)
    exps = gl.lut_lookup_int16(np.clip(scaled + 32767, -32768, 32767), exp_lut)         # Q0.15
    sum_of_exps = wrap_int32(np.sum(exps, axis=-1, keepdims=True))
    headroom_plus_one = gl.count_leading_zeros_u32(sum_of_exps)
    shifted_sum = ((sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    reciprocal = gl.lut_lookup_int16(np.clip(shifted_sum - ((1 << 15) + (1 << 16)), -32768, 32767),
                                     reciprocal_lut)
    right_shift = 31 - headroom_plus_one
    y = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(y, 0, 32767)


def _softmax_quantized(op: Op, x: np.ndarray, tin: Tensor, tout: Tensor, beta: float) -> np.ndarray:
    """The TFLM quantized softmax for x with rows along the last axis, after softmax_common.cc's checks."""
    s_in, zp_in = quant_of(op, tin, "input")
    s_out, zp_out = quant_of(op, tout, "output")
    types = (tin.dtype.value, tout.dtype.value)
    if types == ("int8", "int8"):
        if np.float32(s_out) != np.float32(1 / 256) or zp_out != -128:
            raise _refuse(op, f"int8 softmax output must have scale 1/256 and zero point -128, got "
                              f"{tout.describe()}")
        return _softmax_int8(x, s_in, beta, 8)
    if types == ("int8", "int16"):
        if abs(s_out - 1 / 65536) > 1e-3 / 65536 or zp_out != -32768:
            raise _refuse(op, f"int16 softmax output must have scale 1/65536 and zero point -32768, got "
                              f"{tout.describe()}")
        return _softmax_int8(x, s_in, beta, 16)
    if types == ("int16", "int16"):
        if zp_in != 0 or zp_out != 0 or abs(s_out - 1 / 32768) > 1e-3 / 32768:
            raise _refuse(op, f"int16 softmax needs zero points 0 and output scale 1/32768, got "
                              f"{tin.describe()} -> {tout.describe()}")
        return _softmax_int16(x, s_in, beta)
    raise _refuse(op, f"no quantized softmax from {tin.describe()} to {tout.describe()}")


@kernel("SOFTMAX")
def softmax(op: Op, graph: Graph, inputs: list) -> list:
    """softmax(beta * x) along `axis`.

    Float: exp((x - max) * beta) / sum, in the tensor's float dtype. Quantized (softmax_common.cc,
    reference softmax.h): int8 -> int8 (output 1/256, -128) and int8 -> int16 (output 1/65536, -32768)
    with gemmlowp's exp on Q5.26 differences and a Q12.19 sum (differences below diff_min give 0);
    int16 -> int16 (zero points 0, output 1/32768) with TFLM's exp and 1/(1+x) lookup tables.
    """
    x = inputs[0]
    tin, tout, arithmetic = _unary(op, graph)
    beta = float(np.float32(op.attrs.get("beta", 1.0)))
    axis = int(op.attrs.get("axis", -1))
    if not -x.ndim <= axis < x.ndim:
        raise UnsupportedOpError(f"{op.where()} SOFTMAX: axis {axis} is out of range for {tin.describe()}")
    x = np.moveaxis(x, axis, -1)
    if arithmetic == "float":
        dt = tout.dtype.np
        xf = x.astype(dt, copy=False)
        e = np.exp((xf - xf.max(axis=-1, keepdims=True)) * dt.type(beta))
        y = e / e.sum(axis=-1, keepdims=True, dtype=dt)
    elif arithmetic == "quantized":
        y = _softmax_quantized(op, x, tin, tout, beta)
    else:
        raise UnsupportedOpError(f"{op.where()} SOFTMAX: plain integer tensors are not supported")
    return [out_like(graph, op.outputs[0], np.moveaxis(y, -1, axis).reshape(tout.shape))]
