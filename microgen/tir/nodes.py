"""The loop-nest IR (TIR): a few expression and statement kinds, enough to print as C99.

Expressions are typed (a DType each) and immutable. Building them with the helper functions at the end
(`const`, `add`, `mul`, `load`, `call`, `cast`, `select`, ...) folds constants and drops no-op terms, so
the printed C stays readable (`x + 0` and `i * 1` never appear). Python operators `+ - * // % << >>`
on expressions are shorthands for those helpers; comparisons are functions (`lt`, `ge`, ...) because `==`
keeps its identity meaning.

Buffers are flat arrays with a scope:
- "arena": an activation at a fixed offset in the caller's arena (planned by memory_planner);
- "const": weights or tables, printed as `static const` arrays;
- "local": a small array on the stack inside one kernel (accumulators, row buffers);
- "param": a pointer the kernel takes as an argument.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ..graph import DType


# -- buffers and variables ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Buffer:
    """A flat array of `size` elements of `dtype`. `data` holds the values of a "const" buffer."""

    name: str
    dtype: DType
    size: int
    scope: str = "param"
    data: np.ndarray | None = field(default=None, repr=False)
    doc: str = ""
    readonly: bool = False  # a "param" the kernel only reads: printed `const T *`
    noalias: bool = False   # a "param" that overlaps no other param: printed `T *restrict`

    def __post_init__(self) -> None:
        assert self.scope in ("arena", "const", "local", "param"), self.scope
        assert self.scope != "const" or (self.data is not None and self.data.size == self.size), self.name

    def __getitem__(self, index: "Expr | int") -> "Load":
        return load(self, index)


# -- expressions -------------------------------------------------------------------------------------
class Expr:
    """Base of expressions; every expression has a `dtype`."""

    dtype: DType

    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return sub(self, other)
    def __rsub__(self, other): return sub(other, self)
    def __mul__(self, other): return mul(self, other)
    def __rmul__(self, other): return mul(other, self)
    def __floordiv__(self, other): return binop("/", self, other)
    def __mod__(self, other): return binop("%", self, other)
    def __lshift__(self, other): return binop("<<", self, other)
    def __rshift__(self, other): return binop(">>", self, other)
    def __and__(self, other): return binop("&", self, other)
    def __or__(self, other): return binop("|", self, other)


@dataclass(frozen=True, eq=False)
class IntImm(Expr):
    value: int
    dtype: DType = DType.INT32


@dataclass(frozen=True, eq=False)
class FloatImm(Expr):
    value: float
    dtype: DType = DType.FLOAT32


@dataclass(frozen=True, eq=False)
class Var(Expr):
    name: str
    dtype: DType = DType.INT32


@dataclass(frozen=True, eq=False)
class BinOp(Expr):
    """Arithmetic, bitwise, comparison and logical operators of C, plus "min"/"max"."""

    op: str
    a: Expr
    b: Expr
    dtype: DType


@dataclass(frozen=True, eq=False)
class Cast(Expr):
    value: Expr
    dtype: DType


@dataclass(frozen=True, eq=False)
class Load(Expr):
    buffer: Buffer
    index: Expr
    dtype: DType


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A call of an intrinsic or helper from the runtime header (e.g. "mg_requantize", "__SMLAD")."""

    name: str
    args: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True, eq=False)
class Select(Expr):
    cond: Expr
    true_value: Expr
    false_value: Expr
    dtype: DType


# -- statements --------------------------------------------------------------------------------------
class ForKind(enum.Enum):
    SERIAL = "serial"
    UNROLLED = "unrolled"  # printed as straight-line copies of the body


class Stmt:
    """Base of statements."""


@dataclass(frozen=True, eq=False)
class For(Stmt):
    """for (var = start; var < start + extent; ++var) body."""

    var: Var
    start: Expr
    extent: Expr
    body: Stmt
    kind: ForKind = ForKind.SERIAL


@dataclass(frozen=True, eq=False)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(frozen=True, eq=False)
class Decl(Stmt):
    """Declare a scalar local (with an initial value) or a local buffer (value None)."""

    target: Var | Buffer
    value: Expr | None = None


@dataclass(frozen=True, eq=False)
class Assign(Stmt):
    var: Var
    value: Expr


@dataclass(frozen=True, eq=False)
class Seq(Stmt):
    stmts: tuple[Stmt, ...]


@dataclass(frozen=True, eq=False)
class If(Stmt):
    cond: Expr
    then: Stmt
    otherwise: Stmt | None = None


@dataclass(frozen=True, eq=False)
class Evaluate(Stmt):
    """An expression evaluated for its effect (a call returning nothing useful)."""

    value: Expr


@dataclass(frozen=True, eq=False)
class Comment(Stmt):
    text: str


@dataclass(frozen=True, eq=False)
class PrimFunc:
    """One kernel: a C function over `params` (buffers passed as pointers, scalars by value).

    `consts` are the "const" buffers it reads (printed once, at file scope); `doc` becomes the comment
    block above the function (op, shapes, quantization, arena offsets).
    """

    name: str
    params: tuple[Buffer | Var, ...]
    body: Stmt
    consts: tuple[Buffer, ...] = ()
    doc: str = ""


# -- builders with constant folding ------------------------------------------------------------------
def const(value: int | float, dtype: DType | None = None) -> Expr:
    if isinstance(value, (float, np.floating)) or (dtype is not None and dtype.is_float):
        return FloatImm(float(value), dtype or DType.FLOAT32)
    return IntImm(int(value), dtype or DType.INT32)


def as_expr(x: Expr | int | float) -> Expr:
    return x if isinstance(x, Expr) else const(x)


def _result_type(a: Expr, b: Expr) -> DType:
    """C's usual arithmetic conversions, restricted to the types kernels use."""
    if a.dtype.is_float or b.dtype.is_float:
        return DType.FLOAT32 if DType.FLOAT64 not in (a.dtype, b.dtype) else DType.FLOAT64
    if DType.INT64 in (a.dtype, b.dtype):
        return DType.INT64
    if DType.UINT32 in (a.dtype, b.dtype):
        return DType.UINT32
    return DType.INT32  # integer promotion: everything narrower computes as int


_FOLD = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "min": min, "max": max, "<<": lambda x, y: x << y, ">>": lambda x, y: x >> y,
}
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=", "&&", "||")


def binop(op: str, a: Expr | int | float, b: Expr | int | float) -> Expr:
    a, b = as_expr(a), as_expr(b)
    dtype = DType.INT32 if op in COMPARISONS else _result_type(a, b)
    if isinstance(a, IntImm) and isinstance(b, IntImm) and op in _FOLD:
        return IntImm(_FOLD[op](a.value, b.value), dtype)
    if isinstance(a, IntImm) and isinstance(b, IntImm) and op == "/" and b.value > 0 and a.value >= 0:
        return IntImm(a.value // b.value, dtype)
    return BinOp(op, a, b, dtype)


def _is(x: Expr, value: int) -> bool:
    return isinstance(x, IntImm) and x.value == value


def add(a, b) -> Expr:
    a, b = as_expr(a), as_expr(b)
    if _is(b, 0) and not a.dtype.is_float:
        return a if _result_type(a, b) == a.dtype else cast(a, _result_type(a, b))
    if _is(a, 0) and not b.dtype.is_float:
        return b if _result_type(a, b) == b.dtype else cast(b, _result_type(a, b))
    # (x + c1) + c2 -> x + (c1 + c2): keeps index expressions short.
    if isinstance(b, IntImm) and isinstance(a, BinOp) and a.op == "+" and isinstance(a.b, IntImm):
        return add(a.a, a.b.value + b.value)
    return binop("+", a, b)


def sub(a, b) -> Expr:
    a, b = as_expr(a), as_expr(b)
    if _is(b, 0):
        return a
    if isinstance(b, IntImm):
        return add(a, -b.value)
    return binop("-", a, b)


def mul(a, b) -> Expr:
    a, b = as_expr(a), as_expr(b)
    if _is(a, 1) and not b.dtype.is_float:
        return b
    if _is(b, 1) and not a.dtype.is_float:
        return a
    if (_is(a, 0) or _is(b, 0)) and not (a.dtype.is_float or b.dtype.is_float):
        return IntImm(0, _result_type(a, b))
    return binop("*", a, b)


def minimum(a, b) -> Expr:
    return binop("min", a, b)


def maximum(a, b) -> Expr:
    return binop("max", a, b)


def clamp(x, lo: int, hi: int) -> Expr:
    return minimum(maximum(x, lo), hi)


def lt(a, b) -> Expr: return binop("<", a, b)
def le(a, b) -> Expr: return binop("<=", a, b)
def gt(a, b) -> Expr: return binop(">", a, b)
def ge(a, b) -> Expr: return binop(">=", a, b)
def eq(a, b) -> Expr: return binop("==", a, b)
def ne(a, b) -> Expr: return binop("!=", a, b)


def logical_and(*conds: Expr) -> Expr | None:
    """a && b && ...; constant-true terms dropped; None when nothing is left (always true)."""
    terms = [c for c in conds if c is not None and not _is(c, 1)]
    if not terms:
        return None
    out = terms[0]
    for c in terms[1:]:
        out = binop("&&", out, c)
    return out


def cast(x, dtype: DType) -> Expr:
    x = as_expr(x)
    if x.dtype == dtype:
        return x
    if isinstance(x, IntImm) and not dtype.is_float:
        return IntImm(x.value, dtype)
    return Cast(x, dtype)


def load(buffer: Buffer, index) -> Load:
    return Load(buffer, as_expr(index), buffer.dtype)


def call(name: str, dtype: DType, *args) -> Call:
    return Call(name, tuple(as_expr(a) for a in args), dtype)


def select(cond: Expr, a, b) -> Expr:
    a, b = as_expr(a), as_expr(b)
    return Select(cond, a, b, _result_type(a, b) if a.dtype != b.dtype else a.dtype)


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence, flattening nested sequences and dropping Nones."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        flat.extend(s.stmts if isinstance(s, Seq) else [s])
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def loop(name: str, extent: int | Expr, body_fn, start: int | Expr = 0,
         kind: ForKind = ForKind.SERIAL) -> Stmt:
    """for name in [start, start + extent): body_fn(var). A trip count of 1 inlines the body."""
    var = Var(name)
    extent, start = as_expr(extent), as_expr(start)
    if _is(extent, 1):
        return _substituted(body_fn, start)
    if _is(extent, 0):
        return Seq(())
    return For(var, start, extent, body_fn(var), kind)


def _substituted(body_fn, value: Expr) -> Stmt:
    return body_fn(value)


def store(buffer: Buffer, index, value) -> Store:
    return Store(buffer, as_expr(index), as_expr(value))
