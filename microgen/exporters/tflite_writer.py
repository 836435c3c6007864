"""Serialise a Graph as a TFLite FlatBuffer (schema version 3, file identifier 'TFL3').

Layout of the written model:
- one subgraph named 'main'; its tensors are the graph's tensors that an op, a graph input or a
  graph output uses (in `graph.tensors` order), then the constants / activations the lowering adds
  (shape, perm, axes, paddings operands, inserted PAD outputs) in the order they were made;
- buffer 0 is the empty sentinel and every activation tensor points at it; each constant tensor has
  its own buffer holding its raw little-endian row-major bytes (16-byte aligned);
- quantization: float32 scales, int64 zero points, quantized_dimension = the per-axis `axis`. A
  graph whose scales are not float32 values computes slightly differently once written (TFLM derives
  its multipliers from the stored float32): round scales with np.float32 before writing (the
  quantizer and examples/make_demo_model.py do);
- operator codes are deduplicated by (builtin, version), in order of first use.

The bytes are a pure function of the graph: the same graph gives identical bytes.
"""

from __future__ import annotations

import os

import flatbuffers
import numpy as np

from ..errors import UnsupportedDTypeError, UnsupportedOpError
from ..graph import DType, Graph, QuantParams, Tensor, verify
from ..graph.ir import unique_name
from . import tflite_schema as S
from .tflite_ops import TflOp, lower


class Context:
    """The tensors a lowering adds, with names unique across the whole graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.tensors: dict[str, Tensor] = {}
        self._taken = set(graph.tensors)

    def _name(self, hint: str) -> str:
        return unique_name(hint, self._taken)

    def const(self, hint: str, data: np.ndarray, quant: QuantParams | None = None) -> str:
        name = self._name(hint)
        data = np.ascontiguousarray(data)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in data.shape), DType.from_numpy(data.dtype),
                                    quant, data)
        return name

    def activation(self, hint: str, shape: tuple[int, ...], dtype: DType, quant: QuantParams | None) -> str:
        name = self._name(hint)
        self.tensors[name] = Tensor(name, tuple(shape), dtype, quant)
        return name


def lower_graph(graph: Graph) -> tuple[list[TflOp], list[Tensor]]:
    """The TFLite operators and the tensor list (in file order) for a graph.

    Every op TFLite cannot express is reported in one UnsupportedOpError.
    """
    verify(graph)
    ctx = Context(graph)
    ops: list[TflOp] = []
    errors: list[str] = []
    for op in graph.ops:
        try:
            ops.extend(lower(op, graph, ctx))
        except UnsupportedOpError as e:
            errors.append(str(e))
    if errors:
        raise UnsupportedOpError(f"graph {graph.name!r} cannot be written as TFLite: " + "; ".join(errors))
    used = set(graph.inputs) | set(graph.outputs)
    for op in ops:
        used.update(n for n in op.inputs if n)
        used.update(op.outputs)
    tensors = [t for name, t in graph.tensors.items() if name in used]
    tensors += [t for name, t in ctx.tensors.items() if name in used]
    bad = sorted({t.dtype.value for t in tensors if t.dtype not in S.TENSOR_TYPES})
    if bad:
        raise UnsupportedDTypeError(f"graph {graph.name!r}: TFLite has no tensor type for {', '.join(bad)}")
    return ops, tensors


def tflite_bytes(graph: Graph, description: str = "microgen") -> bytes:
    """The .tflite FlatBuffer of a graph (see the module docstring for the layout)."""
    ops, tensors = lower_graph(graph)
    index = {t.name: i for i, t in enumerate(tensors)}
    b = flatbuffers.Builder(1024 + sum(t.nbytes for t in tensors if t.is_const))

    # Buffers first: the builder writes back to front, so the bulk data ends up at the end of the file.
    buffer_of: dict[str, int] = {}
    buffers = [S.table(b, S.BUFFER, {}, {})]
    for t in tensors:
        if t.is_const:
            raw = np.ascontiguousarray(t.data).astype(t.data.dtype.newbyteorder("<"), copy=False).tobytes()
            data = S.bytes_vector(b, raw)
            buffer_of[t.name] = len(buffers)
            buffers.append(S.table(b, S.BUFFER, {}, dict(data=data)))

    tensor_offs = [_tensor(b, t, buffer_of.get(t.name, 0)) for t in tensors]

    codes: dict[tuple[str, int], int] = {}
    op_offs = []
    for op in ops:
        opcode = codes.setdefault((op.builtin, op.version), len(codes))
        ins = S.int32_vector(b, [index[n] if n else -1 for n in op.inputs])
        outs = S.int32_vector(b, [index[n] for n in op.outputs])
        tag, opts = (0, None) if op.options is None else S.options_table(b, *op.options)
        scalars = dict(opcode_index=("u32", opcode), builtin_options_type=("u8", tag))
        op_offs.append(S.table(b, S.OPERATOR, scalars, dict(inputs=ins, outputs=outs, builtin_options=opts)))

    sg_fields = dict(
        tensors=S.offset_vector(b, tensor_offs),
        inputs=S.int32_vector(b, [index[n] for n in graph.inputs]),
        outputs=S.int32_vector(b, [index[n] for n in graph.outputs]),
        operators=S.offset_vector(b, op_offs),
        name=b.CreateString("main"),
    )
    subgraph = S.table(b, S.SUBGRAPH, {}, sg_fields)

    code_offs = []
    for builtin, version in codes:
        code = S.builtin_code(builtin)
        code_offs.append(S.table(b, S.OPERATOR_CODE, dict(
            deprecated_builtin_code=("i8", min(code, 127)), version=("i32", version),
            builtin_code=("i32", code)), {}))

    model_fields = dict(
        operator_codes=S.offset_vector(b, code_offs),
        subgraphs=S.offset_vector(b, [subgraph]),
        description=b.CreateString(description),
        buffers=S.offset_vector(b, buffers),
    )
    model = S.table(b, S.MODEL, dict(version=("u32", S.SCHEMA_VERSION)), model_fields)
    b.Finish(model, file_identifier=S.FILE_IDENTIFIER)
    return bytes(b.Output())


def _tensor(b: flatbuffers.Builder, t: Tensor, buffer: int) -> int:
    name = b.CreateString(t.name)
    shape = S.int32_vector(b, t.shape)
    quant = None
    if t.quant is not None:
        scale = S.numpy_vector(b, np.asarray(t.quant.scale, dtype=np.float32))
        zero_point = S.numpy_vector(b, np.asarray(t.quant.zero_point, dtype=np.int64))
        quant = S.table(b, S.QUANTIZATION, dict(quantized_dimension=("i32", t.quant.axis or 0)),
                        dict(scale=scale, zero_point=zero_point))
    return S.table(b, S.TENSOR, dict(type=("i8", S.TENSOR_TYPES[t.dtype]), buffer=("u32", buffer)),
                   dict(shape=shape, name=name, quantization=quant))


def write_tflite(graph: Graph, path: str | os.PathLike, description: str = "microgen") -> None:
    """Write a graph as a .tflite file (the bytes of `tflite_bytes`)."""
    data = tflite_bytes(graph, description)
    with open(path, "wb") as f:
        f.write(data)
