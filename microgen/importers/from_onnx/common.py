"""Helpers shared by the converters: the converter table, quant params from ONNX tensors, conv/pool
geometry, elementwise layout choice and activation fusion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ...errors import ModelFormatError
from ...graph import DType, QuantParams
from . import layout as L
from .context import Ctx
from .parse import ModelInfo, Node


# -- the converter table ----------------------------------------------------------------------------
class CheckView:
    """What a check function may look at before conversion: constness (after constant propagation),
    inferred shapes/dtypes, consumers."""

    def __init__(self, info: ModelInfo, const: set[str]) -> None:
        self.info = info
        self.const = const

    def is_const(self, name: str) -> bool:
        return not name or name in self.const

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.info.shape(name)

    def rank(self, name: str) -> int | None:
        s = self.info.shape(name)
        return None if s is None else len(s)

    def dtype(self, name: str) -> DType | None:
        return self.info.dtype(name)

    def used(self, name: str) -> bool:
        return bool(name) and (name in self.info.consumers or name in self.info.outputs)


CheckFn = Callable[[CheckView, Node], "str | None"]


@dataclass(frozen=True)
class Converter:
    fn: Callable[[Ctx, Node], None]
    check: CheckFn | None = None


TABLE: dict[tuple[str, str], Converter] = {}


def converter(*op_types: str, domain: str = "", check: CheckFn | None = None):
    """Register `fn(ctx, node)` as the converter of these op types (and `check` as its pre-check, which
    returns the reason a node is unsupported, or None)."""
    def register(fn):
        for t in op_types:
            assert (domain, t) not in TABLE, t
            TABLE[(domain, t)] = Converter(fn, check)
        return fn
    return register


def need_const(view: CheckView, node: Node, indices: Sequence[int], what: str) -> str | None:
    for i in indices:
        name = node.input(i)
        if name and not view.is_const(name):
            return f"non-constant {what} input {name!r}"
    return None


# -- quantization parameters ------------------------------------------------------------------------
def make_quant(ctx: Ctx, scale: np.ndarray, zp: np.ndarray | None, axis: int, shape: Sequence[int],
               what: str) -> QuantParams:
    """QuantParams (axis in ONNX dims) from an ONNX scale / zero point pair (per-tensor when the scale
    has one element)."""
    s = np.asarray(scale).astype(np.float64).ravel()
    z = np.zeros(1, np.int64) if zp is None else np.asarray(zp).astype(np.int64).ravel()
    if not s.size or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ModelFormatError(f"{ctx.info.path}: {ctx.node.where()}: {what} must be positive and finite "
                               f"(got {s[:4].tolist()})")
    if s.size == 1 and z.size <= 1:
        return QuantParams.per_tensor(float(s[0]), int(z[0]) if z.size else 0)
    axis = L.normalize_axis(int(axis), len(shape))
    if not 0 <= axis < len(shape) or s.size != shape[axis] or z.size not in (1, s.size):
        raise ModelFormatError(f"{ctx.info.path}: {ctx.node.where()}: {what}: {s.size} scales do not "
                               f"match axis {axis} of shape {list(shape)}")
    if z.size == 1:
        z = np.repeat(z, s.size)
    return QuantParams(tuple(float(v) for v in s), tuple(int(v) for v in z), axis)


def quant_shape(quant: QuantParams, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point as arrays that broadcast against an ONNX tensor of `rank`."""
    s = np.asarray(quant.scale, np.float64)
    z = np.asarray(quant.zero_point, np.int64)
    if quant.axis is None:
        return s.reshape(()), z.reshape(())
    shape = [1] * rank
    shape[quant.axis] = -1
    return s.reshape(shape), z.reshape(shape)


def dequantize(q: np.ndarray, quant: QuantParams, dtype=np.float32) -> np.ndarray:
    """ONNX DequantizeLinear on a constant: (x - zp) * scale computed in float32 (as the ONNX
    reference does), then cast to the output type."""
    s, z = quant_shape(quant, q.ndim)
    return ((q.astype(np.float32) - z.astype(np.float32)) * s.astype(np.float32)).astype(dtype)


def quantize(x: np.ndarray, quant: QuantParams, dtype: DType) -> np.ndarray:
    """ONNX QuantizeLinear on a constant: saturate(rint(x / scale) + zp) (round half to even)."""
    s, z = quant_shape(quant, x.ndim)
    lo, hi = dtype.limits()
    with np.errstate(all="ignore"):  # NaN/inf inputs saturate like the clip below
        q = np.rint(np.nan_to_num(x.astype(np.float32) / s.astype(np.float32))).clip(-2**62, 2**62)
    q = q.astype(np.int64) + z
    return np.clip(q, lo, hi).astype(dtype.np)


def round_half_even_int32(x: np.ndarray) -> np.ndarray | None:
    r = np.rint(x)
    if r.size and (r.min() < -2**31 or r.max() > 2**31 - 1):
        return None
    return r.astype(np.int32)


# -- geometry ---------------------------------------------------------------------------------------
def ints(node: Node, key: str, n: int, default: int) -> tuple[int, ...]:
    v = node.attr(key)
    return tuple(int(x) for x in v) if v else (default,) * n


def window_geometry(ctx: Ctx, node: Node, in_spatial: Sequence[int], kernel: Sequence[int], ceil: bool = False
                    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Strides, dilations, resolved pads (begin..., end...) and output sizes of a Conv/pool node.

    With ceil_mode the output can need cells past the explicit end padding (the IR pools derive that
    from the output shape); `pads` are the explicit (or auto_pad-resolved) ones."""
    n = len(in_spatial)
    strides = ints(node, "strides", n, 1)
    dil = ints(node, "dilations", n, 1)
    auto = node.attr("auto_pad", "NOTSET") or "NOTSET"
    explicit = ints(node, "pads", 2 * n, 0)
    if len(kernel) != n or len(strides) != n or len(dil) != n or len(explicit) != 2 * n or \
            min((*kernel, *strides, *dil), default=1) < 1 or min(explicit, default=0) < 0:
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: kernel {list(kernel)}, strides "
                               f"{list(strides)}, dilations {list(dil)}, pads {list(explicit)} do not fit "
                               f"{n} spatial dims")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: unknown auto_pad {auto!r}")
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-i // s) for i, s in zip(in_spatial, strides)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, eff, in_spatial)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
        return strides, dil, tuple(begin + end), tuple(out)
    pads = (0,) * (2 * n) if auto == "VALID" else explicit
    out = []
    for k in range(n):
        span = in_spatial[k] + pads[k] + pads[n + k] - eff[k]
        o = (-(-span // strides[k]) if ceil else span // strides[k]) + 1
        if ceil and (o - 1) * strides[k] >= in_spatial[k] + pads[k]:
            o -= 1  # the last window must start inside the input or its begin padding
        out.append(o)
    if any(o <= 0 for o in out):
        raise ModelFormatError(f"{ctx.info.path}: {node.where()}: the window is larger than the padded input "
                               f"{list(in_spatial)} (kernel {list(kernel)}, pads {list(pads)})")
    return strides, dil, tuple(pads), tuple(out)


# -- elementwise layout -------------------------------------------------------------------------------
def choose_layout(ctx: Ctx, names: Sequence[str], rank: int, layouts_of=None) -> tuple[int, ...]:
    """Channels-last when every activation operand is a full-rank tensor available channels-last,
    else the ONNX order. `layouts_of(name)` gives an operand's layouts (None for constants)."""
    layouts_of = layouts_of or (lambda n: None if ctx.is_const(n) else ctx.layouts(n))
    cl = L.channels_last(rank)
    acts = [(n, layouts_of(n)) for n in names]
    acts = [(n, lay) for n, lay in acts if lay is not None]
    if rank >= 3 and acts and all(len(ctx.shape(n)) == rank and cl in lay for n, lay in acts):
        return cl
    return L.identity(rank)


def broadcast_shape(ctx: Ctx, shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise ModelFormatError(f"{ctx.info.path}: {ctx.node.where()}: shapes "
                               f"{[list(s) for s in shapes]} do not broadcast") from None


def elementwise(ctx: Ctx, kind: str, names: Sequence[str], out: str, activation: str = "NONE",
                **attrs) -> str:
    """Emit an elementwise op on ONNX values `names` writing ONNX value `out` (layout chosen by
    `choose_layout`). Returns the output IR name."""
    shape = broadcast_shape(ctx, [ctx.shape(n) for n in names])
    perm = choose_layout(ctx, names, len(shape))
    irs = [ctx.get_broadcast(n, len(shape), perm) for n in names]
    dtype = ctx.val(names[0]).dtype
    ir = ctx.produce(out, shape, dtype, perm)
    if activation != "NONE":
        attrs["activation"] = activation
    ctx.emit(kind, irs, [ir], **attrs)
    return ir


def unary_layout(ctx: Ctx, name: str) -> tuple[int, ...]:
    """The layout a layout-agnostic unary op works in: the one its input was produced in."""
    lay = ctx.layouts(name)
    return lay[0] if lay else L.identity(ctx.val(name).rank)


# -- activation fusion ------------------------------------------------------------------------------
ACT_BOUNDS = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


def clip_bounds(ctx: Ctx, node: Node) -> tuple[float | None, float | None] | None:
    """(min, max) of a Relu/Clip node, None for an unbounded side; None if not known yet."""
    if node.op_type == "Relu":
        return 0.0, None
    if node.opset < 11:
        lo, hi = node.attr("min"), node.attr("max")
        return (None if lo is None or lo <= -3.4e38 else float(lo),
                None if hi is None or hi >= 3.4e38 else float(hi))
    out = []
    for i in (1, 2):
        name = node.input(i)
        if not name:
            out.append(None)
            continue
        v = ctx.values.get(name)
        if v is None or v.const is None or v.const.size != 1:
            return None
        out.append(v.const.reshape(()).item())
    return out[0], out[1]


def following_activation(ctx: Ctx, out: str) -> tuple[str, Node | None]:
    """If float value `out` only feeds one Relu / Clip(0,6) / Clip(-1,1), return the fused activation
    name and that node (whose output the fused op then writes)."""
    if out in ctx.graph_outputs:
        return "NONE", None
    cons = ctx.info.consumers.get(out, [])
    if len(cons) != 1 or cons[0].domain or cons[0].op_type not in ("Relu", "Clip") or cons[0].input(0) != out:
        return "NONE", None
    bounds = clip_bounds(ctx, cons[0])
    act = ACT_BOUNDS.get(bounds) if bounds is not None else None
    return (act, cons[0]) if act else ("NONE", None)


def following_bias(ctx: Ctx, out: str, n: int, rank: int, axis: int) -> tuple[np.ndarray | None, Node | None]:
    """A constant Add that is the only consumer of float value `out` (rank `rank`) and adds one value
    per index of `axis` (size n) -- a bias the producing conv/FC can take. Returns ([n] bias, node)."""
    if out in ctx.graph_outputs:
        return None, None
    cons = ctx.info.consumers.get(out, [])
    if len(cons) != 1 or cons[0].op_type != "Add" or cons[0].domain or len(cons[0].inputs) != 2:
        return None, None
    add = cons[0]
    other = add.input(1) if add.input(0) == out else add.input(0)
    v = ctx.values.get(other)
    if other == out or v is None or v.const is None or v.rank > rank or not v.dtype.is_float:
        return None, None
    full = (1,) * (rank - v.rank) + v.shape
    if any(d != 1 for i, d in enumerate(full) if i != axis) or full[axis] not in (1, n):
        return None, None
    return np.broadcast_to(v.const.reshape(-1), (n,)).copy(), add


def fused_output(ctx: Ctx, node: Node, fuse: bool = True) -> tuple[str, str]:
    """(output ONNX name, activation) for an op that can absorb a following Relu/Clip."""
    out = node.outputs[0]
    if not fuse:
        return out, "NONE"
    act, nxt = following_activation(ctx, out)
    if nxt is None:
        return out, "NONE"
    ctx.skip.add(nxt.index)
    return nxt.outputs[0], act


def prod(xs) -> int:
    return int(math.prod(int(x) for x in xs))
