"""Constant folding: Constant nodes, Shape/Size of static shapes, and any standard op whose inputs are
all constant (evaluated with onnx's reference implementation). QuantizeLinear/DequantizeLinear are
folded by their converters, which keep the integer data and params for QDQ fusion."""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from ...errors import ModelFormatError, UnsupportedOpError
from .parse import Node, one_line
from .layout import contiguous as _c


NO_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
           "Bernoulli", "If", "Loop", "Scan", "Constant", "QuantizeLinear", "DequantizeLinear", "Dropout"}
SHAPE_OPS = {"Shape", "Size"}


def foldable(node: Node, inputs_const: bool) -> bool:
    """Whether the node becomes a constant (given whether all its non-empty inputs are constant)."""
    if node.domain:
        return False
    if node.op_type in SHAPE_OPS:
        return True
    return inputs_const and bool([i for i in node.inputs if i]) and node.op_type not in NO_FOLD


def constant_value(node: Node, path: str) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        try:
            return _c(numpy_helper.to_array(a["value"]))
        except Exception as e:  # noqa: BLE001 - corrupt tensor
            raise ModelFormatError(f"{path}: {node.where()}: cannot decode the constant: "
                                   f"{one_line(e)}") from None
    if "value_float" in a:
        return np.array(a["value_float"], np.float32)
    if "value_floats" in a:
        return np.array(a["value_floats"], np.float32)
    if "value_int" in a:
        return np.array(a["value_int"], np.int64)
    if "value_ints" in a:
        return np.array(a["value_ints"], np.int64)
    raise UnsupportedOpError(f"{path}: {node.where()}: Constant with "
                             f"{', '.join(a) or 'no value'} (string/sparse constants are not supported)")


def shape_value(node: Node, shape: tuple[int, ...]) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(int(np.prod(shape, dtype=np.int64)), np.int64)
    start, end = int(node.attr("start", 0)), node.attr("end")
    dims = list(shape)[start:] if end is None else list(shape)[start:int(end)]
    return np.array(dims, np.int64)


def evaluate(node: Node, inputs: dict[str, np.ndarray], path: str) -> list[np.ndarray]:
    """Run one node on constant inputs with onnx.reference."""
    from onnx.reference import ReferenceEvaluator
    try:
        ev = ReferenceEvaluator(node.proto, opsets={"": node.opset})
        outs = ev.run(None, inputs)
    except Exception as e:  # noqa: BLE001 - whatever the reference implementation raises
        raise UnsupportedOpError(f"{path}: {node.where()}: cannot evaluate this constant expression: "
                                 f"{type(e).__name__}: {one_line(e)}") from None
    return [_c(np.asarray(o)) for o in outs]
