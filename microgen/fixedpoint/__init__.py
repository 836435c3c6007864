"""The project's one home for fixed-point integer math (TFLM-exact).

- requant.py: QuantizeMultiplier, SaturatingRoundingDoublingHighMul, RoundingDivideByPOT,
  MultiplyByQuantizedMultiplier (int32 and int64 forms), fused-activation ranges.
- gemmlowp.py: the fixed-point transcendental helpers the TFLM reference kernels use
  (exp on negative values, logistic, tanh, 1/(1+x), ...), vectorised.
"""

from .requant import (
    INT32_MAX,
    INT32_MIN,
    activation_range_float,
    activation_range_quantized,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    np_round_half_away,
    quantize_multiplier,
    quantize_multipliers,
    round_half_away,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

__all__ = [
    "INT32_MAX", "INT32_MIN", "activation_range_float", "activation_range_quantized",
    "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_int64", "np_round_half_away",
    "quantize_multiplier", "quantize_multipliers", "round_half_away", "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul", "wrap_int32",
]

from .gemmlowp import (  # noqa: E402
    INT16_MAX,
    INT16_MIN,
    SIGMOID_TABLE_UINT16,
    calculate_input_radius,
    checked_log2,
    count_leading_zeros_u32,
    downscale_int32_to_int16_multiplier,
    exp_on_negative_values,
    get_reciprocal,
    logistic,
    lut_lookup_int16,
    lut_populate_int16,
    one_minus_x_over_one_plus_x_for_x_in_0_1,
    one_over_one_plus_x_for_x_in_0_1,
    preprocess_softmax_scaling,
    rescale,
    rounding_half_sum,
    saturating_rounding_doubling_high_mul_int16,
    saturating_rounding_multiply_by_pot,
    tanh,
    wrap_int16,
)

__all__ += [
    "INT16_MAX", "INT16_MIN", "SIGMOID_TABLE_UINT16", "calculate_input_radius", "checked_log2",
    "count_leading_zeros_u32", "downscale_int32_to_int16_multiplier", "exp_on_negative_values",
    "get_reciprocal", "logistic", "lut_lookup_int16", "lut_populate_int16",
    "one_minus_x_over_one_plus_x_for_x_in_0_1", "one_over_one_plus_x_for_x_in_0_1",
    "preprocess_softmax_scaling", "rescale", "rounding_half_sum", "saturating_rounding_doubling_high_mul_int16",
    "saturating_rounding_multiply_by_pot", "tanh", "wrap_int16",
]
