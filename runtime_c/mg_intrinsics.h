/*
 * mg_intrinsics.h: the SIMD instructions generated kernels use, one inline function each.
 *
 * On Armv7E-M / Armv8-M cores with the DSP extension (Cortex-M4, M7, M33, M55) each is the single
 * instruction (ACLE intrinsic or inline asm); elsewhere each is exact portable C computing the same bits,
 * so a kernel scheduled for DSP still builds and runs bit-exactly on the host (and on RISC-V). The
 * definitions, and a Python model of each, are in microgen/tir/intrinsics.py.
 *
 * Lanes: a uint32_t holding two 16-bit lanes has lane 0 in bits 0..15 and lane 1 in bits 16..31; four
 * 8-bit lanes are bytes 0..3, byte 0 lowest.
 */
#ifndef MG_INTRINSICS_H
#define MG_INTRINSICS_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define MG_INTRIN static inline __attribute__((always_inline))
#else
#define MG_INTRIN static inline
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(MG_PORTABLE_INTRINSICS)
#define MG_HAVE_DSP 1
#else
#define MG_HAVE_DSP 0
#endif

/* ---- loads: unaligned-safe word reads (one LDR on cores that allow unaligned access) ---------- */
MG_INTRIN uint32_t mg_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Two's-complement view of a 32-bit word, without relying on implementation-defined conversions. */
MG_INTRIN int32_t mg_as_i32(uint32_t v)
{
    return v < 0x80000000u ? (int32_t)v : (int32_t)(v - 0x80000000u) - INT32_MAX - 1;
}

MG_INTRIN int32_t mg_lane16(uint32_t v, int lane)
{
    const uint32_t h = (v >> (16 * lane)) & 0xFFFFu;
    return h < 0x8000u ? (int32_t)h : (int32_t)h - 0x10000;
}

MG_INTRIN uint32_t mg_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16);
}

#if MG_HAVE_DSP

/* acc + x.lane0 * y.lane0 + x.lane1 * y.lane1 (signed 16-bit lanes, 32-bit wrap) */
MG_INTRIN int32_t mg_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* acc + x.lane0 * y.lane1 + x.lane1 * y.lane0 */
MG_INTRIN int32_t mg_smladx(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smladx %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* bytes 0 and 2, sign-extended into lanes 0 and 1 */
MG_INTRIN uint32_t mg_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

/* bytes 1 and 3, sign-extended into lanes 0 and 1 (SXTB16 with ROR #8, one instruction) */
MG_INTRIN uint32_t mg_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* a + sxtb16(x), lane by lane (16-bit wrap) */
MG_INTRIN uint32_t mg_sxtab16(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* a + sxtb16(x ror 8), lane by lane */
MG_INTRIN uint32_t mg_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* lane 0 of a, lane 1 from the low half of b (PKHBT with no shift) */
MG_INTRIN uint32_t mg_pkhbt(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* lane 1 of a, lane 0 from the high half of b (PKHTB ASR #16) */
MG_INTRIN uint32_t mg_pkhtb(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* (a * b + 2^31) >> 32: the high word of the product, rounded */
MG_INTRIN int32_t mg_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* acc + x.laneI * y.laneJ for the four lane choices (one MAC per instruction) */
MG_INTRIN int32_t mg_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

MG_INTRIN int32_t mg_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlabt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

MG_INTRIN int32_t mg_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

MG_INTRIN int32_t mg_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(y), "r"(acc));
    return r;
}

/* saturate to the signed range of `bits` bits (a constant 1..32) */
#define mg_ssat(x, bits) __extension__({ int32_t mg_r_; __asm__("ssat %0, %1, %2" : "=r"(mg_r_) : "I"(bits), "r"(x)); mg_r_; })

#else /* portable C: the same bits */

MG_INTRIN int32_t mg_smlad(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t p = (uint32_t)(mg_lane16(x, 0) * mg_lane16(y, 0)) + (uint32_t)(mg_lane16(x, 1) * mg_lane16(y, 1));
    return mg_as_i32((uint32_t)acc + p);
}

MG_INTRIN int32_t mg_smladx(uint32_t x, uint32_t y, int32_t acc)
{
    const uint32_t p = (uint32_t)(mg_lane16(x, 0) * mg_lane16(y, 1)) + (uint32_t)(mg_lane16(x, 1) * mg_lane16(y, 0));
    return mg_as_i32((uint32_t)acc + p);
}

MG_INTRIN int32_t mg_byte_s(uint32_t x, int i)
{
    const uint32_t b = (x >> (8 * i)) & 0xFFu;
    return b < 0x80u ? (int32_t)b : (int32_t)b - 0x100;
}

MG_INTRIN uint32_t mg_sxtb16(uint32_t x) { return mg_pack16(mg_byte_s(x, 0), mg_byte_s(x, 2)); }
MG_INTRIN uint32_t mg_sxtb16_ror8(uint32_t x) { return mg_pack16(mg_byte_s(x, 1), mg_byte_s(x, 3)); }

MG_INTRIN uint32_t mg_sxtab16(uint32_t a, uint32_t x)
{
    return mg_pack16(mg_lane16(a, 0) + mg_byte_s(x, 0), mg_lane16(a, 1) + mg_byte_s(x, 2));
}

MG_INTRIN uint32_t mg_sxtab16_ror8(uint32_t a, uint32_t x)
{
    return mg_pack16(mg_lane16(a, 0) + mg_byte_s(x, 1), mg_lane16(a, 1) + mg_byte_s(x, 3));
}

MG_INTRIN uint32_t mg_pkhbt(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }
MG_INTRIN uint32_t mg_pkhtb(uint32_t a, uint32_t b) { return (a & 0xFFFF0000u) | (b >> 16); }

MG_INTRIN int32_t mg_smmulr(int32_t a, int32_t b)
{
    const int64_t p = (int64_t)a * (int64_t)b + (INT64_C(1) << 31);
    return (int32_t)(p >> 32);
}

MG_INTRIN int32_t mg_smlabb(uint32_t x, uint32_t y, int32_t acc)
{
    return mg_as_i32((uint32_t)acc + (uint32_t)(mg_lane16(x, 0) * mg_lane16(y, 0)));
}

MG_INTRIN int32_t mg_smlabt(uint32_t x, uint32_t y, int32_t acc)
{
    return mg_as_i32((uint32_t)acc + (uint32_t)(mg_lane16(x, 0) * mg_lane16(y, 1)));
}

MG_INTRIN int32_t mg_smlatb(uint32_t x, uint32_t y, int32_t acc)
{
    return mg_as_i32((uint32_t)acc + (uint32_t)(mg_lane16(x, 1) * mg_lane16(y, 0)));
}

MG_INTRIN int32_t mg_smlatt(uint32_t x, uint32_t y, int32_t acc)
{
    return mg_as_i32((uint32_t)acc + (uint32_t)(mg_lane16(x, 1) * mg_lane16(y, 1)));
}

MG_INTRIN int32_t mg_ssat_c(int32_t x, int bits)
{
    const int32_t hi = (int32_t)((UINT32_C(1) << (bits - 1)) - 1u);
    const int32_t lo = -hi - 1;
    return x < lo ? lo : (x > hi ? hi : x);
}
#define mg_ssat(x, bits) mg_ssat_c((x), (bits))

#endif /* MG_HAVE_DSP */

#endif /* MG_INTRINSICS_H */
