"""gemmlowp fixed-point math and the TFLM quantization helpers its callers need, vectorised.

Exactly what gemmlowp's fixedpoint.h and TFLM's common.h / quantization_util.h compute, for the TFLM
reference kernels of LOGISTIC, TANH, SOFTMAX and HARD_SWISH (and what the C emitter must reproduce).

Conventions (as in requant.py): array functions take and return int64 numpy arrays holding int32 (or,
for the `*_int16` functions, int16) values and broadcast like numpy. A gemmlowp `FixedPoint<int32_t, m>`
is represented by its raw int32 value; `integer_bits` (m) is passed alongside where it matters, the raw
value then means raw / 2^(31 - m). Plain (non-saturating) gemmlowp additions wrap to int32 here, which
is what C compilers do in practice with the undefined overflow.

SaturatingRoundingDoublingHighMul, RoundingDivideByPOT and MultiplyByQuantizedMultiplier live in
requant.py (MultiplyByQuantizedMultiplierGreaterThanOne / SmallerThanOneExp are that function with a
shift >= 0 / <= 0).
"""

from __future__ import annotations

import math

import numpy as np

from .requant import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
    wrap_int32,
)

INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int16(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int16 (C's conversion of an out-of-range int to int16_t)."""
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by 2^bits: truncates toward zero (numpy's >> floors)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


# -- 16-bit primitives (HARD_SWISH) -------------------------------------------------------------------

def saturating_rounding_doubling_high_mul_int16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SRDHM on int16: (a*b + nudge) / 2^15 truncated, nudge 2^14 (1 - 2^14 if a*b < 0);
    -32768 * -32768 saturates to 32767."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    high = _trunc_div_pow2(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15)
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_doubling_high_mul_int16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite's SaturatingDoublingHighMul (ARM SQDMULH): a*b / 2^15 truncated toward zero, no rounding
    nudge; -32768 * -32768 saturates to 32767."""
    a, b = _i64(a), _i64(b)
    high = _trunc_div_pow2(a * b, 15)
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, wrap_int16(high))


def saturating_left_shift_int16(x: np.ndarray, amount: int) -> np.ndarray:
    """TFLite's SaturatingLeftShift on int16: x * 2^amount clamped to the int16 range."""
    return np.clip(_i64(x) << amount, INT16_MIN, INT16_MAX)


def downscale_int32_to_int16_multiplier(multiplier: int) -> int:
    """TFLM DownScaleInt32ToInt16Multiplier: round a Q31 multiplier (>= 0) to Q15."""
    assert multiplier >= 0, multiplier
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


# -- gemmlowp FixedPoint<int32_t> operations ----------------------------------------------------------

def saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32: a saturating left shift for
    exponent > 0, RoundingDivideByPOT(x, -exponent) for exponent < 0."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rescale(x: np.ndarray, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<int32_t, src>): change the number of integer bits, saturating
    and rounding."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp RoundingHalfSum on int32: (a + b + sign(a + b)) / 2, C division (toward zero)."""
    total = _i64(a) + _i64(b)
    return _trunc_div_pow2(total + np.where(total >= 0, 1, -1), 1)


def fixed_one(integer_bits: int) -> int:
    """FixedPoint<int32_t, m>::One(): 2^(31-m), or INT32_MAX for m = 0 (1.0 is not representable)."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


# Q0.31 constants of fixedpoint.h.
_EXP_MINUS_ONE_EIGHTH = 1895147668          # exp(-1/8)
_ONE_THIRD = 715827883                      # 1/3
_FORTY_EIGHT_OVER_17 = 1515870810           # 48/17 in Q2.29
_NEG_THIRTY_TWO_OVER_17 = -1010580540       # -32/17 in Q2.29
# exp(-2^k) in Q0.31, for the barrel shifter of exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for Q0.31 a in [-1/4, 0): a 4th-order Taylor expansion around -1/8. Returns Q0.31."""
    x = wrap_int32(_i64(a) + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return wrap_int32(_EXP_MINUS_ONE_EIGHTH + srdhm(_EXP_MINUS_ONE_EIGHTH, wrap_int32(x + poly)))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) for a <= 0 given as FixedPoint<int32_t, integer_bits>.
    Returns Q0.31 (exp(0) = INT32_MAX)."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        # Inputs below -32 flush to 0 (exp(-32) is below the Q0.31 resolution).
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_q2_29(half_denominator: np.ndarray) -> np.ndarray:
    """1 / half_denominator in Q2.29 for Q0.31 half_denominator in [1/2, 1): 3 Newton-Raphson steps from
    48/17 - 32/17 * d, as in fixedpoint.h."""
    x = wrap_int32(_FORTY_EIGHT_OVER_17 + srdhm(half_denominator, _NEG_THIRTY_TWO_OVER_17))
    one_q2_29 = fixed_one(2)
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap_int32(one_q2_29 - half_denominator_times_x)
        # x * one_minus is Q4.27; Rescale<2> brings it back to Q2.29.
        x = wrap_int32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for Q0.31 a in [0, 1). Returns Q0.31."""
    x = _newton_reciprocal_q2_29(rounding_half_sum(a, INT32_MAX))
    # ExactMulByPot<-1> reinterprets Q2.29 as Q1.30; Rescale<0> then shifts left by 1, saturating.
    return rescale(x, 1, 0)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: (1 - a) / (1 + a) for Q0.31 a in [0, 1)."""
    x = _newton_reciprocal_q2_29(rounding_half_sum(a, INT32_MAX))
    return rescale(wrap_int32(x - fixed_one(2)), 2, 0)


def logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1 / (1 + exp(-a)) for FixedPoint<int32_t, integer_bits> a. Returns Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_input = wrap_int32(np.where(positive, a, -a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits))
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh for FixedPoint<int32_t, integer_bits> a. Returns Q0.31."""
    a = _i64(a)
    negative = a < 0
    n = wrap_int32(np.where(negative, a, -a))          # -|a|
    # ExactMulByPot<1>: the same raw value read with one more integer bit is 2n.
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    """CountLeadingZeros of x taken as uint32 (32 for 0)."""
    u = _i64(x) & 0xFFFFFFFF
    bit_length = sum(((u >> i) != 0).astype(np.int64) for i in range(32))
    return 32 - bit_length


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: for a positive FixedPoint<int32_t, x_integer_digits> x, returns
    (1 / x normalised, as Q0.31 1/(1 + frac)) and num_bits_over_unit (the power of two taken out)."""
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(wrap_int32(shifted_sum_minus_one)), num_bits_over_unit


# -- TFLM quantization_util helpers -------------------------------------------------------------------

def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius: the largest |input| whose rescaled value cannot overflow (floor)."""
    exponent = total_signed_bits - input_integer_bits - input_left_shift
    radius = ((1 << input_integer_bits) - 1) * 2.0 ** exponent
    return int(math.floor(radius))


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLM CheckedLog2 (float32 math): (x is a power of two within 1e-3 in log2, rounded log2)."""
    logf = lambda v: np.float32(math.log(float(np.float32(v))))      # correctly rounded, as glibc's logf
    log2 = logf(x) * (np.float32(1.0) / logf(2.0))
    rounded = round_half_away(float(log2))
    return bool(abs(float(np.float32(log2 - np.float32(rounded)))) < 1e-3), rounded


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int]:
    """TFLM PreprocessSoftmaxScaling: QuantizeMultiplierGreaterThanOne of
    min(beta * input_scale * 2^(31 - input_integer_bits), 2^31 - 1), in double. Returns (m, left_shift)."""
    real = min(float(beta) * float(input_scale) * float(1 << (31 - input_integer_bits)), float((1 << 31) - 1))
    return quantize_multiplier(real)


def input_multiplier_from_frexp(real: float) -> tuple[int, int]:
    """What TFLM's int8 LOGISTIC/TANH Prepare does: q, shift = frexp(real); round(q * 2^31) cast to
    int32 (without QuantizeMultiplier's 2^31 fix-up, so that case wraps as the C cast does)."""
    q, shift = math.frexp(real)
    return int(wrap_int32(round_half_away(q * (1 << 31)))), shift


# -- int16 lookup tables ------------------------------------------------------------------------------

# TFLM's sigmoid_table_uint16: sigmoid(i / 24) in Q0.16 (256 entries), shared by the int16 LOGISTIC
# and TANH kernels (tanh(x) = 2 sigmoid(2x) - 1).
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064,
    42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464,
    50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503,
    56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666,
    62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968,
    64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687,
    64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258, 65269, 65280, 65291,
    65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367, 65374, 65381, 65387, 65393, 65399, 65404,
    65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525, 65525,
    65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530,
    65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65535], dtype=np.int64)
assert SIGMOID_TABLE_UINT16.shape == (256,)


def round_half_away_float(x: np.ndarray) -> np.ndarray:
    """TfLiteRound / roundf on a float array, keeping its dtype: halves away from zero, exactly (the
    fraction is split off, so float32 0.49999997 does not round up as floor(x + 0.5) would)."""
    a = np.abs(x)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= 0.5).astype(x.dtype), x)


def expf(x: np.ndarray) -> np.ndarray:
    """float32 exp as C's expf computes it: the float64 exp rounded to float32 (glibc's expf is within
    0.502 ulp, so this is its value except in astronomically rare ties)."""
    return np.exp(np.asarray(x, dtype=np.float64)).astype(np.float32)


def lut_populate_int16(input_scale: float, input_zero_point: int, output_scale: float,
                       output_zero_point: int, transform) -> np.ndarray:
    """TFLM LUTPopulate<int16_t> (float32 math): a 513-entry table of transform over the input range,
    512 samples with the midpoint interpolation error halved, plus the end point. `transform` maps a
    float32 array to float32. Returns int64 values in the int16 range."""
    f32 = np.float32
    input_scale, output_scale = f32(input_scale), f32(output_scale)
    input_min = input_scale * f32(INT16_MIN - input_zero_point)
    input_max = input_scale * f32(INT16_MAX - input_zero_point)
    output_min = output_scale * f32(INT16_MIN - output_zero_point)
    output_max = output_scale * f32(INT16_MAX - output_zero_point)
    step = (input_max - input_min) / f32(512)
    half_step = step / f32(2)
    scaling_inv = f32(65536) / (output_max - output_min)
    i = np.arange(512, dtype=np.float32)
    start = input_min + i * step
    val = transform(start)
    val_mid = transform(start + half_step)
    val_next = transform(input_min + (i + f32(1)) * step)
    sample = round_half_away_float(val * scaling_inv)
    mid_interp = round_half_away_float((val_next * scaling_inv + sample) / f32(2))
    mid_err = mid_interp - round_half_away_float(val_mid * scaling_inv)
    bias = round_half_away_float(mid_err / f32(2))
    table = np.empty(513, dtype=np.float32)
    table[:512] = np.clip(sample - bias, INT16_MIN, INT16_MAX)
    last = transform(np.array([input_max], dtype=np.float32))[0]
    table[512] = np.clip(round_half_away_float(np.float32(last * scaling_inv)), INT16_MIN, INT16_MAX)
    return table.astype(np.int64)


def lut_lookup_int16(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLM LUTLookup(int16, 513-entry lut): the entry for the top 9 bits, linearly interpolated with
    the low 7 bits (rounded)."""
    value = _i64(value)
    index = 256 + (value >> 7)
    offset = value & 0x7F
    base = lut[index]
    slope = wrap_int16(lut[index + 1] - base)
    delta = (slope * offset + 64) >> 7
    return wrap_int16(base + delta)
