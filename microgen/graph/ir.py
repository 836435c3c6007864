"""The graph IR: typed tensors with static shapes, and ops in execution order.

Conventions (every importer produces them, every later stage relies on them):

- Layout is NHWC for every 4-D activation (ONNX NCHW models are converted on import).
  Weights: CONV_2D / TRANSPOSE_CONV [out_c, kh, kw, in_c / groups], DEPTHWISE_CONV_2D
  [1, kh, kw, out_c], FULLY_CONNECTED [out_c, in_features].
- Quantization: real = scale * (q - zero_point). Per-tensor params have one scale and one zero point
  and `axis is None`; per-axis params have one per slice along `axis`.
- Shapes are static; the batch dimension is part of the shape (usually 1).
- `Op.inputs` uses the empty string for an omitted optional input (e.g. a conv without bias).
- `Graph.ops` is in a valid execution order (producers before consumers).

IR records are frozen dataclasses; derive new ones with `dataclasses.replace` or `Graph.with_ops`.
Constant data (`Tensor.data`) is a numpy array that nobody mutates.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np


class DType(str, enum.Enum):
    """Element types that can appear in a graph."""

    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT16 = "float16"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"

    @property
    def np(self) -> np.dtype:
        return np.dtype(self.value)

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT16, DType.FLOAT32, DType.FLOAT64)

    @property
    def is_int(self) -> bool:
        return not self.is_float and self is not DType.BOOL

    @property
    def c_type(self) -> str:
        """The C99 type name used by the emitter."""
        return _C_TYPES[self]

    @staticmethod
    def from_numpy(dt: Any) -> "DType":
        return DType(np.dtype(dt).name)

    def limits(self) -> tuple[int, int]:
        """Smallest and largest value of an integer type."""
        info = np.iinfo(self.np)
        return int(info.min), int(info.max)


_C_TYPES = {
    DType.INT8: "int8_t", DType.UINT8: "uint8_t", DType.INT16: "int16_t", DType.UINT16: "uint16_t",
    DType.INT32: "int32_t", DType.UINT32: "uint32_t", DType.INT64: "int64_t", DType.UINT64: "uint64_t",
    DType.FLOAT16: "uint16_t", DType.FLOAT32: "float", DType.FLOAT64: "double", DType.BOOL: "uint8_t",
}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    `axis` is None for per-tensor parameters (one scale, one zero point), else the dimension the
    per-channel `scale`/`zero_point` tuples run along.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        assert len(self.scale) == len(self.zero_point) and len(self.scale) >= 1, self
        assert self.axis is not None or len(self.scale) == 1, self

    @staticmethod
    def per_tensor(scale: float, zero_point: int = 0) -> "QuantParams":
        return QuantParams((float(scale),), (int(zero_point),), None)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def s(self) -> float:
        """The scale of per-tensor params."""
        assert self.axis is None, "per-axis params have no single scale"
        return self.scale[0]

    @property
    def zp(self) -> int:
        """The zero point of per-tensor params."""
        assert self.axis is None, "per-axis params have no single zero point"
        return self.zero_point[0]

    def scales_array(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64)

    def __str__(self) -> str:
        if self.axis is None:
            return f"s={self.scale[0]:.6g} zp={self.zero_point[0]}"
        return f"per-axis({len(self.scale)}, axis={self.axis})"


@dataclass(frozen=True, eq=False)
class Tensor:
    """A value in the graph: an activation (data is None) or a constant (data holds it)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    quant: QuantParams | None = None
    data: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.data is not None:
            assert tuple(self.data.shape) == tuple(self.shape), (self.name, self.data.shape, self.shape)
            assert self.data.dtype == self.dtype.np, (self.name, self.data.dtype, self.dtype)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_quantized(self) -> bool:
        return self.quant is not None and self.dtype.is_int

    def describe(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        q = f" {self.quant}" if self.quant is not None else ""
        return f"{self.dtype.value}[{shape}]{q}"


@dataclass(frozen=True, eq=False)
class Op:
    """One operator. `kind` is a name from `microgen.graph.ops.OPS`; `attrs` holds its typed attributes.

    `name` is the op's name in the source model (or a generated one) and `index` its position in the
    source model's op list: both are used in messages so a user can find the op.
    """

    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    index: int = -1

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def where(self) -> str:
        """Where the op is, for messages: 'op #3 "conv1"'."""
        label = f"op #{self.index}" if self.index >= 0 else "op"
        return f'{label} "{self.name}"' if self.name else label


@dataclass(frozen=True, eq=False)
class Graph:
    """A whole model: tensors by name, ops in execution order, graph inputs and outputs by name."""

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    source_format: str = ""  # "tflite", "onnx", or "" for graphs built in code
    metadata: Mapping[str, Any] = field(default_factory=dict)

    # -- lookups -----------------------------------------------------------------------------------
    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[n] for n in self.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[n] for n in self.outputs]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[n] if n else None for n in op.inputs]

    def op_outputs(self, op: Op) -> list[Tensor]:
        return [self.tensors[n] for n in op.outputs]

    def producers(self) -> dict[str, Op]:
        return {out: op for op in self.ops for out in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        result: dict[str, list[Op]] = {name: [] for name in self.tensors}
        for op in self.ops:
            for name in op.inputs:
                if name:
                    result[name].append(op)
        return result

    def activations(self) -> list[Tensor]:
        """Non-constant tensors: graph inputs and everything the ops compute."""
        return [t for t in self.tensors.values() if not t.is_const]

    # -- derivation ------------------------------------------------------------------------------
    def with_ops(self, ops: Iterable[Op], tensors: Mapping[str, Tensor] | None = None, **changes: Any) -> "Graph":
        """A new graph with these ops (and tensors); tensors nobody uses any more are dropped."""
        ops = tuple(ops)
        pool = dict(self.tensors if tensors is None else tensors)
        used = set(changes.get("inputs", self.inputs)) | set(changes.get("outputs", self.outputs))
        for op in ops:
            used.update(n for n in op.inputs if n)
            used.update(op.outputs)
        kept = {name: t for name, t in pool.items() if name in used}
        return dataclasses.replace(self, ops=ops, tensors=kept, **changes)

    # -- text form -------------------------------------------------------------------------------
    def dump(self) -> str:
        """A readable listing of the graph (used by `--dump-ir` and in pass tests)."""
        lines = [f"graph {self.name} ({self.source_format or 'built'})"]
        for name in self.inputs:
            lines.append(f"  input  %{name}: {self.tensors[name].describe()}")
        for op in self.ops:
            attrs = ", ".join(f"{k}={_short(v)}" for k, v in op.attrs.items())
            ins = ", ".join(f"%{n}" if n else "-" for n in op.inputs)
            outs = ", ".join(f"%{n}: {self.tensors[n].describe()}" for n in op.outputs)
            lines.append(f"  {outs} = {op.kind}({ins}){' {' + attrs + '}' if attrs else ''}")
        for name in self.outputs:
            lines.append(f"  output %{name}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}"
    return repr(value)


def unique_name(hint: str, taken: set[str]) -> str:
    """`hint`, or `hint_2`, `hint_3`, ... whichever is not in `taken`; the result is added to `taken`."""
    name, k = hint, 1
    while name in taken:
        k += 1
        name = f"{hint}_{k}"
    taken.add(name)
    return name
