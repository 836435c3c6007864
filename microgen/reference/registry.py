"""The table from op kind to reference kernel.

A kernel is `fn(op, graph, inputs) -> list of output arrays`: `inputs` holds one numpy array per
`op.inputs` entry (None for an omitted optional input), in the tensors' own dtypes and shapes; the
kernel returns arrays of exactly the output tensors' dtypes and shapes. Kernels read quantization
params and constants from `graph` and attributes from `op.attrs` (defaults filled in by the importer
via `graph.ops.with_defaults`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..graph import Graph, Op

Kernel = Callable[[Op, Graph, list], list]
KERNELS: dict[str, Kernel] = {}


def kernel(*kinds: str) -> Callable[[Kernel], Kernel]:
    """Register a reference kernel for one or more op kinds."""
    def register(fn: Kernel) -> Kernel:
        for kind in kinds:
            assert kind not in KERNELS, f"two reference kernels for {kind}"
            KERNELS[kind] = fn
        return fn
    return register


def out_like(graph: Graph, name: str, values: np.ndarray) -> np.ndarray:
    """Cast `values` to the dtype of tensor `name` and check the shape (kernels end with this)."""
    t = graph.tensors[name]
    values = np.asarray(values)
    assert values.size == t.size, (name, values.shape, t.shape)
    return values.reshape(t.shape).astype(t.dtype.np, copy=False)
