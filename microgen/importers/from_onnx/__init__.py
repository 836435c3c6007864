"""The ONNX importer: `load_onnx(data, name, path, bind)` -> Graph (NHWC IR).

Stages:
1. parse.py: protobuf parsing, `bind` (graph inputs that become constants), symbolic input dims set to 1,
   onnx shape inference, dtype check (UnsupportedDTypeError naming the tensors), node order.
2. check: every node that is not constant-folded must have a converter whose pre-check accepts it;
   all problems are reported in one UnsupportedOpError.
3. convert: one converter per op type (ops_*.py, registered in common.TABLE); context.py tracks the
   layout (NCHW -> NHWC) of every value, qdq.py fuses DequantizeLinear -> op -> QuantizeLinear.
   The graph interface keeps the ONNX tensors (names, shapes, dtypes); TRANSPOSEs are inserted
   where a channels-last tensor meets the interface or an op that needs the ONNX order.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ...errors import MicrogenError, ModelFormatError, UnsupportedOpError
from ...graph import Graph, verify
from . import ops_conv, ops_elementwise, ops_matmul, ops_pool, ops_quant, ops_shape  # noqa: F401 (registers)
from .common import TABLE, CheckView
from .context import Ctx
from .fold import SHAPE_OPS, constant_value, evaluate, foldable, shape_value
from .parse import ONNX_TO_DTYPE, ModelInfo, one_line, parse


def load_onnx(data: bytes, name: str, path: str, bind: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Import ONNX model bytes (`path` is only used in messages and for external data) into a verified
    Graph. `bind`: graph inputs (by name) that become constants. Raises ModelFormatError (corrupt or
    inconsistent file), UnsupportedDTypeError, UnsupportedOpError (every unsupported node at once),
    InvalidInputError (bad `bind`)."""
    info = parse(data, name, path, bind)
    check_support(info)
    return verify(convert(info))


# Converters that turn constant inputs into a constant output themselves.
PASS_CONST = ("QuantizeLinear", "DequantizeLinear", "Identity", "Dropout", "Cast")


def check_support(info: ModelInfo) -> None:
    """Raise one UnsupportedOpError listing every node microgen cannot convert."""
    const = set(info.initializers)
    view = CheckView(info, const)
    problems: list[str] = []
    for node in info.nodes:
        outs = [o for o in node.outputs if o]
        ins_const = all(i in const for i in node.inputs if i)
        if (node.op_type == "Constant" and not node.domain) or foldable(node, ins_const):
            const.update(outs)
            continue
        conv = TABLE.get((node.domain, node.op_type))
        if conv is None:
            kind = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
            problems.append(f"{node.where()}: operator {kind} is not supported")
            continue
        reason = conv.check(view, node) if conv.check is not None else None
        if reason:
            problems.append(f"{node.where()}: {reason}")
        if ins_const and node.op_type in PASS_CONST:
            const.update(outs)
    if problems:
        n = len(problems)
        raise UnsupportedOpError(f"{info.path}: {n} unsupported operator{'s' if n > 1 else ''}: "
                                 + "; ".join(problems))


def convert(info: ModelInfo) -> Graph:
    ctx = Ctx(info)
    for name in info.inputs:
        elem, shape = info.types[name]
        ctx.produce(name, shape, ONNX_TO_DTYPE[elem])
    for name, arr in info.initializers.items():
        ctx.define_const(name, arr)
    for node in info.nodes:
        if node.index in ctx.skip:
            continue
        ctx.node = node
        outs = [o for o in node.outputs if o]
        if node.op_type == "Constant" and not node.domain:
            ctx.define_const(outs[0], constant_value(node, info.path))
            continue
        ins = [i for i in node.inputs if i]
        if foldable(node, all(ctx.is_const(i) for i in ins)):
            if node.op_type in SHAPE_OPS:
                values = [shape_value(node, ctx.shape(node.input(0)))]
            else:
                values = evaluate(node, {i: ctx.const(i) for i in ins}, info.path)
            for o, arr in zip(node.outputs, values):
                if o:
                    ctx.define_const(o, arr)
            continue
        try:
            TABLE[(node.domain, node.op_type)].fn(ctx, node)
        except (MicrogenError, AssertionError):
            raise
        except Exception as e:  # noqa: BLE001 - malformed attributes/shapes of a corrupt model
            raise ModelFormatError(f"{info.path}: {node.where()}: cannot convert this node "
                                   f"({type(e).__name__}: {one_line(e)}); is the model valid?") from None
    _compare_inferred(ctx)
    meta = {"notes": list(info.notes), "opsets": dict(info.opsets)}
    return ctx.finish(meta)


def _compare_inferred(ctx: Ctx) -> None:
    """Note (not fail on) values whose converted shape differs from onnx shape inference."""
    for name, v in ctx.values.items():
        t = ctx.info.types.get(name)
        if t is not None and t[1] is not None and v.name == name and tuple(t[1]) != v.shape:
            ctx.info.notes.append(f"value {name!r}: converted shape {list(v.shape)}, onnx shape inference "
                                  f"says {list(t[1])}")


__all__ = ["load_onnx", "check_support", "convert"]
