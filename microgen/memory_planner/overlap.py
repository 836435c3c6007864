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


def safe_shift(graph: Graph, op: Op) -> int | None:
    """Bytes the output may start before the input of `op` (0 = fully in place); None if the op is not
    a sliding-window op of the handled kind and layout."""
    if op.kind not in OVERLAP_KINDS:
        return None
    x = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != 1:
        return None
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
    pt, pl = pads[0], pads[1]
    rows = _first_tap(np.arange(oh), sh, pt, dh, kh, h)
    cols = _first_tap(np.arange(ow), sw, pl, dw, kw, w)
    # First input element (row-major) each output pixel reads; channels start at the group's first.
    pixel_first = (rows[:, None] * w + cols[None, :]).reshape(-1) * cin  # [oh*ow]
    channels = np.arange(cout)
    if op.kind == "CONV_2D":
        per_group = graph.tensors[op.inputs[1]].shape[3]
        group_out = cout // (cin // per_group)
        chan_first = (channels // group_out) * per_group
    elif op.kind == "DEPTHWISE_CONV_2D":
        chan_first = channels // op.attrs.get("depth_multiplier", 1)
    else:  # pooling reads its own channel
        chan_first = channels
    first = (pixel_first[:, None] + chan_first[None, :]).reshape(-1)  # per output element, write order
    # A pixel whose taps all fall in padding reads nothing: it constrains nothing.
    first = np.where(np.repeat(pixel_first >= h * w * cin, cout), x.size, first)
    future_min = np.minimum.accumulate(first[::-1])[::-1].astype(np.int64) * x.dtype.itemsize
    n = y.size
    if n < 2:
        return 0
    # Once no later element reads the input, any write is safe: no constraint from those elements.
    # (Conservative for outputs larger than their input: writes past the input's end are also safe.)
    written_end = np.arange(1, n, dtype=np.int64) * y.dtype.itemsize  # end of element e, e = 0..n-2
    need = np.where(future_min[1:] >= x.nbytes, 0, written_end - future_min[1:])
    return int(max(0, need.max()))
