"""Reading an ONNX file: protobuf parsing, binding inputs, static shapes, dtype checks, node order.

Everything a corrupt or truncated file can break is checked here and reported as ModelFormatError;
later stages work on a validated `ModelInfo`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...errors import InvalidInputError, ModelFormatError, UnsupportedDTypeError
from ...graph import DType
from .layout import contiguous as _c


ONNX_TO_DTYPE = {
    TensorProto.FLOAT: DType.FLOAT32, TensorProto.UINT8: DType.UINT8, TensorProto.INT8: DType.INT8,
    TensorProto.UINT16: DType.UINT16, TensorProto.INT16: DType.INT16, TensorProto.INT32: DType.INT32,
    TensorProto.INT64: DType.INT64, TensorProto.BOOL: DType.BOOL, TensorProto.FLOAT16: DType.FLOAT16,
    TensorProto.DOUBLE: DType.FLOAT64, TensorProto.UINT32: DType.UINT32, TensorProto.UINT64: DType.UINT64,
}


def type_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"type #{elem_type}"


@dataclass
class Node:
    """One ONNX node with its attributes decoded (strings as str, tensors as TensorProto)."""

    index: int
    op_type: str
    domain: str  # "" for the default ai.onnx domain
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    opset: int
    proto: onnx.NodeProto | None = field(default=None, repr=False, compare=False)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> str:
        """Input i, or '' when it is omitted."""
        return self.inputs[i] if i < len(self.inputs) else ""

    def output(self, i: int) -> str:
        return self.outputs[i] if i < len(self.outputs) else ""

    @property
    def label(self) -> str:
        return self.name or f"{self.op_type}_{self.index}"

    def where(self) -> str:
        kind = f"{self.domain}:{self.op_type}" if self.domain else self.op_type
        return f'node #{self.index} "{self.label}" ({kind})'


@dataclass
class ModelInfo:
    """A validated ONNX model: nodes in execution order, constants decoded, static types."""

    path: str
    name: str
    nodes: list[Node]
    inputs: list[str]                       # real graph inputs (no initializers, no bound ones)
    outputs: list[str]
    initializers: dict[str, np.ndarray]     # includes the bound inputs
    types: dict[str, tuple[int, tuple[int, ...] | None]]   # name -> (elem_type, static shape or None)
    opsets: dict[str, int]
    notes: list[str] = field(default_factory=list)
    consumers: dict[str, list[Node]] = field(default_factory=dict)

    def dtype(self, name: str) -> DType | None:
        t = self.types.get(name)
        return ONNX_TO_DTYPE.get(t[0]) if t else None

    def shape(self, name: str) -> tuple[int, ...] | None:
        t = self.types.get(name)
        return t[1] if t else None


def parse(data: bytes, name: str, path: str, bind: Mapping[str, np.ndarray] | None) -> ModelInfo:
    model = _parse_proto(data, path)
    graph = model.graph
    notes: list[str] = []
    _check_strings(model, path)
    _load_external(model, path)
    init_names = {t.name for t in graph.initializer}
    _bind(model, bind or {}, init_names, path)
    init_names = {t.name for t in graph.initializer}
    _static_inputs(graph, init_names, notes)
    opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): int(o.version) for o in model.opset_import}
    if "" not in opsets:
        opsets[""] = 1 if not model.opset_import else max(opsets.values(), default=1)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                     data_prop=True)
    except Exception as e:  # noqa: BLE001 - inference is best effort; the converters compute shapes
        notes.append(f"onnx shape inference failed ({type(e).__name__}); shapes computed per op")
        inferred = model
    types = _collect_types(inferred.graph)
    _check_dtypes(inferred.graph, types, path)
    initializers = {}
    for t in graph.initializer:
        try:
            arr = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001 - a truncated/corrupt tensor
            raise ModelFormatError(f"{path}: initializer {text(t.name)!r} cannot be decoded: "
                                   f"{one_line(e)}") from None
        initializers[t.name] = _c(arr)
        types[t.name] = (t.data_type, tuple(int(d) for d in arr.shape))
    inputs = [i.name for i in graph.input if i.name not in init_names]
    outputs = [o.name for o in graph.output]
    if not outputs:
        raise ModelFormatError(f"{path}: the ONNX graph has no outputs")
    for n in inputs:
        if types.get(n, (0, None))[1] is None:
            raise ModelFormatError(f"{path}: graph input {n!r} has no tensor type/shape")
    nodes = _nodes(graph, opsets, set(inputs) | set(initializers), path)
    info = ModelInfo(path=path, name=name, nodes=nodes, inputs=inputs, outputs=outputs,
                     initializers=initializers, types=types, opsets=opsets, notes=notes)
    defined = set(inputs) | set(initializers) | {o for n in nodes for o in n.outputs if o}
    for o in outputs:
        if o not in defined:
            raise ModelFormatError(f"{path}: graph output {o!r} is never computed by any node")
    info.consumers = {}
    for node in nodes:
        for i in node.inputs:
            if i:
                info.consumers.setdefault(i, []).append(node)
    return info


def _parse_proto(data: bytes, path: str) -> onnx.ModelProto:
    if not data:
        raise ModelFormatError(f"{path}: the file is empty")
    try:
        model = onnx.ModelProto.FromString(bytes(data))
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError, RuntimeWarning, ...
        raise ModelFormatError(f"{path}: not a valid ONNX file (protobuf parse failed: "
                               f"{one_line(e)})") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        what = "has no graph" if not model.HasField("graph") else "has no ir_version"
        raise ModelFormatError(f"{path}: not a valid ONNX model (the protobuf {what}; "
                               f"truncated or not an ONNX file?)")
    return model


def _check_strings(model: onnx.ModelProto, path: str) -> None:
    """Names must be valid UTF-8 (a corrupt file hands invalid ones over as bytes)."""
    g = model.graph
    fields = [o.domain for o in model.opset_import]
    fields += [x.name for x in (*g.input, *g.output, *g.initializer, *g.value_info)]
    for n in g.node:
        fields += [n.op_type, n.domain, n.name, *n.input, *n.output, *(a.name for a in n.attribute)]
    if any(isinstance(f, bytes) for f in fields):
        raise ModelFormatError(f"{path}: corrupt ONNX file (a name is not valid UTF-8)")


def _load_external(model: onnx.ModelProto, path: str) -> None:
    external = [t.name for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    if not external:
        return
    try:
        from onnx.external_data_helper import load_external_data_for_model
        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except Exception as e:  # noqa: BLE001
        raise ModelFormatError(f"{path}: cannot load external data for {external[0]!r}: "
                               f"{one_line(e)}") from None


def _bind(model: onnx.ModelProto, bind: Mapping[str, np.ndarray], init_names: set[str], path: str) -> None:
    """Turn the graph inputs named in `bind` into initializers."""
    graph = model.graph
    declared = {i.name: i for i in graph.input if i.name not in init_names}
    for key in bind:
        if key not in declared:
            raise InvalidInputError(f"{path}: cannot bind {key!r}: not a graph input "
                                    f"(inputs: {', '.join(declared) or 'none'})")
    keep = [i for i in graph.input if i.name not in bind]
    for key, value in bind.items():
        tt = declared[key].type.tensor_type
        np_dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type) if tt.elem_type in ONNX_TO_DTYPE else None
        arr = np.asarray(value, dtype=np_dtype)
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if tt.HasField("shape") and (len(dims) != arr.ndim or
                                     any(d is not None and d != s for d, s in zip(dims, arr.shape))):
            raise InvalidInputError(f"{path}: bound value for {key!r} has shape {list(arr.shape)}, "
                                    f"the input is declared {dims}")
        graph.initializer.append(numpy_helper.from_array(arr, key))
    del graph.input[:]
    graph.input.extend(keep)


def _static_inputs(graph: onnx.GraphProto, init_names: set[str], notes: list[str]) -> None:
    """Symbolic or unknown input dims become 1 (microgen needs static shapes)."""
    for inp in graph.input:
        if inp.name in init_names or not inp.type.HasField("tensor_type"):
            continue
        tt = inp.type.tensor_type
        if not tt.HasField("shape"):
            continue
        for k, d in enumerate(tt.shape.dim):
            if not d.HasField("dim_value"):
                label = repr(d.dim_param) if d.dim_param else "unknown"
                notes.append(f"input {inp.name!r}: dim {k} is {label}, set to 1")
                d.Clear()
                d.dim_value = 1


def _collect_types(graph: onnx.GraphProto) -> dict[str, tuple[int, tuple[int, ...] | None]]:
    types: dict[str, tuple[int, tuple[int, ...] | None]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0 for d in tt.shape.dim):
            shape = tuple(int(d.dim_value) for d in tt.shape.dim)
        old = types.get(vi.name)
        if old is None or old[1] is None:
            types[vi.name] = (tt.elem_type, shape)
    for t in graph.initializer:
        types[t.name] = (t.data_type, tuple(int(d) for d in t.dims))
    return types


def _check_dtypes(graph: onnx.GraphProto, types: dict, path: str) -> None:
    """Every tensor type in the model must be one microgen handles: one error naming them all."""
    bad: dict[str, str] = {}
    for name, (elem, _) in types.items():
        if elem != TensorProto.UNDEFINED and elem not in ONNX_TO_DTYPE:
            bad.setdefault(name, type_name(elem))
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in ONNX_TO_DTYPE:
                bad.setdefault(node.output[0] if node.output else node.name, type_name(a.t.data_type))
            if node.op_type in ("Cast", "QuantizeLinear") and a.name in ("to", "output_dtype") and a.i \
                    and a.i not in ONNX_TO_DTYPE:
                bad.setdefault(node.output[0] if node.output else node.name, type_name(a.i))
    if bad:
        items = sorted(bad.items())
        listing = ", ".join(f"{n!r} ({t})" for n, t in items[:8]) + (" ..." if len(items) > 8 else "")
        raise UnsupportedDTypeError(f"{path}: unsupported tensor data type(s): {listing}; microgen "
                                    f"handles float16/32/64, bool and 8..64-bit integers")


def text(s: Any) -> str:
    """A protobuf string field as str (corrupt files can carry invalid UTF-8, which arrives as bytes)."""
    return s.decode("utf-8", errors="replace") if isinstance(s, bytes) else str(s)


def one_line(e: BaseException) -> str:
    """An exception's message on one line (error messages are single-line)."""
    return " ".join(str(e).split())


def _decode_attrs(node: onnx.NodeProto, path: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
        except Exception as e:  # noqa: BLE001
            raise ModelFormatError(f"{path}: node {text(node.name)!r}: bad attribute {text(a.name)!r}: "
                                   f"{one_line(e)}") from None
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="replace")
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8", errors="replace") for s in v]
        attrs[a.name] = v
    return attrs


def _nodes(graph: onnx.GraphProto, opsets: dict[str, int], available: set[str], path: str) -> list[Node]:
    """The nodes as `Node`s in a valid execution order (stable topological sort)."""
    protos = list(graph.node)
    produced_by: dict[str, int] = {}
    for k, n in enumerate(protos):
        for o in n.output:
            if o:
                if o in produced_by or o in available:
                    raise ModelFormatError(f'{path}: tensor {o!r} is produced twice (node #{k} "{n.name}")')
                produced_by[o] = k
    for k, n in enumerate(protos):
        if not n.output or not n.output[0]:
            raise ModelFormatError(f'{path}: node #{k} "{n.name}" ({n.op_type}) has no output')
        for i in n.input:
            if i and i not in available and i not in produced_by:
                raise ModelFormatError(f'{path}: node #{k} "{n.name}" ({n.op_type}) reads {i!r}, which no '
                                       f'node, input or initializer defines')
    order: list[int] = []
    done = set(available)
    pending = list(range(len(protos)))
    seen = set(available)
    in_order = True
    for n in protos:  # ONNX requires topological order; keep it when the file has it
        if not all(not i or i in seen for i in n.input):
            in_order = False
            break
        seen.update(n.output)
    if in_order:
        order, pending = pending, []
    while pending:
        rest = [k for k in pending if not all(not i or i in done for i in protos[k].input)]
        ready = [k for k in pending if k not in set(rest)]
        if not ready:
            n = protos[rest[0]]
            raise ModelFormatError(f'{path}: the graph has a cycle through node "{n.name}" ({n.op_type})')
        for k in ready:
            order.append(k)
            done.update(o for o in protos[k].output if o)
        pending = rest
    nodes = []
    for k in order:
        n = protos[k]
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        nodes.append(Node(index=k, op_type=text(n.op_type), domain=text(domain), name=text(n.name),
                          inputs=tuple(text(i) for i in n.input), outputs=tuple(text(o) for o in n.output),
                          attrs=_decode_attrs(n, path),
                          opset=opsets.get(domain, opsets.get("", 1)), proto=n))
    return nodes
