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

/* ==== activations (SOFTMAX, LOGISTIC, TANH): gemmlowp fixed point and float exp/tanh ============== */

/* A uint32 bit pattern read as int32 (two's complement), without implementation-defined conversion. */
MG_INLINE int32_t mg_u32_to_i32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

/* a + b and a - b wrapping to int32, as gemmlowp's plain fixed-point additions do in practice. */
MG_INLINE int32_t mg_wrap_add(int32_t a, int32_t b) { return mg_u32_to_i32((uint32_t)a + (uint32_t)b); }
MG_INLINE int32_t mg_wrap_sub(int32_t a, int32_t b) { return mg_u32_to_i32((uint32_t)a - (uint32_t)b); }

/* Number of leading zero bits of x (32 for 0): TFLM CountLeadingZeros. */
MG_INLINE int32_t mg_clz_u32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    if ((x >> 16) == 0u) { n += 16; x <<= 16; }
    if ((x >> 24) == 0u) { n += 8; x <<= 8; }
    if ((x >> 28) == 0u) { n += 4; x <<= 4; }
    if ((x >> 30) == 0u) { n += 2; x <<= 2; }
    if ((x >> 31) == 0u) { n += 1; }
    return n;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for 1 <= exponent <= 30: x * 2^exponent, saturated. */
MG_INLINE int32_t mg_saturating_shl(int32_t x, int32_t exponent)
{
    const int32_t threshold = (INT32_C(1) << (31 - exponent)) - 1;
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return x * (INT32_C(1) << exponent); /* |x| <= threshold: no overflow */
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for Q0.31 a in [0, 1), as Q0.31. Newton-Raphson
 * on the half denominator (Q0.31 in [1/2, 1)) in Q2.29, from 48/17 - 32/17 d, three steps. */
MG_INLINE int32_t mg_one_over_one_plus_x(int32_t a)
{
    const int64_t total = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((total + (total >= 0 ? 1 : -1)) / 2);
    int32_t x = mg_wrap_add(1515870810, mg_srdhm(half_denominator, -1010580540));
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = mg_wrap_sub(INT32_C(1) << 29, mg_srdhm(half_denominator, x));
        x = mg_wrap_add(x, mg_saturating_shl(mg_srdhm(x, one_minus), 2));
    }
    return mg_saturating_shl(x, 1);
}

/* TFLM GetReciprocal without the exponent: x > 0 shifted left by headroom_plus_one = clz(x) is
 * 2^32 (1 + f) / 2; returns 1 / (1 + f) in Q0.31. The caller's exponent is x_integer_digits - clz(x). */
MG_INLINE int32_t mg_get_reciprocal(int32_t x, int32_t headroom_plus_one)
{
    const uint32_t shifted = headroom_plus_one < 32 ? (uint32_t)x << headroom_plus_one : 0u;
    return mg_one_over_one_plus_x(mg_u32_to_i32(shifted - 0x80000000u));
}

/* 2^n as a float, for -126 <= n <= 127 (built from its bits). */
MG_INLINE float mg_pow2_f32(int32_t n)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)(n + 127) << 23;
    return v.f;
}

/* expf without libm: n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two, Cody-Waite), Cephes' degree-6
 * polynomial for exp(r) on |r| <= ln(2) / 2, scaled by 2^n. Within 2 ulp of the exact value. */
MG_INLINE float mg_expf(float x)
{
    float t, r, p;
    int32_t n;
    if (x != x) {
        return x; /* NaN */
    }
    if (x > 88.72283935546875f) {
        return mg_pow2_f32(127) * 2.0f; /* +inf */
    }
    if (x < -103.972084045410156f) {
        return 0.0f;
    }
    t = x * 1.44269504088896341f;
    n = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
    r = x - (float)n * 0.693359375f;
    r = r - (float)n * -2.12194440e-4f;
    p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r
         + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    if (n > 127) {
        return p * 2.0f * mg_pow2_f32(n - 1);
    }
    if (n < -126) {
        /* subnormal result: two exact power-of-two scalings, the last one rounds once */
        return p * mg_pow2_f32(n + 100) * mg_pow2_f32(-100);
    }
    return p * mg_pow2_f32(n);
}

/* tanhf without libm: Cephes' odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1); 1 past 9. */
MG_INLINE float mg_tanhf(float x)
{
    const float a = x < 0.0f ? -x : x;
    float y;
    if (a < 0.625f) {
        const float z = x * x;
        return ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                 + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    }
    if (a > 9.0f) {
        y = 1.0f;
    } else {
        y = 1.0f - 2.0f / (mg_expf(2.0f * a) + 1.0f);
    }
    return x < 0.0f ? -y : y;
}

#endif /* MICROGEN_RUNTIME_H */
