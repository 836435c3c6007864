"""Permutation helpers for the layout tracking of the ONNX importer.

A layout is a permutation `perm` of the ONNX tensor's dims: the IR tensor holds
`onnx_array.transpose(perm)`. The identity permutation is the ONNX order; `channels_last(r)`
= (0, 2, ..., r-1, 1) turns NCHW into NHWC (and NCL / NCDHW into NLC / NDHWC).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def channels_last(rank: int) -> tuple[int, ...]:
    """NC* -> N*C for rank >= 3; the identity for lower ranks (no channel dim to move)."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def is_identity(perm: Sequence[int]) -> bool:
    return tuple(perm) == identity(len(perm))


def inverse(perm: Sequence[int]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, a in enumerate(perm):
        inv[a] = i
    return tuple(inv)


def relative(src: Sequence[int], dst: Sequence[int]) -> tuple[int, ...]:
    """The TRANSPOSE perm that turns data stored in layout `src` into layout `dst`."""
    inv = inverse(src)
    return tuple(inv[a] for a in dst)


def apply(shape: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
    """The shape of a tensor of ONNX shape `shape` stored in layout `perm`."""
    return tuple(int(shape[a]) for a in perm)


def transpose_is_reshape(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True if transposing an array of `shape` by `perm` keeps its row-major memory order (only dims
    of size 1 move), so a RESHAPE can stand in for the TRANSPOSE."""
    moved = [a for a in perm if shape[a] != 1]
    return moved == sorted(moved)


def axis_in(perm: Sequence[int], onnx_axis: int) -> int:
    """Where ONNX axis `onnx_axis` (already non-negative) sits in a tensor stored in layout `perm`."""
    return tuple(perm).index(onnx_axis)


def drop_axes(perm: Sequence[int], removed: Sequence[int]) -> tuple[int, ...]:
    """The layout of a tensor after the ONNX axes `removed` are dropped (reductions with
    keepdims=0): the remaining axes keep their relative order in the stored tensor."""
    kept = [a for a in perm if a not in removed]
    order = sorted(kept)
    return tuple(order.index(a) for a in kept)


def normalize_axis(axis: int, rank: int) -> int:
    """A possibly negative ONNX axis as an index in [0, rank); ValueError when out of range."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a rank-{rank} tensor")
    return axis + rank if axis < 0 else axis


def contiguous(a) -> np.ndarray:
    """A C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")
