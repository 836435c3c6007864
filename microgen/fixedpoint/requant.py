"""Integer requantization exactly as the TFLite Micro reference kernels do it.

The single source of truth for QuantizeMultiplier and the two roundings: the reference executor uses
the vectorised functions below, and the C emitter uses `quantize_multiplier` to print per-channel
constants, so the generated code and the oracle can never drift apart.

All array functions take and return int64 numpy arrays holding int32 values (int64 so intermediate
products never overflow in numpy); they broadcast like numpy.

TFLM's default build uses *double* rounding (TFLITE_SINGLE_ROUNDING undefined):
    MultiplyByQuantizedMultiplier(x, m, s) =
        RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(s, 0), m), max(-s, 0))
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(x: float) -> int:
    """C's std::round / TfLiteRound on one value: halves go away from zero (exact, see below)."""
    return int(np_round_half_away(np.float64(x)))


def np_round_half_away(x: np.ndarray) -> np.ndarray:
    """C's std::round (TfLiteRound) on a float array, exactly: halves go away from zero.

    Unlike floor(|x| + 0.5), which the addition's own rounding breaks (float32 0.49999997 + 0.5 rounds
    to 1.0, and odd integers past 2^23 gain 1), this splits off the fraction, which is exact.
    Keeps the input's float dtype (numpy's own np.round rounds half to even).
    """
    a = np.abs(x)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= 0.5), x)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real_multiplier ~= m * 2^(shift - 31), m a Q31 value in [2^30, 2^31).

    Returns (m, shift); shift > 0 is a left shift. Multipliers so small that shift < -31 flush to
    (0, 0), as TFLM does.
    """
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    assert q_fixed <= INT32_MAX
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(real_multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`quantize_multiplier` over an array; returns (multipliers, shifts) as int64 arrays."""
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(real_multipliers)]
    m = np.array([p[0] for p in pairs], dtype=np.int64).reshape(np.shape(real_multipliers))
    s = np.array([p[1] for p in pairs], dtype=np.int64).reshape(np.shape(real_multipliers))
    return m, s


def quantize_multiplier_smaller_than_one(real_multiplier: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp: asserts 0 < x < 1; same encoding."""
    assert 0.0 < real_multiplier < 1.0, real_multiplier
    return quantize_multiplier(real_multiplier)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to the int32 range (what C does on overflow in practice)."""
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SRDHM: (a*b + nudge) / 2^31 truncated toward zero, nudge = 2^30 (1 - 2^30 if a*b < 0);
    INT32_MIN * INT32_MIN saturates to INT32_MAX."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C integer division truncates toward zero; numpy's >> floors, so shift the magnitude.
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    overflow = (a == b) & (a == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, halves away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int,
                                     rounding: str = "double") -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier for int32 x (the int8 kernels' requantization).

    rounding="double" is TFLM's default build; "single" is TFLITE_SINGLE_ROUNDING /
    CMSIS_NN_USE_SINGLE_ROUNDING: (x*m + 2^(30-shift)) >> (31-shift).
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total_shift = 31 - shift
        return (x * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift
    assert rounding == "double", rounding
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(wrap_int32(x << left), multiplier), right)


def multiply_by_quantized_multiplier_int64(x: np.ndarray, multiplier: np.ndarray | int,
                                           shift: np.ndarray | int) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier(int64_t x, ...) used by the 16x8 kernels (int64 accumulators).

    The multiplier is first reduced to 16 bits (rounded), then one rounding shift:
    (x * reduced + 2^(total-1)) >> total with total = 15 - shift. x must fit in 48 bits.
    """
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    return (x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift


def activation_range_quantized(activation: str, scale: float, zero_point: int,
                               qmin: int, qmax: int) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized: the clamp bounds of a fused activation, in the output's
    quantized domain. `f / scale` is computed in float32 as TFLM does."""
    def quantize(f: float) -> int:
        return zero_point + round_half_away(float(np.float32(f) / np.float32(scale)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"unknown fused activation {activation!r}")


def activation_range_float(activation: str) -> tuple[float, float]:
    """The clamp bounds of a fused activation on float outputs."""
    return {
        "NONE": (-np.inf, np.inf),
        "RELU": (0.0, np.inf),
        "RELU6": (0.0, 6.0),
        "RELU_N1_TO_1": (-1.0, 1.0),
    }[activation]
