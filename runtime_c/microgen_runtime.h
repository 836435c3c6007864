/*
 * microgen_runtime.h: the small helpers generated kernels call.
 *
 * Ships with every library microgen generates. C99, no libc beyond <stdint.h>. Every function is
 * exact: the integer requantization matches TensorFlow Lite Micro's reference kernels bit for bit
 * (gemmlowp double rounding).
 */
#ifndef MICROGEN_RUNTIME_H
#define MICROGEN_RUNTIME_H

#include <stdint.h>

#if defined(__GNUC__)
#define MG_INLINE static inline __attribute__((always_inline))
#else
#define MG_INLINE static inline
#endif

MG_INLINE int32_t mg_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
MG_INLINE int32_t mg_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
MG_INLINE int64_t mg_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
MG_INLINE int64_t mg_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
MG_INLINE uint32_t mg_min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
MG_INLINE uint32_t mg_max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
MG_INLINE float mg_min_f32(float a, float b) { return a < b ? a : b; }
MG_INLINE float mg_max_f32(float a, float b) { return a > b ? a : b; }

/* gemmlowp SaturatingRoundingDoublingHighMul: (a*b + nudge) / 2^31, truncating toward zero. */
MG_INLINE int32_t mg_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : (INT64_C(1) - (INT64_C(1) << 30));
    return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero. */
MG_INLINE int32_t mg_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((INT64_C(1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier (double rounding): x * multiplier * 2^(shift - 31). */
MG_INLINE int32_t mg_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* Shift as unsigned: a left shift of a negative int is undefined in C99; TFLM wraps the same way. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mg_rounding_divide_by_pot(mg_srdhm(shifted, multiplier), right);
}

/* TFLM MultiplyByQuantizedMultiplier for int64 accumulators (the 16x8 kernels): the multiplier is rounded
 * to 16 bits, then one rounding shift. x must fit in 48 bits. */
MG_INLINE int32_t mg_requantize_i64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t round = INT64_C(1) << (total_shift - 1);
    return (int32_t)((x * reduced + round) >> total_shift);
}

#endif /* MICROGEN_RUNTIME_H */
