"""Index arithmetic of TFLite ops, resolved at import: SAME/VALID padding and strided-slice bounds.

The padding functions follow TFLM's `ComputePaddingHeightWidth` (tensorflow/lite/kernels/padding.h)
per spatial dimension:
    out = ceil(in / stride)                      (SAME)
        = floor((in - eff) / stride) + 1         (VALID, eff = (k - 1) * dilation + 1)
    total = max(0, (out - 1) * stride + eff - in)
    pad_before = total // 2, and the odd extra cell goes at the end.
TFLM's kernels only read pad_before; the end pad here is what makes the IR's explicit pads describe
the same output size.
"""

from __future__ import annotations

SAME, VALID = 0, 1  # tflite.Padding


def c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), as TFLM's int arithmetic."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def out_size(padding: int, in_size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TFLM ComputeOutSize: the output length of a window op along one dimension."""
    eff = (k - 1) * dilation + 1
    if padding == SAME:
        return c_div(in_size + stride - 1, stride)
    return c_div(in_size + stride - eff, stride)


def window_pads(padding: int, in_hw: tuple[int, ...], k_hw: tuple[int, ...], strides: tuple[int, ...],
                dilations: tuple[int, ...], out_hw: tuple[int, ...]) -> tuple[int, ...] | None:
    """Explicit (begin..., end...) pads of a CONV_2D / DEPTHWISE_CONV_2D / pool, or None when the output
    tensor's spatial size `out_hw` is not the one TFLM computes."""
    begins, ends = [], []
    for n, k, s, d, out in zip(in_hw, k_hw, strides, dilations, out_hw):
        if out != out_size(padding, n, k, s, d):
            return None
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return (*begins, *ends)


def transpose_conv_pads(padding: int, in_hw: tuple[int, ...], k_hw: tuple[int, ...], strides: tuple[int, ...],
                        out_hw: tuple[int, ...]) -> tuple[int, ...]:
    """(top, left, bottom, right) cropped from the full transposed-conv result of size (in-1)*s + k.

    TFLM computes the padding as for a forward conv from the *output* size (dilation 1): the begin pad
    is `max(0, (out_size(out) - 1) * s + k - out) // 2`. The end pad is whatever makes the result
    `out` long; it is negative when the output is longer than the full result (SAME with k < s): those
    last cells receive no input tap, only the bias.
    """
    begins, ends = [], []
    for n, k, s, out in zip(in_hw, k_hw, strides, out_hw):
        before = max(0, (out_size(padding, out, k, s) - 1) * s + k - out) // 2
        begins.append(before)
        ends.append((n - 1) * s + k - out - before)
    return (*begins, *ends)


def strided_slice(shape: tuple[int, ...], begin: list[int], end: list[int], strides: list[int],
                  begin_mask: int, end_mask: int, shrink_mask: int, offset: bool
                  ) -> tuple[list[int | None], list[int | None], list[int], list[int]]:
    """Resolve a TFLite STRIDED_SLICE like TFLM (strided_slice_logic.h: StridedSliceStartForAxis /
    StridedSliceEndForAxis, with begin/end/strides shorter than the rank padded in front).

    Returns (begin, end, strides, out_shape) for the IR SLICE, whose entries mean what they mean in a
    Python slice, in a canonical form (so equal slices get equal attributes): begin is the first index
    taken, end one step past the last one (None when that is -1, i.e. through index 0 with a negative
    stride), the stride 1 when one element is taken, and 0:0:1 when none is. out_shape is the sliced
    shape before shrinking; shrunk axes are the ones in shrink_mask.
    """
    rank = len(shape)
    pad = rank - len(begin)
    begin, end, strides = [0] * pad + begin, [1] * pad + end, [1] * pad + strides
    begin_mask = (begin_mask << pad) | ((1 << pad) - 1)
    end_mask = (end_mask << pad) | ((1 << pad) - 1)
    shrink_mask <<= pad
    b_out: list[int | None] = []
    e_out: list[int | None] = []
    s_out: list[int] = []
    sizes = []
    for axis, n in enumerate(shape):
        s = strides[axis]
        lo, hi = (0, n) if s > 0 else (-1, n - 1)
        start = begin[axis] + n if begin[axis] < 0 else begin[axis]
        start = min(max(start, lo), hi)
        if begin_mask >> axis & 1:
            start = 0 if s > 0 else n - 1
        if shrink_mask >> axis & 1:
            stop = start if start >= n else start + 1
        else:
            stop = end[axis] + (start if offset else 0)
            stop = stop + n if stop < 0 else stop
            stop = min(max(stop, lo), hi)
            if end_mask >> axis & 1:
                stop = n if s > 0 else -1
        count = max(0, c_div(stop - start + (s - (1 if s > 0 else -1)), s))
        sizes.append(count)
        # Canonical bounds: the first index, one step past the last one, stride 1 for a single element.
        if count == 0:
            start, stop, s = 0, 0, 1
        elif count == 1:
            stop, s = start + 1, 1
        else:
            stop = start + (count - 1) * s + (1 if s > 0 else -1)
        b_out.append(start)
        e_out.append(None if stop == -1 else stop)
        s_out.append(s)
    return b_out, e_out, s_out, sizes
