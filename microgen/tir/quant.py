"""Build-time quantization constants and the requantize expression shared by the MAC-op lowerings.

Everything here runs in Python at build time (TFLM's "Prepare"); the generated C only sees numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import activation_range_quantized, quantize_multipliers
from ..graph import DType, Graph, Op, Tensor
from .nodes import Buffer, Expr, call, clamp, const, load


@dataclass(frozen=True)
class Requant:
    """Per-output-channel requantization of an int32/int64 accumulator to the output type.

    multiplier/shift: one per channel (length 1 when per-tensor); out_zp; [act_min, act_max] the clamp.
    """

    multiplier: np.ndarray
    shift: np.ndarray
    out_zp: int
    act_min: int
    act_max: int
    wide: bool  # int64 accumulators (16x8): mg_requantize_i64

    @property
    def per_channel(self) -> bool:
        return len(self.multiplier) > 1 and not (np.all(self.multiplier == self.multiplier[0])
                                                  and np.all(self.shift == self.shift[0]))


def conv_requant(graph: Graph, op: Op, x: Tensor, w: Tensor, y: Tensor, channels: int) -> Requant:
    """TFLM PopulateConvolutionQuantizationParams: effective scale = double(in) * double(w[c]) / double(out)
    with the scales as float32 values, then QuantizeMultiplier per channel."""
    w_scales = np.asarray(w.quant.scale, dtype=np.float32).astype(np.float64)
    if len(w_scales) == 1:
        w_scales = np.repeat(w_scales, channels)
    in_s = float(np.float32(x.quant.s))
    out_s = float(np.float32(y.quant.s))
    m, s = quantize_multipliers(in_s * w_scales / out_s)
    lo, hi = y.dtype.limits()
    act_min, act_max = activation_range_quantized(op.attr("activation", "NONE"), y.quant.s, y.quant.zp, lo, hi)
    return Requant(m, s, y.quant.zp, act_min, act_max, wide=x.dtype == DType.INT16)


def requant_consts(ctx, rq: Requant) -> tuple[Buffer | None, Buffer | None]:
    """Const arrays for per-channel multipliers and shifts (None when one value serves every channel)."""
    if not rq.per_channel:
        return None, None
    return (ctx.const("mult", rq.multiplier, DType.INT32, "per-channel requantization multipliers (Q31)"),
            ctx.const("shift", rq.shift, DType.INT32, "per-channel requantization shifts (left > 0)"))


def requantize(acc: Expr, rq: Requant, channel: Expr, mult: Buffer | None, shift: Buffer | None,
               out_dtype: DType) -> Expr:
    """clamp(requantize(acc) + out_zp, act_min, act_max), cast to the output type."""
    if mult is None:
        m, s = const(int(rq.multiplier[0])), const(int(rq.shift[0]))
    else:
        m, s = load(mult, channel), load(shift, channel)
    scaled = call("mg_requantize_i64" if rq.wide else "mg_requantize", DType.INT32, acc, m, s)
    from .nodes import cast
    return cast(clamp(scaled + rq.out_zp, rq.act_min, rq.act_max), out_dtype)


def folded_bias(bias: np.ndarray | None, weights: np.ndarray, input_offset: int, channels: int,
                reduce_axes: tuple[int, ...], wide: bool) -> np.ndarray:
    """bias[c] + input_offset * sum(w[c, ...]): folds the input zero point out of the inner loop.
    Exact: integer addition is associative, so acc = sum(w*x) + this equals TFLM's sum(w*(x+offset)) + bias."""
    dtype = np.int64
    b = np.zeros(channels, dtype) if bias is None else bias.astype(dtype)
    folded = b + input_offset * weights.astype(dtype).sum(axis=reduce_axes)
    if not wide:
        assert np.all(np.abs(folded) < 2**31), "folded bias does not fit int32"
    return folded
