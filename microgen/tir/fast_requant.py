"""Requantization in a handful of instructions, bit-exact with TFLM's double rounding when a bound holds.

TFLM: y = RoundingDivideByPOT(SRDHM(acc * 2^ls, m), rs) + zp, with ls = max(shift, 0), rs = max(-shift, 0).
If |acc| * 2^(ls+1) < 2^31, the doubling high multiply equals SMMULR(acc * 2^(ls+1), m): the rounded high
word of the 64-bit product (one instruction on Armv7E-M). The rounding right shift (halves away from zero)
equals (h + c + (h >> 31)) >> rs with c = 2^(rs-1), and the output zero point folds into c as zp * 2^rs.
So: SMMULR, ADD, ADD (h ASR 31), ASR, then the clamp (SSAT when the clamp is a full type range).

Whether the bound holds is decided per channel at build time from the accumulator's largest magnitude
(`acc_bound`, e.g. |bias'| + 128 * sum|w| for raw int8 inputs); when it fails for any channel the caller
keeps the generic mg_requantize. `model()` is the numpy statement of the same arithmetic, checked against
microgen.fixedpoint on random accumulators in tests/tir/test_fast_requant.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier
from ..graph import DType
from .intrinsics import intrinsic
from .nodes import Buffer, Expr, binop, cast, clamp, const, load, mul
from .quant import Requant


@dataclass(frozen=True)
class FastRequant:
    """Per-channel constants of the fast path (length 1 when one value serves every channel)."""

    multiplier: np.ndarray   # Q31 multipliers, as TFLM's
    pre: np.ndarray          # 2^(ls+1): the accumulator is multiplied by this before SMMULR
    rs: np.ndarray           # right shift after SMMULR
    c: np.ndarray            # rounding constant with the output zero point folded in
    act_min: int
    act_max: int
    full_range: bool         # the clamp is the whole output type range (SSAT does it)

    @property
    def per_channel(self) -> bool:
        return len(self.multiplier) > 1


def plan_fast_requant(rq: Requant, acc_bound: np.ndarray, out_dtype: DType) -> FastRequant | None:
    """The fast path's constants, or None when the bound fails for a channel (or 16x8 accumulators)."""
    if rq.wide:
        return None
    channels = len(acc_bound)
    m = np.broadcast_to(rq.multiplier, (channels,)).astype(np.int64)
    shift = np.broadcast_to(rq.shift, (channels,)).astype(np.int64)
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    if np.any(acc_bound.astype(np.float64) * 2.0 ** (ls + 1) >= 2.0 ** 31) or np.any(rs > 30) or np.any(m < 0):
        return None
    c = np.where(rs > 0, (np.int64(1) << np.maximum(rs - 1, 0)), 0) + rq.out_zp * (np.int64(1) << rs)
    # h is below 2^30 in magnitude; h + c (+ h >> 31) must stay inside int32.
    if np.any(np.abs(c) + (1 << 30) >= 2**31):
        return None
    lo, hi = out_dtype.limits()
    fr = FastRequant(m, np.int64(1) << (ls + 1), rs, c, rq.act_min, rq.act_max,
                     full_range=(rq.act_min == lo and rq.act_max == hi))
    if np.all(m == m[0]) and np.all(ls == ls[0]) and np.all(rs == rs[0]):
        fr = FastRequant(m[:1], fr.pre[:1], rs[:1], c[:1], fr.act_min, fr.act_max, fr.full_range)
    return fr


def model(acc: np.ndarray, fr: FastRequant, channel: np.ndarray | int = 0) -> np.ndarray:
    """What the emitted expression computes (numpy, int64), for tests."""
    ch = np.zeros_like(np.asarray(channel)) if not fr.per_channel else np.asarray(channel)
    v = np.asarray(acc, np.int64) * fr.pre[ch]
    h = (v * fr.multiplier[ch] + (1 << 31)) >> 32
    # The h >> 31 correction rounds halves away from zero; channels without a right shift skip it.
    y = (h + fr.c[ch] + ((h >> 31) & -(fr.rs[ch] > 0).astype(np.int64))) >> fr.rs[ch]
    return np.clip(y, fr.act_min, fr.act_max)


def reference(acc: np.ndarray, rq: Requant, channel: np.ndarray | int = 0) -> np.ndarray:
    """TFLM's result for the same accumulators (for tests)."""
    ch = np.zeros_like(np.asarray(channel)) if len(rq.multiplier) == 1 else np.asarray(channel)
    y = multiply_by_quantized_multiplier(acc, rq.multiplier[ch], rq.shift[ch]) + rq.out_zp
    return np.clip(y, rq.act_min, rq.act_max)


def fast_requant_consts(ctx, fr: FastRequant) -> dict[str, Buffer] | None:
    """Const arrays (mult, pre, rs, c) for per-channel constants; None when they are literals."""
    if not fr.per_channel:
        return None
    return {
        "mult": ctx.const("fq_mult", fr.multiplier, DType.INT32, "requantization multipliers (Q31)"),
        "pre": ctx.const("fq_pre", fr.pre, DType.INT32, "2^(left shift + 1) applied before SMMULR"),
        "rs": ctx.const("fq_rs", fr.rs, DType.INT32, "right shifts after SMMULR"),
        "c": ctx.const("fq_c", fr.c, DType.INT32, "rounding constant + output zero point * 2^rs"),
        "rmask": ctx.const("fq_rmask", -(fr.rs > 0).astype(np.int64), DType.INT32,
                           "-1 where the channel rounds a right shift, else 0"),
    }


def fast_requantize(acc: Expr, fr: FastRequant, channel: Expr | int, consts: dict[str, Buffer] | None,
                    out_dtype: DType) -> Expr:
    """The output value of one accumulator (see the module docstring), cast to out_dtype."""
    def pick(name: str, values: np.ndarray) -> Expr:
        return load(consts[name], channel) if consts else const(int(values[0]))

    h = intrinsic("mg_smmulr", mul(acc, pick("pre", fr.pre)), pick("mult", fr.multiplier))
    if not np.any(fr.rs):
        y = binop("+", h, pick("c", fr.c))
    else:
        sign = binop(">>", h, 31)
        if not np.all(fr.rs):  # some channels shift by 0 and must not round: mask the correction
            sign = binop("&", sign, pick("rmask", -(fr.rs > 0).astype(np.int64)))
        y = binop(">>", binop("+", binop("+", h, pick("c", fr.c)), sign), pick("rs", fr.rs))
    if fr.full_range and out_dtype in (DType.INT8, DType.INT16):
        return cast(intrinsic("mg_ssat", y, out_dtype.itemsize * 8), out_dtype)
    return cast(clamp(y, fr.act_min, fr.act_max), out_dtype)
