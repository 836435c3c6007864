"""Assemble the IR Graph from a validated RawModel: check first (every unsupported op and dtype in one
message), then build tensors, convert each op through the converter tables, and check that the op
list is a valid execution order.
"""

from __future__ import annotations

import struct
from typing import Callable

import numpy as np

from ...errors import MicrogenError, ModelFormatError, UnsupportedOpError
from ...graph import Graph, Op, Tensor
from ...graph.ops import with_defaults
from . import ops_nn, ops_shape
from .context import Converted, Folded, OpContext
from .reader import RawModel, RawOp
from .tensors import check_dtypes, make_tensor, unique_names

CONVERTERS = {**ops_nn.CONVERTERS, **ops_shape.CONVERTERS}
OPTIONS = {**ops_nn.OPTIONS, **ops_shape.OPTIONS}


class TensorBuilder:
    """IR tensors by TFLite index (made on first use), plus constants derived on import."""

    def __init__(self, raw: RawModel, path: str) -> None:
        self.raw = raw
        self.path = path
        self.names = unique_names(raw.tensors)
        self.tensors: dict[str, Tensor] = {}
        self.index_of: dict[str, int] = {}
        self._derived: dict[tuple[int, str], str] = {}
        self._uses = np.zeros(len(raw.tensors), dtype=np.int64)
        for op in raw.ops:
            for i in op.inputs:
                if i >= 0:
                    self._uses[i] += 1
        for i in raw.inputs + raw.outputs:
            self._uses[i] += 1

    def name(self, index: int) -> str:
        return self.names[index]

    def tensor(self, index: int) -> Tensor:
        name = self.names[index]
        if name not in self.tensors:
            self.tensors[name] = make_tensor(self.raw.tensors[index], name, self.path)
            self.index_of[name] = index
        return self.tensors[name]

    def derived(self, index: int, tag: str, make: Callable[[Tensor, str], Tensor]) -> str:
        """A constant computed from constant `index` (make(tensor, name)). It replaces the original
        under the same name when this op is the tensor's only user, else it is a new `<name>_<tag>`."""
        key = (index, tag)
        if key not in self._derived:
            original = self.tensor(index)
            name = original.name
            if self._uses[index] > 1:
                name, n = f"{original.name}_{tag}", 1
                while name in self.names or name in self.tensors:
                    n, name = n + 1, f"{original.name}_{tag}{n + 1}"
            self.tensors[name] = make(original, name)
            self._derived[key] = name
        return self._derived[key]


def check_ops(raw: RawModel, names: list[str], path: str) -> None:
    """UnsupportedOpError listing every unsupported op type with its op indices and output names."""
    bad: dict[str, list[str]] = {}
    for op in raw.ops:
        if op.name not in CONVERTERS:
            out = f' "{names[op.outputs[0]]}"' if op.outputs else ""
            bad.setdefault(op.name, []).append(f"#{op.index}{out}")
    if bad:
        listed = ", ".join(f"{kind} (op{'s' if len(where) > 1 else ''} {', '.join(where)})"
                           for kind, where in bad.items())
        raise UnsupportedOpError(f"{path}: unsupported operators: {listed}; microgen supports: "
                                 f"{', '.join(sorted(CONVERTERS))}")


def build_graph(raw: RawModel, name: str, path: str) -> Graph:
    table = TensorBuilder(raw, path)
    check_ops(raw, table.names, path)
    used = sorted({i for op in raw.ops for i in op.inputs + op.outputs if i >= 0}
                  | set(raw.inputs + raw.outputs))
    check_dtypes(raw.tensors, used, table.names, path)
    for i in used:
        table.tensor(i)
    ops: list[Op] = []
    problems: list[str] = []
    for raw_op in raw.ops:
        try:
            op = _convert(raw_op, table, path)
        except UnsupportedOpError as e:
            problems.append(str(e).removeprefix(f"{path}: "))
            continue
        if op is not None:
            ops.append(op)
    if problems:
        raise UnsupportedOpError(f"{path}: unsupported operator variants: {'; '.join(problems)}")
    inputs = tuple(table.names[i] for i in raw.inputs)
    outputs = tuple(table.names[i] for i in raw.outputs)
    _check_order(ops, table.tensors, inputs, outputs, path)
    used_names = set(inputs) | set(outputs) | {n for op in ops for n in op.inputs + op.outputs if n}
    tensors = {n: t for n, t in table.tensors.items() if n in used_names}
    metadata = dict(tflite_tensor_index={n: table.index_of[n] for n in tensors if n in table.index_of},
                    tflite_op_names={op.index: raw.ops[op.index].name for op in ops},
                    tflite_description=raw.description)
    return Graph(name, tensors, tuple(ops), inputs, outputs, source_format="tflite", metadata=metadata)


def _convert(raw_op: RawOp, table: TensorBuilder, path: str) -> Op | None:
    """One TFLite op as an IR op (None when folded into a constant)."""
    ctx = OpContext(raw_op, table, path)
    try:
        result = CONVERTERS[raw_op.name](ctx)
    except MicrogenError:
        raise
    except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, OverflowError, struct.error) as e:
        # A converter met a value its checks did not anticipate: still a file problem, not a crash.
        raise ctx.fail(f"malformed operands ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from e
    if isinstance(result, Folded):
        out = ctx.out()
        data = result.data.reshape(out.shape)
        data.flags.writeable = False
        table.tensors[out.name] = Tensor(out.name, out.shape, out.dtype, out.quant, data)
        return None
    assert isinstance(result, Converted), result
    return Op(result.kind, result.inputs, ctx.out_names(), with_defaults(result.kind, result.attrs),
             name=ctx.out_names()[0], index=raw_op.index)


def _check_order(ops: list[Op], tensors: dict[str, Tensor], inputs: tuple[str, ...], outputs: tuple[str, ...],
                 path: str) -> None:
    """Ops must come in execution order, each tensor written once, never a constant or a graph input."""
    if len(set(inputs)) != len(inputs):
        raise ModelFormatError(f"{path}: a tensor is listed twice among the graph inputs {list(inputs)}")
    for n in inputs:
        if tensors[n].is_const:
            raise ModelFormatError(f"{path}: graph input {n!r} is a constant")
    available = {n for n, t in tensors.items() if t.is_const} | set(inputs)
    for op in ops:
        for n in op.inputs:
            if n and n not in available:
                raise ModelFormatError(f"{path}: {op.where()} {op.kind} reads {n!r} before any op computes "
                                       f"it (ops are not in execution order)")
        for n in op.outputs:
            if n in available:
                raise ModelFormatError(f"{path}: {op.where()} {op.kind} writes {n!r}, which is a constant, a "
                                       f"graph input or another op's output")
            available.add(n)
    for n in outputs:
        if n not in available:
            raise ModelFormatError(f"{path}: graph output {n!r} is never computed")
