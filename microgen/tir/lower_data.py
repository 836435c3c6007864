"""Data movement: TRANSPOSE, SLICE, SPLIT, CONCATENATION, PAD, RESIZE_NEAREST_NEIGHBOR.

Every kernel is a loop nest over the output in row-major order whose input index is an affine function
of the loop variables (`strided_nest`), or a lookup in a small build-time table where the mapping is not
affine (PAD's reflect/edge/wrap modes, RESIZE with non-integer factors). Adjacent dimensions that stay
contiguous in every buffer are merged at build time, so a plain copy is one loop. No kernel here does
arithmetic on values except CONCATENATION of quantized inputs with params other than the output's.

Also the home of two helpers the other lowerings of this family share: `strided_nest` and
`float_to_int` (exact round-half-away / round-half-even of a float to a saturated integer, no math.h).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import activation_range_float, activation_range_quantized
from ..graph import DType, Op, Tensor
from ..reference.registry import KERNELS
from ..reference.shape_ops import _nearest_source
from .lower import LowerContext, lowering
from .nodes import (Buffer, Decl, Expr, PrimFunc, Stmt, Var, add, cast, clamp, const, ge, gt, le, load,
                    loop, lt, maximum, minimum, mul, ne, select, seq, store, sub, eq)

LOOP_NAMES = ("i", "j", "k", "l", "m", "n", "p", "q")


# -- shared helpers --------------------------------------------------------------------------------
def collapse(counts, coefs):
    """Drop extent-1 dimensions and merge neighbours that are contiguous in every buffer.

    counts: extent per dimension (outermost first); coefs[b][d]: element stride of buffer b along d.
    Returns the reduced (counts, coefs)."""
    keep = [d for d, n in enumerate(counts) if n != 1]
    counts = [int(counts[d]) for d in keep]
    coefs = [[int(c[d]) for d in keep] for c in coefs]
    d = len(counts) - 2
    while d >= 0:
        if all(c[d] == c[d + 1] * counts[d + 1] for c in coefs):
            counts[d] *= counts[d + 1]
            del counts[d + 1]
            for c in coefs:
                c[d] = c[d + 1]
                del c[d + 1]
        d -= 1
    return counts, coefs


def affine_index(vars_, coefs, base: int = 0) -> Expr:
    """base + sum(v * c), written with the positive terms first and negative strides subtracted."""
    expr = None
    for v, c in zip(vars_, coefs):
        if c > 0:
            expr = mul(v, c) if expr is None else add(expr, mul(v, c))
    expr = const(base) if expr is None else add(expr, base)
    for v, c in zip(vars_, coefs):
        if c < 0:
            expr = sub(expr, mul(v, -c))
    return expr


def strided_nest(counts, coefs, body, bases=None, names=LOOP_NAMES) -> Stmt:
    """Loops over the index space `counts` (after `collapse`); body(indices) gets one index expression per
    buffer: bases[b] + sum(loop var * coefs[b][d])."""
    counts, coefs = collapse(counts, coefs)
    bases = bases or [0] * len(coefs)
    assert len(counts) <= len(names), counts

    def level(d, vars_):
        if d == len(counts):
            return body([affine_index(vars_, c[:d], base) for c, base in zip(coefs, bases)])
        return loop(names[d], counts[d], lambda v: level(d + 1, vars_ + [v]))
    return level(0, [])


def row_major_strides(shape) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= int(n)
    return strides[::-1]


def float_to_int(value: Expr, zero_point, lo: int, hi: int, zp_range: tuple[int, int], mode: str = "half_away",
                 names=("v", "t", "f")) -> tuple[list[Stmt], Expr]:
    """clamp(round(value) + zero_point, lo, hi) for a float32 value, exactly, without math.h.

    value is first clamped to [lo - max_zp - 1, hi - min_zp + 1]: rounding is monotone, so the final
    clamp gives the same result, and the integer conversion below is then always defined. The fraction
    is split off exactly (t = trunc(v), f = v - t, both exact), then rounded: half away from zero
    (TFLite's TfLiteRound) or half to even (ONNX). Returns (declarations, int32 result expression)."""
    v, t, f = (Var(n, dt) for n, dt in zip(names, (DType.FLOAT32, DType.INT32, DType.FLOAT32)))
    zmin, zmax = zp_range
    bounded = minimum(maximum(value, const(float(lo - zmax - 1))), const(float(hi - zmin + 1)))
    stmts = [Decl(v, bounded), Decl(t, cast(v, DType.INT32)), Decl(f, sub(v, cast(t, DType.FLOAT32)))]
    half, mhalf = const(0.5), const(-0.5)
    if mode == "half_away":
        up, down = ge(f, half), le(f, mhalf)
    elif mode == "half_even":
        odd = ne(t % 2, 0)  # a tie goes to the even neighbour
        up = select(eq(f, half), odd, gt(f, half))
        down = select(eq(f, mhalf), odd, lt(f, mhalf))
    else:
        raise ValueError(mode)
    return stmts, clamp(sub(add(add(t, up), zero_point), down), lo, hi)


def operand(ctx: LowerContext, name: str, pname: str, hint: str | None = None) -> Buffer:
    """The Buffer an op input is read from: a kernel parameter for an activation, a const array for a
    constant tensor (which the call passes no argument for)."""
    t = ctx.graph.tensors[name]
    if t.is_const:
        return ctx.const(hint or pname, t.data, t.dtype, f"{t.name}: {t.describe()}")
    return ctx.param(name, pname, readonly=True)


def offset_text(zp: int) -> str:
    """' - zp' for doc comments, as it reads best: ' - 3', ' + 10', or nothing for 0."""
    return "" if zp == 0 else (f" - {zp}" if zp > 0 else f" + {-zp}")


def describe(op: Op, ins: list[Tensor], outs: list[Tensor], *extra: str) -> str:
    """The comment block above a kernel: op, tensors, attributes and build-time constants."""
    lines = [f"{op.kind} {op.where()}".rstrip()]
    for k, t in enumerate(ins):
        lines.append(f"input{k if len(ins) > 1 else ''}  {t.describe()}{' (const)' if t.is_const else ''}")
    for k, t in enumerate(outs):
        lines.append(f"output{k if len(outs) > 1 else ''} {t.describe()}")
    return "\n".join(lines + [e for e in extra if e])


def activation_bounds(op: Op, out: Tensor):
    """(lo, hi) of the fused activation on `out` as TIR constants, or None when it clamps nothing."""
    act = op.attr("activation", "NONE")
    if act == "NONE":
        return None
    if out.dtype.is_float:
        lo, hi = activation_range_float(act)
        return const(float(lo)), (None if hi == np.inf else const(float(hi)))
    if out.quant is None:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: fused {act} on an integer output without "
                                 f"quantization params")
    lo, hi = activation_range_quantized(act, out.quant.s, out.quant.zp, *out.dtype.limits())
    return const(lo), const(hi)


def apply_bounds(value: Expr, bounds) -> Expr:
    if bounds is None:
        return value
    lo, hi = bounds
    value = maximum(value, lo)
    return value if hi is None else minimum(value, hi)


def _plain_copy_params(op: Op, x: Tensor, y: Tensor) -> None:
    if x.dtype != y.dtype:
        raise UnsupportedOpError(f"{op.where()} {op.kind}: input {x.describe()} and output {y.describe()} "
                                 f"differ in type")


# -- TRANSPOSE, SLICE, SPLIT -----------------------------------------------------------------------
@lowering("TRANSPOSE")
def lower_transpose(ctx: LowerContext, op: Op) -> PrimFunc:
    """out[o_0, ..., o_r] = x[...] with x's dimension perm[k] indexed by o_k."""
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    _plain_copy_params(op, x, y)
    perm = [int(p) % len(x.shape) for p in op.attrs["perm"]]
    xs = row_major_strides(x.shape)
    src, dst = operand(ctx, x.name, "input"), ctx.param(y.name, "output")
    shape = [x.shape[p] for p in perm]
    body = strided_nest(shape, [row_major_strides(shape), [xs[p] for p in perm]],
                        lambda ix: store(dst, ix[0], load(src, ix[1])))
    return PrimFunc(ctx.func_name(op), _params(src, dst), body, doc=describe(op, [x], [y], f"perm {perm}"))


def _params(*bufs: Buffer) -> tuple[Buffer, ...]:
    return tuple(b for b in bufs if b.scope == "param")


@lowering("SLICE")
def lower_slice(ctx: LowerContext, op: Op) -> PrimFunc:
    """out = x[begin:end:stride, ...] (Python slice semantics, negative strides included)."""
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    _plain_copy_params(op, x, y)
    begin, end, strides = (tuple(op.attrs[k]) for k in ("begin", "end", "strides"))
    xs = row_major_strides(x.shape)
    counts, coefs, base = [], [], 0
    for d, n in enumerate(x.shape):
        if d < len(begin):
            start, stop, step = slice(begin[d], end[d], int(strides[d])).indices(n)
            count = len(range(start, stop, step))
        else:
            start, step, count = 0, 1, n
        counts.append(count)
        coefs.append(step * xs[d])
        base += start * xs[d] if count else 0
    assert int(np.prod(counts)) == y.size, (counts, y.shape)
    src, dst = operand(ctx, x.name, "input"), ctx.param(y.name, "output")
    body = strided_nest(counts, [row_major_strides(counts), coefs], lambda ix: store(dst, ix[0], load(src, ix[1])),
                        bases=[0, base])
    doc = describe(op, [x], [y], f"begin {list(begin)}, end {list(end)}, strides {list(strides)}")
    return PrimFunc(ctx.func_name(op), _params(src, dst), body, doc=doc)


@lowering("SPLIT")
def lower_split(ctx: LowerContext, op: Op) -> PrimFunc:
    """Consecutive parts of x along `axis`, one per output: [outer, part * inner] blocks."""
    x = ctx.graph.tensors[op.inputs[0]]
    outs = [ctx.graph.tensors[n] for n in op.outputs]
    axis = int(op.attrs["axis"]) % len(x.shape)
    sizes = [int(s) for s in op.attrs["sizes"]]
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    src = operand(ctx, x.name, "input")
    dsts = [ctx.param(t.name, f"output{k}") for k, t in enumerate(outs)]
    parts, offset = [], 0
    for t, dst, size in zip(outs, dsts, sizes):
        _plain_copy_params(op, x, t)
        parts.append(strided_nest([outer, size * inner], [[size * inner, 1], [x.shape[axis] * inner, 1]],
                                  lambda ix, dst=dst: store(dst, ix[0], load(src, ix[1])), bases=[0, offset * inner]))
        offset += size
    doc = describe(op, [x], outs, f"axis {axis}, sizes {sizes}")
    return PrimFunc(ctx.func_name(op), _params(src, *dsts), seq(*parts), doc=doc)


# -- CONCATENATION ---------------------------------------------------------------------------------
@lowering("CONCATENATION")
def lower_concatenation(ctx: LowerContext, op: Op) -> PrimFunc:
    """Each input copied into its block of the output along `axis`, requantized when its params differ
    from the output's (TFLite ConcatenationWithScaling, float32: q = round(x * scale + bias) + zp_out,
    scale and bias computed at build time), then the fused activation clamp."""
    g = ctx.graph
    y = g.tensors[op.outputs[0]]
    ins = [g.tensors[n] for n in op.inputs]
    axis = int(op.attrs["axis"]) % len(y.shape)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    inner = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
    bounds = activation_bounds(op, y)
    srcs = [_concat_operand(ctx, op, k, t, y) for k, t in enumerate(ins)]
    dst = ctx.param(y.name, "output")
    parts, notes, offset = [], [], 0
    for k, (t, src) in enumerate(zip(ins, srcs)):
        block = t.shape[axis] * inner
        value_fn, note = _concat_value(op, t, y, bounds) if src.scope == "param" else (_copy(y), "")
        if note:
            notes.append(f"input{k}: {note}")
        parts.append(strided_nest([outer, block], [[y.shape[axis] * inner, 1], [block, 1]],
                                  lambda ix, src=src, fn=value_fn: fn(dst, ix[0], load(src, ix[1])),
                                  bases=[offset * inner, 0]))
        offset += t.shape[axis]
    doc = describe(op, ins, [y], f"axis {axis}", *notes)
    return PrimFunc(ctx.func_name(op), _params(*srcs, dst), seq(*parts), doc=doc)


def _concat_operand(ctx: LowerContext, op: Op, k: int, t: Tensor, y: Tensor) -> Buffer:
    """A kernel parameter, or for a constant input its final output values (requantized, clamped), computed
    here with the reference kernel."""
    if not t.is_const:
        return ctx.param(t.name, f"input{k}", readonly=True)
    single = Op("CONCATENATION", (t.name,), (y.name,), {**op.attrs, "axis": 0})
    values = KERNELS["CONCATENATION"](single, _one_tensor_graph(ctx.graph, t, y), [t.data])[0]
    return ctx.const(f"input{k}", values, y.dtype, f"{t.name} {t.describe()} as output values")


def _one_tensor_graph(graph, t: Tensor, y: Tensor):
    """A graph holding t and an output tensor of t's shape with y's type, for the reference kernel."""
    out = dataclasses.replace(y, shape=t.shape)
    return dataclasses.replace(graph, tensors={t.name: t, y.name: out})


def _copy(y: Tensor):
    return lambda dst, ix, v: store(dst, ix, cast(v, y.dtype))


def _concat_value(op: Op, t: Tensor, y: Tensor, bounds):
    """(fn(dst, index, loaded value) -> Stmt, doc note) for one concatenation input."""
    requant = (y.is_quantized and t.is_quantized
               and (t.quant.scale, t.quant.zero_point) != (y.quant.scale, y.quant.zero_point))
    if not requant:
        if t.dtype != y.dtype and not (t.dtype.is_int and y.dtype.is_int):
            raise UnsupportedOpError(f"{op.where()} CONCATENATION: input {t.describe()} into {y.describe()}")
        return (lambda dst, ix, v: store(dst, ix, cast(apply_bounds(v, bounds), y.dtype))), ""
    if t.quant.per_channel or y.quant.per_channel:
        raise UnsupportedOpError(f"{op.where()} CONCATENATION: per-axis quantized inputs with different "
                                 f"params cannot be concatenated")
    f32 = np.float32
    scale = f32(t.quant.s) * (f32(1.0) / f32(y.quant.s))
    bias = f32(-t.quant.zp) * scale
    lo, hi = y.dtype.limits() if bounds is None else (bounds[0].value, bounds[1].value)

    def fn(dst, ix, v):
        w = Var("w", DType.FLOAT32)
        scaled = mul(cast(v, DType.FLOAT32), const(float(scale)))
        biased = w if bias == 0 else (add(w, const(float(bias))) if bias > 0 else sub(w, const(-float(bias))))
        decls, q = float_to_int(biased, y.quant.zp, lo, hi, (y.quant.zp, y.quant.zp))
        # Multiply and add as two statements: keeps a compiler from contracting them into an FMA.
        return seq(Decl(w, scaled), *decls, store(dst, ix, cast(q, y.dtype)))
    off = "" if bias == 0 else f" {'+' if bias > 0 else '-'} {abs(bias)}"
    zp = "" if not y.quant.zp else f" {'+' if y.quant.zp > 0 else '-'} {abs(y.quant.zp)}"
    return fn, f"requantized: round(x * {scale}{off}){zp}"


# -- PAD -------------------------------------------------------------------------------------------
@lowering("PAD")
def lower_pad(ctx: LowerContext, op: Op) -> PrimFunc:
    """constant: the padding written as contiguous runs around each copied row (no test per element);
    reflect / edge / wrap: out[o] = x[src_0[o_0], ..., src_r[o_r]] with a build-time source-index table per
    padded dimension."""
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    _plain_copy_params(op, x, y)
    pads = [tuple(int(v) for v in p) for p in op.attrs["pads"]]
    mode = op.attrs.get("mode", "constant")
    if any(v < 0 for p in pads for v in p):
        raise UnsupportedOpError(f"{op.where()} PAD: negative pads {pads} are not supported")
    src, dst = operand(ctx, x.name, "input"), ctx.param(y.name, "output")
    if mode == "constant":
        value = np.asarray(op.attrs.get("value", 0)).astype(x.dtype.np)
        fill = const(value.item(), x.dtype) if x.dtype.is_float else const(int(value), DType.INT32)
        body = _pad_constant(list(x.shape), pads, src, dst, cast(fill, y.dtype) if not x.dtype.is_float else fill)
        extra = f"pads {pads}, constant {value.item()}"
    elif mode in ("reflect", "edge", "wrap"):
        body = _pad_table(ctx, list(x.shape), pads, mode, src, dst)
        extra = f"pads {pads}, mode {mode}"
    else:
        raise UnsupportedOpError(f"{op.where()} PAD: unknown mode {mode!r}")
    return PrimFunc(ctx.func_name(op), _params(src, dst), body, doc=describe(op, [x], [y], extra))


def _pad_constant(shape, pads, src, dst, fill) -> Stmt:
    # Merge each unpadded dimension into the one before it: the padded rows of the outer dimension stay
    # contiguous runs of the merged one.
    dims = [[n, b, a] for n, (b, a) in zip(shape, pads)]
    k = len(dims) - 1
    while k > 0:
        if dims[k][1] == dims[k][2] == 0:
            n = dims[k][0]
            dims[k - 1] = [dims[k - 1][0] * n, dims[k - 1][1] * n, dims[k - 1][2] * n]
            del dims[k]
        k -= 1
    out_sizes = [b + n + a for n, b, a in dims]
    ostr, istr = row_major_strides(out_sizes), row_major_strides([d[0] for d in dims])

    def run(base, length, name):
        return loop(name, length, lambda j: store(dst, add(base, j), fill))

    def level(d, obase, ibase):
        n, b, a = dims[d]
        name = LOOP_NAMES[d]
        if d == len(dims) - 1:
            copy = loop(name, n, lambda i: store(dst, add(add(obase, b), i), load(src, add(ibase, i))))
            return seq(run(obase, b, "z"), copy, run(add(obase, b + n), a, "z"))
        inner = loop(name, n, lambda i: level(d + 1, add(obase, mul(add(i, b), ostr[d])), add(ibase, mul(i, istr[d]))))
        return seq(run(obase, b * ostr[d], "z"), inner, run(add(obase, (b + n) * ostr[d]), a * ostr[d], "z"))
    return level(0, const(0), const(0))


def _pad_table(ctx, shape, pads, mode, src, dst) -> Stmt:
    out_shape = [b + n + a for n, (b, a) in zip(shape, pads)]
    ostr, istr = row_major_strides(out_shape), row_major_strides(shape)
    tables = {}
    for d, (n, (b, a)) in enumerate(zip(shape, pads)):
        if b or a:
            idx = np.pad(np.arange(n), (b, a), mode=mode)
            tables[d] = ctx.const(f"src{d}", idx, DType.INT32, f"input index along dim {d} of each output index")

    def level(d, vars_):
        if d == len(shape):
            oix = affine_index(vars_, ostr)
            terms = [mul(load(tables[k], v), istr[k]) if k in tables else mul(v, istr[k]) for k, v in enumerate(vars_)]
            iix = const(0)
            for term in terms:
                iix = add(iix, term)
            return store(dst, oix, load(src, iix))
        return loop(LOOP_NAMES[d], out_shape[d], lambda v: level(d + 1, vars_ + [v]))
    return level(0, [])


# -- RESIZE_NEAREST_NEIGHBOR -----------------------------------------------------------------------
@lowering("RESIZE_NEAREST_NEIGHBOR")
def lower_resize_nearest(ctx: LowerContext, op: Op) -> PrimFunc:
    """out[n, oy, ox, :] = x[n, rows[oy], cols[ox], :]; rows/cols from TFLM's GetNearestNeighbor at build
    time, printed as `o / factor` for integer upscaling and as tables otherwise."""
    x, y = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.outputs[0]]
    _plain_copy_params(op, x, y)
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise UnsupportedOpError(f"{op.where()} RESIZE_NEAREST_NEIGHBOR: takes [N, H, W, C] tensors")
    align, half = bool(op.attr("align_corners", False)), bool(op.attr("half_pixel_centers", False))
    n_, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    src, dst = operand(ctx, x.name, "input"), ctx.param(y.name, "output")
    rows = _source_expr(ctx, _nearest_source(oh, h, align, half), "rows")
    cols = _source_expr(ctx, _nearest_source(ow, w, align, half), "cols")

    def body(b, oy, ox, ch):
        return store(dst, ((b * oh + oy) * ow + ox) * c + ch, load(src, ((b * h + rows(oy)) * w + cols(ox)) * c + ch))
    nest = loop("b", n_, lambda b: loop("oy", oh, lambda oy: loop("ox", ow, lambda ox: loop(
        "c", c, lambda ch: body(b, oy, ox, ch)))))
    doc = describe(op, [x], [y], f"align_corners {align}, half_pixel_centers {half}")
    return PrimFunc(ctx.func_name(op), _params(src, dst), nest, doc=doc)


def _source_expr(ctx, src: np.ndarray, hint: str):
    """A function of the output coordinate giving the input one: o / f when src = o // f, else a table."""
    o = np.arange(len(src))
    for f in range(1, len(src) + 1):
        if np.array_equal(src, o // f):
            return lambda v, f=f: v // f if f > 1 else v
    table = ctx.const(hint, src, DType.INT32, f"input {hint[:-1]} of each output {hint[:-1]}")
    return lambda v: load(table, v)
