"""Quantization parameters by the TFLite int8 spec (and 16x8): activations, weights, biases.

- Activations, int8: asymmetric per-tensor, real range [lo, hi] (containing 0) onto [-128, 127]:
  scale = (hi - lo) / 255, zero_point = round(-128 - lo / scale) clamped to int8.
- Activations, int16 (16x8 layers): symmetric, zero_point 0, scale = max(|lo|, |hi|) / 32767 (TFLM's
  int16 kernels require zero point 0).
- Weights: int8 symmetric in [-127, 127], zero_point 0, per channel along `axis` (conv 0, depthwise 3,
  fully-connected 0) or per tensor: scale = max|w| / 127, q = round(w / scale).
- Bias: int32 (int64 next to int16 activations), zero_point 0, scale = input_scale * weight_scale[c],
  q = round(b / scale). When a bias would overflow its type (tiny weights, huge bias), that channel's
  weight scale is raised until it fits, as the TFLite converter does.

Every scale is rounded to a float32 value *before* anything is quantized with it: the .tflite file
stores float32 scales and TFLM derives its multipliers from them, so the graph must already compute
with exactly those numbers to be bit-exact once written. Rounding is half away from zero (TfLiteRound).
"""

from __future__ import annotations

import numpy as np

from ..fixedpoint import np_round_half_away
from ..graph import DType, QuantParams

# Smallest real range width: a tensor that is constant 0 over the calibration data still needs a
# positive scale (any will do; its values are all the zero point).
MIN_WIDTH = 1e-6


def f32(x: float) -> float:
    """x rounded to the nearest float32 value (what the .tflite file will store)."""
    return float(np.float32(x))


def activation_params(lo: float, hi: float, dtype: DType = DType.INT8) -> QuantParams:
    """Per-tensor params covering the real range [lo, hi] (widened to contain 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if dtype is DType.INT16:
        bound = max(-lo, hi, MIN_WIDTH)
        return QuantParams.per_tensor(f32(bound / 32767.0), 0)
    assert dtype is DType.INT8, dtype
    if hi - lo < MIN_WIDTH:
        hi = lo + MIN_WIDTH
    scale = f32((hi - lo) / 255.0)
    zp = int(np.clip(np_round_half_away(np.float64(-128.0 - lo / scale)), -128, 127))
    return QuantParams.per_tensor(scale, zp)


def quantize_array(x: np.ndarray, q: QuantParams, dtype: DType) -> np.ndarray:
    """Real values -> integers of `dtype` with per-tensor or per-axis params (round half away, clamp).

    Divides in float32 like TFLite's AffineQuantize, so graph inputs quantized here match what a
    TFLite QUANTIZE op (and the int8 models' users) compute.
    """
    shape = [1] * x.ndim
    if q.axis is not None:
        shape[q.axis] = len(q.scale)
    scale = np.asarray(q.scale, np.float32).reshape(shape)
    zp = np.asarray(q.zero_point, np.float64).reshape(shape)
    lo, hi = dtype.limits()
    v = np_round_half_away(np.asarray(x, np.float32) / scale).astype(np.float64) + zp
    return np.clip(v, lo, hi).astype(dtype.np)


def dequantize_array(q: np.ndarray, params: QuantParams) -> np.ndarray:
    """Integers -> real values (float64): scale * (q - zero_point)."""
    shape = [1] * q.ndim
    if params.axis is not None:
        shape[params.axis] = len(params.scale)
    scale = np.asarray(params.scale, np.float32).astype(np.float64).reshape(shape)
    zp = np.asarray(params.zero_point, np.float64).reshape(shape)
    return (q.astype(np.float64) - zp) * scale


def weight_scales(w: np.ndarray, axis: int | None) -> np.ndarray:
    """float32 symmetric int8 scales: max|w| / 127 per slice along axis (or one for the tensor).
    An all-zero slice gets scale 1 (its weights are all 0 whatever the scale)."""
    a = np.abs(w.astype(np.float64))
    if axis is None:
        absmax = np.array([a.max(initial=0.0)])
    else:
        absmax = np.moveaxis(a, axis, 0).reshape(w.shape[axis], -1).max(axis=1, initial=0.0)
    scales = np.where(absmax > 0, absmax / 127.0, 1.0)
    return scales.astype(np.float32)


def quantize_weights(w: np.ndarray, axis: int | None, scales: np.ndarray | None = None
                     ) -> tuple[np.ndarray, QuantParams]:
    """(int8 weights in [-127, 127], their QuantParams). scales: float32 per slice (default: max|w|/127)."""
    scales = weight_scales(w, axis) if scales is None else np.asarray(scales, np.float32)
    q = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = len(scales)
    v = np_round_half_away(w.astype(np.float64) / scales.astype(np.float64).reshape(shape))
    return np.clip(v, -127, 127).astype(np.int8), q


def bias_fit_scales(bias: np.ndarray, in_scale: float, w_scales: np.ndarray, dtype: DType) -> np.ndarray:
    """Weight scales raised (per channel) so that round(bias / (in_scale * w_scale)) fits `dtype`."""
    limit = float(dtype.limits()[1]) * 0.99  # a margin against the float32 rounding of the product
    need = np.abs(bias.astype(np.float64)) / (np.float64(in_scale) * limit)
    w = np.broadcast_to(w_scales.astype(np.float64), bias.shape)
    return np.maximum(w, need).astype(np.float32)


def quantize_bias(bias: np.ndarray, in_scale: float, w_q: QuantParams, channels: int, dtype: DType
                  ) -> tuple[np.ndarray, QuantParams]:
    """(integer bias of `dtype`, its QuantParams with scale = float32(in_scale * w_scale[c]))."""
    w_s = np.broadcast_to(np.asarray(w_q.scale, np.float32), (channels,))
    scales = (np.float32(in_scale) * w_s).astype(np.float32)  # float32 product, as stored
    v = np_round_half_away(bias.astype(np.float64) / scales.astype(np.float64))
    lo, hi = dtype.limits()
    if w_q.axis is None:
        q = QuantParams.per_tensor(float(scales[0]), 0)
    else:
        q = QuantParams(tuple(float(s) for s in scales), (0,) * channels, 0)
    return np.clip(v, lo, hi).astype(dtype.np), q
