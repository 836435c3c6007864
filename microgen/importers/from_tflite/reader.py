"""Read a .tflite FlatBuffer into plain, validated records (RawModel) -- the only module that touches
the FlatBuffer.

Everything is checked before it is trusted: every table, vector and string lies inside the file
(`flatbuf.CheckedTable`), op/tensor/opcode/buffer indices are in range, shapes are non-negative and
not absurdly large, constant buffers lie inside the file. Any violation -- and any exception the
generated accessors raise on garbage -- becomes one ModelFormatError line naming the file, the place
(e.g. "subgraph 0 tensor #12") and the problem.

Records:
- RawTensor: index, name (decoded, control characters replaced), shape, TFLite type code, the raw
  constant bytes (a memoryview into the file, None for activations and zero-byte buffers), and the
  quantization vectors as read.
- RawOp: index, op name ("CONV_2D", "CUSTOM:SignalWindow", "BUILTIN_211" for codes this schema
  does not know), version, input/output tensor indices (-1 = omitted optional input) and, for op
  names in `options_classes`, the builtin options as {accessor name: value} (schema defaults when the
  op carries none).
"""

from __future__ import annotations

import functools
import inspect
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from ...errors import ModelFormatError
from . import flatbuf
from .flatbuf import CorruptFile, checked, child, numpy_field

# TFLM keeps sizes in int32: a tensor larger than this is corrupt, not a model for a microcontroller.
MAX_TENSOR_ELEMENTS = 2**31 - 1
_BUFFER_DATA_SLOT = 4  # vtable slot of Buffer.data (field 0), see tflite/Buffer.py
_OPTION_NAMES = {v: k for k, v in vars(tflite.BuiltinOptions).items() if isinstance(v, int)}


@dataclass
class RawTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    type_code: int
    data: memoryview | None
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0
    custom_quantization: bool = False
    is_variable: bool = False
    sparse: bool = False


@dataclass
class RawOp:
    index: int
    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawModel:
    tensors: list[RawTensor]
    ops: list[RawOp]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""


def read_model(data: bytes, path: str, options_classes: Mapping[str, str]) -> RawModel:
    """Parse and validate subgraph 0 of a TFLite file; raises ModelFormatError on any corruption."""
    reader = _Reader(bytes(data), options_classes)
    try:
        return reader.read()
    except CorruptFile as e:
        problem = str(e)
    except (IndexError, struct.error, ValueError, TypeError, KeyError, OverflowError, AttributeError,
            UnicodeError, MemoryError, RecursionError) as e:
        problem = f"{type(e).__name__}: {e}"
    problem = " ".join(problem.split())[:300]
    raise ModelFormatError(f"{path}: corrupt or truncated TFLite file ({reader.where}: {problem})")


def _text(raw: bytes | None) -> str:
    """A name from the file as one printable line."""
    if not raw:
        return ""
    text = raw.decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else "?" for c in text)


def _ints(values: np.ndarray | None) -> tuple[int, ...]:
    return () if values is None else tuple(int(v) for v in values)


class _Reader:
    def __init__(self, data: bytes, options_classes: Mapping[str, str]) -> None:
        self.data = data
        self.options_classes = options_classes
        self.where = "file header"

    def read(self) -> RawModel:
        if len(self.data) < 8 or self.data[4:8] != b"TFL3":
            raise CorruptFile("no 'TFL3' FlatBuffer identifier")
        self.where = "model"
        model = flatbuf.root(tflite.Model, self.data)
        if model.SubgraphsLength() < 1:
            raise CorruptFile("the model has no subgraph")
        opcodes = self._opcodes(model)
        buffers = self._buffers(model)
        self.where = "subgraph 0"
        sg = child(model.Subgraphs(0))
        n_tensors = sg.TensorsLength()
        tensors = [self._tensor(child(sg.Tensors(i)), i, buffers) for i in range(n_tensors)]
        self.where = "subgraph 0 inputs/outputs"
        inputs, outputs = _ints(numpy_field(sg, "Inputs")), _ints(numpy_field(sg, "Outputs"))
        for i in inputs + outputs:
            if not 0 <= i < n_tensors:
                raise CorruptFile(f"graph input/output tensor index {i} is out of range (0..{n_tensors - 1})")
        ops = [self._op(child(sg.Operators(i)), i, opcodes, n_tensors) for i in range(sg.OperatorsLength())]
        self.where = "model"
        description = _text(model.Description())
        return RawModel(tensors, ops, inputs, outputs, description)

    # -- model-level tables --------------------------------------------------------------------------
    def _opcodes(self, model: tflite.Model) -> list[tuple[str, int]]:
        """(op name, version) per operator code."""
        result = []
        for i in range(model.OperatorCodesLength()):
            self.where = f"operator code #{i}"
            oc = child(model.OperatorCodes(i))
            # Files before schema v3a only set the int8 deprecated_builtin_code; newer ones set both
            # (the deprecated one saturated at 127): the larger is the real code.
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            name = BUILTIN_OPCODE2NAME.get(code, f"BUILTIN_{code}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (_text(oc.CustomCode()) or "?")
            result.append((name, int(oc.Version())))
        return result

    def _buffers(self, model: tflite.Model) -> list[memoryview | None]:
        """The bytes of every buffer (None when empty); data may live inside the FlatBuffer or, for
        files over 2 GB, after it at (offset, size)."""
        view = memoryview(self.data)
        result: list[memoryview | None] = []
        for i in range(model.BuffersLength()):
            self.where = f"buffer #{i}"
            buf = child(model.Buffers(i))
            offset, size = int(buf.Offset()), int(buf.Size())
            if offset > 1:
                if offset + size > len(self.data):
                    raise CorruptFile(f"data at offset {offset} ({size} bytes) runs past the end of the file")
                result.append(view[offset:offset + size] if size else None)
                continue
            start, count = flatbuf.vector_span(buf, _BUFFER_DATA_SLOT)
            result.append(view[start:start + count] if count else None)
        return result

    # -- subgraph content ------------------------------------------------------------------------------
    def _tensor(self, t: tflite.Tensor, index: int, buffers: list[memoryview | None]) -> RawTensor:
        self.where = f"subgraph 0 tensor #{index}"
        name = _text(t.Name())
        if name:
            self.where += f" {name!r}"
        shape = _ints(numpy_field(t, "Shape"))
        if any(d < 0 for d in shape):
            raise CorruptFile(f"negative dimension in shape {list(shape)}")
        if int(np.prod(shape, dtype=object)) > MAX_TENSOR_ELEMENTS:
            raise CorruptFile(f"shape {list(shape)} has more than 2**31 elements")
        buffer_index = int(t.Buffer())
        if buffer_index >= len(buffers):
            raise CorruptFile(f"buffer index {buffer_index} is out of range ({len(buffers)} buffers)")
        raw = RawTensor(index, name, shape, int(t.Type()), buffers[buffer_index],
                        is_variable=bool(t.IsVariable()), sparse=t.Sparsity() is not None)
        q = child(t.Quantization())
        if q is not None:
            scales = numpy_field(q, "Scale")
            raw.scale = () if scales is None else tuple(float(s) for s in scales)
            raw.zero_point = _ints(numpy_field(q, "ZeroPoint"))
            raw.quantized_dimension = int(q.QuantizedDimension())
            raw.custom_quantization = int(q.DetailsType()) != 0
        return raw

    def _op(self, op: tflite.Operator, index: int, opcodes: list[tuple[str, int]], n_tensors: int) -> RawOp:
        self.where = f"op #{index}"
        code_index = int(op.OpcodeIndex())
        if code_index >= len(opcodes):
            raise CorruptFile(f"operator code index {code_index} is out of range ({len(opcodes)} codes)")
        name, version = opcodes[code_index]
        self.where = f"op #{index} ({name})"
        inputs, outputs = _ints(numpy_field(op, "Inputs")), _ints(numpy_field(op, "Outputs"))
        for i in inputs:
            if not -1 <= i < n_tensors:
                raise CorruptFile(f"input tensor index {i} is out of range (0..{n_tensors - 1})")
        for i in outputs:
            if not 0 <= i < n_tensors:
                raise CorruptFile(f"output tensor index {i} is out of range (0..{n_tensors - 1})")
        raw = RawOp(index, name, version, inputs, outputs)
        if name in self.options_classes:
            raw.options = self._options(op, self.options_classes[name])
        return raw

    def _options(self, op: tflite.Operator, class_name: str) -> dict[str, Any]:
        """The builtin options of `op` as {accessor: value}; schema defaults when absent."""
        cls = getattr(tflite, class_name)
        kind = int(op.BuiltinOptionsType())
        if kind == 0:
            opts = _default_options(class_name)
        elif _OPTION_NAMES.get(kind) != class_name:
            raise CorruptFile(f"builtin options of type {_OPTION_NAMES.get(kind, kind)}, "
                              f"expected {class_name}")
        else:
            table = op.BuiltinOptions()
            opts = cls()
            opts.Init(table.Bytes, table.Pos)
            checked(opts)
        values: dict[str, Any] = {}
        for attr in _scalar_accessors(cls):
            values[attr] = getattr(opts, attr)()
        for attr in _vector_accessors(cls):
            values[attr] = numpy_field(opts, attr)
        return values


_DEFAULTS: dict[str, Any] = {}


def _default_options(class_name: str) -> Any:
    if class_name not in _DEFAULTS:
        cls = getattr(tflite, class_name)
        _DEFAULTS[class_name] = flatbuf.empty_table(cls, inspect.getmodule(cls))
    return _DEFAULTS[class_name]


@functools.cache
def _scalar_accessors(cls: type) -> list[str]:
    """The generated accessors of scalar fields: methods taking only self, not vector helpers."""
    names = []
    for attr, fn in vars(cls).items():
        if attr.startswith(("_", "Init", "GetRoot")) or not callable(fn):
            continue
        if attr.endswith(("AsNumpy", "Length", "IsNone")) or hasattr(cls, f"{attr}AsNumpy"):
            continue
        if len(inspect.signature(fn).parameters) == 1:
            names.append(attr)
    return names


@functools.cache
def _vector_accessors(cls: type) -> list[str]:
    return [attr[:-len("AsNumpy")] for attr in vars(cls) if attr.endswith("AsNumpy")]
