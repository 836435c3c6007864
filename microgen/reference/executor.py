"""Run a Graph on numpy arrays with the reference kernels (bit-exact with TFLM for int8/int16).

This is the oracle every later stage is checked against: the generated C, the boards, the quantizer's
accuracy estimate.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InvalidInputError, UnsupportedOpError
from ..graph import Graph
from .registry import KERNELS


def run(graph: Graph, feeds: Mapping[str, np.ndarray], keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run one inference.

    feeds: one array per graph input name, of exactly the input tensor's shape and dtype.
    Returns the graph outputs by name, or with keep_all=True every activation tensor by name.
    """
    values: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in feeds:
            raise InvalidInputError(f"no data for model input {name!r}")
        values[name] = _check_feed(graph, name, feeds[name])
    for op in graph.ops:
        fn = KERNELS.get(op.kind)
        if fn is None:
            raise UnsupportedOpError(f"{op.where()}: the reference executor has no kernel for {op.kind}")
        args = [None if not n else (values[n] if n in values else graph.tensors[n].data) for n in op.inputs]
        results = fn(op, graph, args)
        assert len(results) == len(op.outputs), (op.kind, len(results), op.outputs)
        for name, value in zip(op.outputs, results):
            t = graph.tensors[name]
            assert value.shape == t.shape and value.dtype == t.dtype.np, (
                f"{op.where()} {op.kind}: kernel returned {value.dtype}{list(value.shape)} for "
                f"{t.dtype.value}{list(t.shape)}")
            values[name] = value
    if keep_all:
        return values
    return {name: values[name] if name in values else graph.tensors[name].data for name in graph.outputs}


def run_samples(graph: Graph, samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every sample: samples[name] has a leading sample axis over the input's shape (or the input's
    shape with its batch of 1 replaced by the number of samples). Returns outputs stacked the same way."""
    counts = {name: len(arr) for name, arr in samples.items()}
    if len(set(counts.values())) > 1:
        raise InvalidInputError(f"inputs have different numbers of samples: {counts}")
    n = next(iter(counts.values()), 0)
    outs: dict[str, list[np.ndarray]] = {name: [] for name in graph.outputs}
    for i in range(n):
        feeds = {}
        for name in graph.inputs:
            if name not in samples:
                raise InvalidInputError(f"no data for model input {name!r}")
            feeds[name] = _sample(graph, name, samples[name], i)
        for name, value in run(graph, feeds).items():
            outs[name].append(value)
    return {name: _stack(graph, name, vals) for name, vals in outs.items()}


def _sample(graph: Graph, name: str, arr: np.ndarray, i: int) -> np.ndarray:
    """Sample i of a stacked input array, shaped as the input tensor."""
    t = graph.tensors[name]
    item = np.asarray(arr[i])
    if item.size != t.size:
        raise InvalidInputError(
            f"input {name!r}: a sample has shape {list(item.shape)} ({item.size} values) but the model "
            f"takes {t.describe()} ({t.size} values)")
    return item.reshape(t.shape)


def _stack(graph: Graph, name: str, vals: list[np.ndarray]) -> np.ndarray:
    t = graph.tensors[name]
    if not vals:
        return np.zeros((0, *t.shape), dtype=t.dtype.np)
    return np.stack(vals)


def _check_feed(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    value = np.asarray(value)
    if value.size != t.size:
        raise InvalidInputError(f"input {name!r} has shape {list(value.shape)}, the model takes {t.describe()}")
    if value.dtype != t.dtype.np:
        if t.dtype.is_int and not np.issubdtype(value.dtype, np.integer):
            raise InvalidInputError(f"input {name!r} is {value.dtype}, the model takes {t.dtype.value}")
        lo, hi = (t.dtype.limits() if t.dtype.is_int else (None, None))
        if lo is not None and value.size and (value.min() < lo or value.max() > hi):
            raise InvalidInputError(f"input {name!r} has values outside the {t.dtype.value} range")
        value = value.astype(t.dtype.np)
    return value.reshape(t.shape)
