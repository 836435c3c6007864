"""Print TIR as C99: a table from node kind to text, with C's precedence deciding the parentheses.

min/max print as the typed inline helpers of runtime_c/microgen_runtime.h (mg_min_i32, mg_max_f32, ...)
so no sub-expression is evaluated twice. UNROLLED loops print as straight-line copies of the body with the
loop variable replaced by its value.
"""

from __future__ import annotations

import math

import numpy as np

from ..graph import DType
from .nodes import (Assign, BinOp, Buffer, Call, Cast, Comment, Decl, Evaluate, Expr, FloatImm, For, ForKind,
                    If, IntImm, Load, PrimFunc, Select, Seq, Stmt, Store, Var)

# C operator precedence (higher binds tighter).
_PREC = {"*": 13, "/": 13, "%": 13, "+": 12, "-": 12, "<<": 11, ">>": 11, "<": 10, "<=": 10, ">": 10,
         ">=": 10, "==": 9, "!=": 9, "&": 8, "^": 7, "|": 6, "&&": 5, "||": 4}
_ATOM = 16
# Operators whose operands gcc wants bracketed when they are other binary operators.
_CLARIFY = {"<<", ">>", "&", "|", "^", "||"}
_MINMAX_SUFFIX = {DType.INT32: "i32", DType.INT64: "i64", DType.UINT32: "u32", DType.FLOAT32: "f32",
                  DType.FLOAT64: "f64"}
INDENT = "    "


def int_literal(value: int, dtype: DType = DType.INT32) -> str:
    if dtype in (DType.INT64, DType.UINT64) or not (-(1 << 31) <= value < (1 << 31)):
        if value == -(1 << 63):
            return "INT64_MIN"
        return f"INT64_C({value})"
    if value == -(1 << 31):
        return "INT32_MIN"
    return str(value)


def float_literal(value: float) -> str:
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = repr(float(np.float32(value)))
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


class CPrinter:
    """Prints expressions and statements; `env` maps unrolled loop variables to their values."""

    def __init__(self) -> None:
        self.env: dict[int, int] = {}

    # -- expressions ---------------------------------------------------------------------------------
    def expr(self, e: Expr) -> str:
        return self._expr(e)[0]

    def _expr(self, e: Expr) -> tuple[str, int]:
        if isinstance(e, IntImm):
            text = int_literal(e.value, e.dtype)
            return text, (_ATOM if e.value >= 0 else 14)
        if isinstance(e, FloatImm):
            text = float_literal(e.value)
            return text, (_ATOM if e.value >= 0 else 14)
        if isinstance(e, Var):
            if id(e) in self.env:
                return str(self.env[id(e)]), _ATOM
            return e.name, _ATOM
        if isinstance(e, Load):
            return f"{e.buffer.name}[{self.expr(e.index)}]", 15
        if isinstance(e, Call):
            return f"{e.name}({', '.join(self.expr(a) for a in e.args)})", 15
        if isinstance(e, Cast):
            inner, prec = self._expr(e.value)
            return f"({e.dtype.c_type}){self._paren(inner, prec, 14)}", 14
        if isinstance(e, Select):
            c = self._paren(*self._expr(e.cond), 4)
            a = self._paren(*self._expr(e.true_value), 4)
            b = self._paren(*self._expr(e.false_value), 3)
            return f"{c} ? {a} : {b}", 3
        if isinstance(e, BinOp):
            if e.op in ("min", "max"):
                suffix = _MINMAX_SUFFIX.get(e.dtype, "i32")
                return f"mg_{e.op}_{suffix}({self.expr(e.a)}, {self.expr(e.b)})", 15
            prec = _PREC[e.op]
            if e.op in ("+", "-") and isinstance(e.b, IntImm) and e.b.value < 0 and e.b.value != -(1 << 31):
                # x + -5 prints as x - 5
                flipped = BinOp("-" if e.op == "+" else "+", e.a, IntImm(-e.b.value, e.b.dtype), e.dtype)
                return self._expr(flipped)
            left = self._paren(*self._expr(e.a), prec)
            # Right operand needs parentheses at equal precedence too (a - (b - c)).
            right = self._paren(*self._expr(e.b), prec + 1)
            if e.op in _CLARIFY:  # gcc -Wparentheses: (a + b) >> c, (a < b) & c, (a && b) || c
                left = self._clarify(e.a, left, e.op)
                right = self._clarify(e.b, right, e.op)
            return f"{left} {e.op} {right}", prec
        raise TypeError(f"cannot print {type(e).__name__}")

    @staticmethod
    def _clarify(child: Expr, text: str, parent: str) -> str:
        if isinstance(child, BinOp) and child.op in _PREC and child.op != parent and not text.startswith("("):
            return f"({text})"
        return text

    @staticmethod
    def _paren(text: str, prec: int, needed: int) -> str:
        return text if prec >= needed else f"({text})"

    # -- statements ----------------------------------------------------------------------------------
    def stmt(self, s: Stmt, depth: int = 1) -> list[str]:
        pad = INDENT * depth
        if isinstance(s, Seq):
            return [line for sub in s.stmts for line in self.stmt(sub, depth)]
        if isinstance(s, Comment):
            return [f"{pad}/* {line} */" if line else "" for line in s.text.splitlines()]
        if isinstance(s, Store):
            return [f"{pad}{s.buffer.name}[{self.expr(s.index)}] = {self.expr(s.value)};"]
        if isinstance(s, Assign):
            return [f"{pad}{s.var.name} = {self.expr(s.value)};"]
        if isinstance(s, Evaluate):
            return [f"{pad}{self.expr(s.value)};"]
        if isinstance(s, Decl):
            if isinstance(s.target, Buffer):
                return [f"{pad}{s.target.dtype.c_type} {s.target.name}[{s.target.size}];"]
            init = f" = {self.expr(s.value)}" if s.value is not None else ""
            return [f"{pad}{s.target.dtype.c_type} {s.target.name}{init};"]
        if isinstance(s, If):
            lines = [f"{pad}if ({self.expr(s.cond)}) {{"] + self.stmt(s.then, depth + 1)
            if s.otherwise is not None:
                lines += [f"{pad}}} else {{"] + self.stmt(s.otherwise, depth + 1)
            return lines + [f"{pad}}}"]
        if isinstance(s, For):
            if s.kind is ForKind.UNROLLED:
                assert isinstance(s.start, IntImm) and isinstance(s.extent, IntImm), "unroll needs constant bounds"
                lines = []
                for value in range(s.start.value, s.start.value + s.extent.value):
                    self.env[id(s.var)] = value
                    lines += self.stmt(s.body, depth)
                del self.env[id(s.var)]
                return lines
            v = s.var.name
            start = self.expr(s.start)
            end = self.expr(s.extent) if isinstance(s.start, IntImm) and s.start.value == 0 else \
                f"{start} + {self._paren(*self._expr(s.extent), 13)}"
            return ([f"{pad}for (int32_t {v} = {start}; {v} < {end}; ++{v}) {{"]
                    + self.stmt(s.body, depth + 1) + [f"{pad}}}"])
        raise TypeError(f"cannot print {type(s).__name__}")


def const_array(b: Buffer, per_line: int = 16) -> str:
    """`static const T name[N] = {...};` for a const buffer."""
    assert b.scope == "const" and b.data is not None
    values = np.ravel(b.data)
    if b.dtype.is_float:
        items = [float_literal(float(v)) for v in values]
    else:
        items = [int_literal(int(v), b.dtype) for v in values]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    doc = f"/* {b.doc} */\n" if b.doc else ""
    body = ",\n    ".join(lines)
    return f"{doc}static const {b.dtype.c_type} {b.name}[{b.size}] = {{\n    {body}\n}};"


def func(f: PrimFunc, static: bool = True) -> str:
    """The C definition of a PrimFunc, with its doc comment."""
    params = []
    for p in f.params:
        if isinstance(p, Buffer):
            const = "const " if p.readonly else ""
            restrict = "restrict " if p.noalias else ""
            params.append(f"{const}{p.dtype.c_type} *{restrict}{p.name}")
        else:
            params.append(f"{p.dtype.c_type} {p.name}")
    doc = "".join(f" * {line}\n" if line else " *\n" for line in f.doc.splitlines())
    head = f"/*\n{doc} */\n" if doc else ""
    sig = f"{'static ' if static else ''}void {f.name}({', '.join(params) or 'void'})"
    body = CPrinter().stmt(f.body, 1)
    return f"{head}{sig}\n{{\n" + "\n".join(body) + "\n}"
