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
