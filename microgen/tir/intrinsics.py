"""The SIMD intrinsics kernels may call, described in one place: name, operand and result types, the ISA
feature they need, and an exact Python model of what they compute.

runtime_c/mg_intrinsics.h implements each: the single instruction on cores with the feature, exact
portable C elsewhere. tests/tir/test_intrinsics.py checks the C against these models. Lowerings call them
with `intrinsic(name, *args)`, which checks the arity and gives the Call node its result type.

Lanes: a u32 holding two 16-bit lanes has lane 0 in bits 0..15; four 8-bit lanes are bytes 0..3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..graph import DType
from .nodes import Call, call


def _s16(v: int, lane: int) -> int:
    h = (v >> (16 * lane)) & 0xFFFF
    return h - 0x10000 if h & 0x8000 else h


def _s8(v: int, i: int) -> int:
    b = (v >> (8 * i)) & 0xFF
    return b - 0x100 if b & 0x80 else b


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _pack16(lo: int, hi: int) -> int:
    return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)


@dataclass(frozen=True)
class Intrinsic:
    name: str
    args: tuple[DType, ...]
    result: DType
    feature: str            # "dsp", "mve" or "" (always available)
    model: Callable[..., int]
    doc: str


U32, I32 = DType.UINT32, DType.INT32

INTRINSICS: dict[str, Intrinsic] = {i.name: i for i in [
    Intrinsic("mg_read_u32", (), U32, "", lambda: 0, "an unaligned-safe 32-bit load (printed as a call on a pointer)"),
    Intrinsic("mg_smlad", (U32, U32, I32), I32, "dsp",
              lambda x, y, a: _i32(a + _s16(x, 0) * _s16(y, 0) + _s16(x, 1) * _s16(y, 1)),
              "acc + x.lane0*y.lane0 + x.lane1*y.lane1"),
    Intrinsic("mg_smladx", (U32, U32, I32), I32, "dsp",
              lambda x, y, a: _i32(a + _s16(x, 0) * _s16(y, 1) + _s16(x, 1) * _s16(y, 0)),
              "acc + x.lane0*y.lane1 + x.lane1*y.lane0"),
    Intrinsic("mg_sxtb16", (U32,), U32, "dsp", lambda x: _pack16(_s8(x, 0), _s8(x, 2)),
              "bytes 0 and 2 sign-extended into lanes 0 and 1"),
    Intrinsic("mg_sxtb16_ror8", (U32,), U32, "dsp", lambda x: _pack16(_s8(x, 1), _s8(x, 3)),
              "bytes 1 and 3 sign-extended into lanes 0 and 1"),
    Intrinsic("mg_sxtab16", (U32, U32), U32, "dsp",
              lambda a, x: _pack16(_s16(a, 0) + _s8(x, 0), _s16(a, 1) + _s8(x, 2)), "a + sxtb16(x) per lane"),
    Intrinsic("mg_sxtab16_ror8", (U32, U32), U32, "dsp",
              lambda a, x: _pack16(_s16(a, 0) + _s8(x, 1), _s16(a, 1) + _s8(x, 3)), "a + sxtb16_ror8(x) per lane"),
    Intrinsic("mg_pkhbt", (U32, U32), U32, "dsp", lambda a, b: (a & 0xFFFF) | ((b << 16) & 0xFFFF0000),
              "lane 0 of a, lane 1 = low half of b"),
    Intrinsic("mg_pkhtb", (U32, U32), U32, "dsp", lambda a, b: (a & 0xFFFF0000) | ((b >> 16) & 0xFFFF),
              "lane 1 of a, lane 0 = high half of b"),
    Intrinsic("mg_smmulr", (I32, I32), I32, "dsp", lambda a, b: _i32((a * b + (1 << 31)) >> 32),
              "(a*b + 2^31) >> 32"),
    Intrinsic("mg_smlabb", (U32, U32, I32), I32, "dsp", lambda x, y, a: _i32(a + _s16(x, 0) * _s16(y, 0)), ""),
    Intrinsic("mg_smlabt", (U32, U32, I32), I32, "dsp", lambda x, y, a: _i32(a + _s16(x, 0) * _s16(y, 1)), ""),
    Intrinsic("mg_smlatb", (U32, U32, I32), I32, "dsp", lambda x, y, a: _i32(a + _s16(x, 1) * _s16(y, 0)), ""),
    Intrinsic("mg_smlatt", (U32, U32, I32), I32, "dsp", lambda x, y, a: _i32(a + _s16(x, 1) * _s16(y, 1)), ""),
    Intrinsic("mg_ssat", (I32, I32), I32, "dsp",
              lambda x, bits: max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, x)),
              "saturate to `bits` signed bits (bits: a constant)"),
]}


def intrinsic(name: str, *args) -> Call:
    """A call of intrinsic `name` (checked against its description)."""
    spec = INTRINSICS[name]
    assert name == "mg_read_u32" or len(args) == len(spec.args), (name, args)
    return call(name, spec.result, *args)
