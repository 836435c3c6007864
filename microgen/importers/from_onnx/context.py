"""The conversion context: ONNX values, their IR tensors per layout, and op emission.

Every ONNX tensor is a `Value` with its ONNX shape. Its data can be stored in the IR in several
layouts (`Value.variants`: perm -> IR tensor name, see layout.py); converters ask for the layout they
want with `ctx.get(name, perm)` and the context inserts the TRANSPOSE (or a RESHAPE when only unit
dims move) once, caching the result. Constants are re-laid-out for free.

DequantizeLinear outputs are lazy (`Value.dq_of`): a float op that is fused into a quantized IR op reads
the integer source directly, and a DEQUANTIZE is only emitted when someone needs the float data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedOpError
from ...graph import DType, Graph, Op, QuantParams, Tensor
from ...graph.ops import with_defaults
from . import layout as L
from .layout import contiguous as _c
from .parse import ModelInfo, Node



@dataclass(frozen=True)
class QSource:
    """The integer side of a DequantizeLinear: the integer ONNX value and the DQ's params (axis in
    ONNX dims)."""

    name: str
    quant: QuantParams


@dataclass(eq=False)
class Value:
    """An ONNX tensor: ONNX shape and dtype, constant data (ONNX order) or IR variants per layout."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    const: np.ndarray | None = None
    quant: QuantParams | None = None          # of integer values; axis in ONNX dims
    dq_of: QSource | None = None              # lazily dequantized integer value
    dq_node: Node | None = None               # the DequantizeLinear (names the DEQUANTIZE op)
    variants: dict[tuple[int, ...], str] = field(default_factory=dict)
    extra: dict[Any, str] = field(default_factory=dict)   # other cached IR forms
    used: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)


def quant_in(quant: QuantParams | None, perm: tuple[int, ...], lead: int = 0) -> QuantParams | None:
    """Quant params of a tensor stored in layout `perm` (after `lead` leading unit dims were added)."""
    if quant is None or quant.axis is None:
        return quant
    return dataclasses.replace(quant, axis=L.axis_in(perm, quant.axis + lead))


class Ctx:
    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.values: dict[str, Value] = {}
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.reserved: set[str] = set(info.types) | set(info.initializers) | {
            n for node in info.nodes for n in (*node.inputs, *node.outputs) if n}
        self.graph_outputs = set(info.outputs)
        self.node: Node | None = None
        self.skip: set[int] = set()      # nodes already handled by a fusion
        self._op_count: dict[int, int] = {}

    # -- values -------------------------------------------------------------------------------------
    def val(self, name: str) -> Value:
        assert name in self.values, f"value {name!r} is not defined yet"
        return self.values[name]

    def define(self, name: str, shape, dtype: DType, **kw: Any) -> Value:
        v = Value(name, tuple(int(d) for d in shape), dtype, **kw)
        self.values[name] = v
        return v

    def define_const(self, name: str, data: np.ndarray, quant: QuantParams | None = None) -> Value:
        data = _c(data)
        return self.define(name, data.shape, DType.from_numpy(data.dtype), const=data, quant=quant)

    def alias(self, dst: str, src: str) -> None:
        """ONNX value `dst` is the same data as `src` (Identity, Dropout, ...)."""
        self.values[dst] = self.val(src)

    def is_const(self, name: str) -> bool:
        return self.val(name).const is not None

    def const(self, name: str) -> np.ndarray | None:
        return self.val(name).const if name else None

    def shape(self, name: str) -> tuple[int, ...]:
        return self.val(name).shape

    def layouts(self, name: str) -> list[tuple[int, ...]]:
        """The layouts an activation is available in (first = the one it was produced in)."""
        v = self.val(name)
        if not v.variants and v.dq_of is not None and v.const is None:
            return self.layouts(v.dq_of.name)
        return list(v.variants)

    def prefers_cl(self, name: str) -> bool:
        """True if the activation is stored channels-last (so layout-aware consumers stay there)."""
        v = self.val(name)
        return v.const is None and v.rank >= 3 and L.channels_last(v.rank) in self.layouts(name)

    # -- names and IR tensors ------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.tensors or name in self.reserved or name in self.values:
            name = f"{base}_{k}"
            k += 1
        return name

    def _add_tensor(self, t: Tensor) -> str:
        assert t.name not in self.tensors, t.name
        self.tensors[t.name] = t
        return t.name

    def temp(self, base: str, shape, dtype: DType, quant: QuantParams | None = None) -> str:
        """A new IR activation tensor that is not an ONNX value."""
        return self._add_tensor(Tensor(self.fresh(base), tuple(int(d) for d in shape), dtype, quant))

    def const_tensor(self, base: str, data: np.ndarray, quant: QuantParams | None = None) -> str:
        data = _c(data)
        return self._add_tensor(Tensor(self.fresh(base), tuple(data.shape), DType.from_numpy(data.dtype),
                                       quant, data))

    def _variant_name(self, v: Value, perm: tuple[int, ...]) -> str:
        ident = L.is_identity(perm)
        if (ident or v.name not in self.graph_outputs) and v.name not in self.tensors:
            return v.name
        suffix = "__onnx" if ident else ("__nhwc" if v.rank == 4 else "__cl") \
            if perm == L.channels_last(v.rank) else "__t"
        base = f"{v.name}{suffix}"
        name, k = base, 1
        while name in self.tensors or (name in self.reserved and name != v.name):
            name = f"{base}_{k}"
            k += 1
        return name

    def produce(self, name: str, shape, dtype: DType, perm: tuple[int, ...] | None = None,
                quant: QuantParams | None = None) -> str:
        """The IR tensor a converter writes ONNX value `name` into, stored in layout `perm`.
        `shape` is the ONNX shape; `quant` has its axis in ONNX dims."""
        shape = tuple(int(d) for d in shape)
        perm = tuple(perm) if perm is not None else L.identity(len(shape))
        v = self.values.get(name)
        if v is None or v.name != name:
            v = self.define(name, shape, dtype, quant=quant)
        assert perm not in v.variants, (name, perm)
        ir = self._variant_name(v, perm)
        self._add_tensor(Tensor(ir, L.apply(shape, perm), dtype, quant_in(quant, perm)))
        v.variants[perm] = ir
        return ir

    # -- reading values in a layout ----------------------------------------------------------------
    def get(self, name: str, perm: tuple[int, ...] | None = None) -> str:
        """The IR tensor holding ONNX value `name` in layout `perm` (default: ONNX order)."""
        v = self.val(name)
        perm = tuple(perm) if perm is not None else L.identity(v.rank)
        v.used = True
        if perm in v.variants:
            return v.variants[perm]
        if v.const is not None:
            ir = self._add_tensor(Tensor(self._variant_name(v, perm), L.apply(v.shape, perm), v.dtype,
                                         quant_in(v.quant, perm), _c(v.const.transpose(perm))))
            v.variants[perm] = ir
            return ir
        if not v.variants:
            assert v.dq_of is not None, f"value {name!r} has no data"
            self._materialize_dq(v)
            if perm in v.variants:
                return v.variants[perm]
        src_perm = next(iter(v.variants))
        src = v.variants[src_perm]
        out = self._variant_name(v, perm)
        self._add_tensor(Tensor(out, L.apply(v.shape, perm), v.dtype, quant_in(v.quant, perm)))
        self.relayout(src, out, L.relative(src_perm, perm))
        v.variants[perm] = out
        return out

    def relayout(self, src: str, out: str, perm: tuple[int, ...]) -> None:
        """TRANSPOSE src into out, or RESHAPE when only unit dims move."""
        if L.transpose_is_reshape(self.tensors[src].shape, perm):
            self.emit("RESHAPE", [src], [out])
        else:
            self.emit("TRANSPOSE", [src], [out], perm=tuple(perm))

    def _materialize_dq(self, v: Value) -> None:
        """Emit the DEQUANTIZE of a lazy DequantizeLinear output, in its source's first layout."""
        src_layouts = self.layouts(v.dq_of.name)
        perm = src_layouts[0] if src_layouts else L.identity(v.rank)
        consumer, self.node = self.node, v.dq_node or self.node
        try:
            src = self.get_q(v.dq_of, perm)
            out = self._variant_name(v, perm)
            self._add_tensor(Tensor(out, L.apply(v.shape, perm), v.dtype))
            v.variants[perm] = out
            self.emit("DEQUANTIZE", [src], [out])
        finally:
            self.node = consumer

    def get_broadcast(self, name: str, rank: int, perm: tuple[int, ...]) -> str:
        """Value `name` for an elementwise op of output rank `rank` computed in layout `perm`: lower
        ranks get leading unit dims first (ONNX broadcasting aligns trailing dims)."""
        v = self.val(name)
        if L.is_identity(perm) or v.rank == rank:
            return self.get(name, perm if v.rank == rank else None)
        key = ("bc", rank, perm)
        if key not in v.extra:
            lead = rank - v.rank
            full = (1,) * lead + v.shape
            if v.const is not None:
                data = v.const.reshape(full).transpose(perm)
                v.extra[key] = self.const_tensor(f"{name}__bc", data, quant_in(v.quant, perm, lead))
            else:
                src = self.get(name)
                mid = self.temp(f"{name}__r{rank}", full, v.dtype, quant_in(v.quant, L.identity(rank), lead))
                self.emit("RESHAPE", [src], [mid])
                out = self.temp(f"{name}__bc", L.apply(full, perm), v.dtype, quant_in(v.quant, perm, lead))
                self.relayout(mid, out, perm)
                v.extra[key] = out
        return v.extra[key]

    def get_q(self, qs: QSource, perm: tuple[int, ...] | None = None, rank: int | None = None) -> str:
        """The integer value `qs.name` as an IR tensor carrying quant params `qs.quant`, in layout
        `perm` (and expanded to `rank` for broadcasting)."""
        v = self.val(qs.name)
        rank = v.rank if rank is None else rank
        perm = tuple(perm) if perm is not None else L.identity(rank)
        lead = rank - v.rank
        key = ("q", perm, rank, qs.quant)
        if key in v.extra:
            return v.extra[key]
        if v.const is not None:
            data = _c(v.const.reshape((1,) * lead + v.shape).transpose(perm))
            name = self._variant_name(v, perm) if lead == 0 else self.fresh(f"{qs.name}__q")
            ir = self._add_tensor(Tensor(name, data.shape, v.dtype, quant_in(qs.quant, perm, lead), data))
        elif v.quant == qs.quant and lead == 0:
            return self.get(qs.name, perm)
        elif v.quant is None and lead == 0 and qs.name in self.info.inputs and not v.used:
            # A graph input that only a DequantizeLinear reads: give the input itself the params.
            v.quant = qs.quant
            for p, ir_name in v.variants.items():
                self.tensors[ir_name] = dataclasses.replace(self.tensors[ir_name], quant=quant_in(v.quant, p))
            return self.get(qs.name, perm)
        else:
            # Same integers read with other params (or none): a RESHAPE copy, expanded to `rank`.
            if lead == 0 or L.is_identity(perm):
                src = self.get(qs.name, perm if lead == 0 else None)
            else:
                src = self.get_broadcast(qs.name, rank, perm)
            shape = L.apply((1,) * lead + v.shape, perm)
            ir = self.temp(f"{qs.name}__q", shape, v.dtype, quant_in(qs.quant, perm, lead))
            self.emit("RESHAPE", [src], [ir])
        v.extra[key] = ir
        return ir

    # -- ops -----------------------------------------------------------------------------------------
    def emit(self, kind: str, inputs, outputs, **attrs: Any) -> Op:
        node = self.node
        index = node.index if node is not None else -1
        k = self._op_count.get(index, 0)
        self._op_count[index] = k + 1
        label = node.label if node is not None else "io"
        name = label if k == 0 else f"{label}/{k}"
        op = Op(kind, tuple(inputs), tuple(outputs), with_defaults(kind, attrs), name=name, index=index)
        self.ops.append(op)
        return op

    def unsupported(self, what: str) -> UnsupportedOpError:
        where = self.node.where() if self.node is not None else "model"
        return UnsupportedOpError(f"{self.info.path}: {where}: {what}")

    # -- result ------------------------------------------------------------------------------------
    def finish(self, metadata: dict[str, Any]) -> Graph:
        """Graph outputs in ONNX order under their ONNX names (copies where an output aliases another
        tensor or is a constant)."""
        self.node = None
        rename: dict[str, str] = {}
        for o in self.info.outputs:
            v = self.val(o)
            if v.const is not None:
                src = self.const_tensor(f"{o}__const", v.const, v.quant)
            else:
                src = self.get(o)
            src = rename.get(src, src)
            if src == o:
                continue
            assert o not in self.tensors, o
            produced = not self.tensors[src].is_const and src not in self.info.inputs
            if produced and src not in self.graph_outputs:
                rename[src] = o  # an op's result that only got another ONNX name (Transpose, Identity)
                self.tensors[o] = dataclasses.replace(self.tensors.pop(src), name=o)
            else:
                self._add_tensor(dataclasses.replace(self.tensors[src], name=o, data=None))
                self.emit("RESHAPE", [src], [o])
        if rename:
            self.ops = [dataclasses.replace(op, inputs=tuple(rename.get(n, n) for n in op.inputs),
                                            outputs=tuple(rename.get(n, n) for n in op.outputs))
                        for op in self.ops]
        graph = Graph(name=self.info.name, tensors=dict(self.tensors), ops=tuple(self.ops),
                      inputs=tuple(self.info.inputs), outputs=tuple(self.info.outputs), source_format="onnx",
                      metadata=metadata)
        return graph.with_ops(graph.ops)
