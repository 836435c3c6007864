"""Output over consumed input: how far before its input an op's output may start.

A sliding-window op (conv, depthwise conv, pooling) that writes its output elements in row-major order
(each element after the reads it needs) no longer needs the input bytes before its receptive field. If
the output starts `shift` bytes before the input, writing output element e lands on input bytes that no
later element reads, provided for every e:

    (e + 1) * out_itemsize - shift <= first input byte any element after e still reads.

`safe_shift` computes the smallest such shift exactly from the op's geometry (vectorised over all output
elements); the planner then places the pair with output = input - shift, so they share memory at the op
(TinyEngine's and X-CUBE-AI's in-place trick, here proven per op rather than assumed).

The generated kernels of these ops must keep that write order: every output element is stored after all
the loads it needs and elements are stored in increasing address order. The bit-exact tests with the
planner's overlaps turned on check that contract.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Op

OVERLAP_KINDS = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL", "AVERAGE_POOL"}


def _first_tap(out_positions: np.ndarray, stride: int, pad: int, dilation: int, kernel: int,
               size: int) -> np.ndarray:
    """Smallest valid input coordinate read by each output coordinate along one axis (or `size` if
    every tap falls in the padding)."""
    start = out_positions * stride - pad
    # The first tap k with start + k*dilation >= 0.
    k0 = np.where(start >= 0, 0, (-start + dilation - 1) // dilation)
    first = start + k0 * dilation
    return np.where((k0 < kernel) & (first < size), first, size)


def safe_shift(graph: Graph, op: Op, order=None) -> int | None:
    """Bytes the output may start before the input of `op` (0 = fully in place); None when the op is not
    a sliding-window op of the handled kind and layout, or its kernel allows no overlap.

    order: the kernel's AccessOrder (tir.schedule); row-major with one-pixel groups by default.
    """
    if op.kind not in OVERLAP_KINDS:
        return None
    kind = getattr(order, "kind", "row_major")
    pixel_block = getattr(order, "pixel_block", 1)
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if kind == "none" or len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
        return None
    if kind == "channel_major_staged":
        # Every channel is staged before its outputs are written; outputs of channel c land on input
        # positions of channel c of earlier (or the same) pixels only if the layouts line up.
        same_layout = x.shape[3] == y.shape[3] and x.dtype.itemsize == y.dtype.itemsize and \
            y.shape[1] <= x.shape[1] and y.shape[2] <= x.shape[2]
        return 0 if same_layout else None
    _, h, w, cin = x.shape
    _, oh, ow, cout = y.shape
    if op.kind in ("MAX_POOL", "AVERAGE_POOL"):
        kh, kw = op.attrs["kernel"]
    else:
        wt = graph.tensors[op.inputs[1]]
        kh, kw = wt.shape[1], wt.shape[2]
    sh, sw = op.attrs.get("strides") or (1, 1)
    dh, dw = op.attrs.get("dilations") or (1, 1)
    pads = op.attrs.get("pads") or (0, 0, 0, 0)
    rows = _first_tap(np.arange(oh), sh, pads[0], dh, kh, h)
    cols = _first_tap(np.arange(ow), sw, pads[1], dw, kw, w)
    # First input byte each output pixel reads (its first valid tap, channel 0: conservative for groups
    # and depthwise, whose pixels read from channel 0 of that tap on).
    pixel_first = (rows[:, None] * w + cols[None, :]).reshape(-1).astype(np.int64) * cin * x.dtype.itemsize
    pixel_first = np.where(pixel_first >= x.nbytes, np.iinfo(np.int64).max, pixel_first)  # reads nothing
    # Group the pixels; a group's writes end at its last pixel's end and may not reach what the group
    # itself or any later group still reads.
    n_pix = oh * ow
    starts = np.arange(0, n_pix, pixel_block)
    group_first = np.minimum.reduceat(pixel_first, starts)
    future_min = np.minimum.accumulate(group_first[::-1])[::-1]
    group_end = np.minimum(starts + pixel_block, n_pix) * cout * y.dtype.itemsize
    need = np.where(future_min >= x.nbytes, 0, group_end - future_min)
    return int(max(0, need.max(initial=0)))
