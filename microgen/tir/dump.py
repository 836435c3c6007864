"""A readable text form of TIR (`microgen build --dump-tir`): loop nests as indented pseudo-code.

Expressions print as in C (they are the same operators); statements print Python-style with the loop
kind spelled out, so what will be emitted can be read before any C exists.
"""

from __future__ import annotations

from .nodes import Assign, Buffer, Comment, Decl, Evaluate, For, If, PrimFunc, Seq, Stmt, Store
from .printer import CPrinter


class TirDumper(CPrinter):
    def stmt(self, s: Stmt, depth: int = 1) -> list[str]:
        pad = "  " * depth
        if isinstance(s, Seq):
            return [line for sub in s.stmts for line in self.stmt(sub, depth)]
        if isinstance(s, For):
            start, extent = self.expr(s.start), self.expr(s.extent)
            bounds = extent if start == "0" else f"{start}, {start} + {extent}"
            head = f"{pad}for {s.var.name} in range({bounds})"
            return [f"{head}:  # {s.kind.value}"] + self.stmt(s.body, depth + 1)
        if isinstance(s, If):
            lines = [f"{pad}if {self.expr(s.cond)}:"] + self.stmt(s.then, depth + 1)
            if s.otherwise is not None:
                lines += [f"{pad}else:"] + self.stmt(s.otherwise, depth + 1)
            return lines
        if isinstance(s, Decl):
            if isinstance(s.target, Buffer):
                return [f"{pad}{s.target.name}: {s.target.dtype.value}[{s.target.size}] (local)"]
            init = f" = {self.expr(s.value)}" if s.value is not None else ""
            return [f"{pad}{s.target.name}: {s.target.dtype.value}{init}"]
        if isinstance(s, Assign):
            return [f"{pad}{s.var.name} = {self.expr(s.value)}"]
        if isinstance(s, Store):
            return [f"{pad}{s.buffer.name}[{self.expr(s.index)}] = {self.expr(s.value)}"]
        if isinstance(s, Evaluate):
            return [f"{pad}{self.expr(s.value)}"]
        if isinstance(s, Comment):
            return [f"{pad}# {line}" for line in s.text.splitlines()]
        raise TypeError(type(s).__name__)


def dump_func(f: PrimFunc) -> str:
    params = ", ".join(f"{p.name}: {p.dtype.value}[{p.size}]" if isinstance(p, Buffer) else
                       f"{p.name}: {p.dtype.value}" for p in f.params)
    consts = [f"  const {c.name}: {c.dtype.value}[{c.size}]" for c in f.consts]
    doc = [f"  # {line}" for line in f.doc.splitlines()]
    return "\n".join([f"primfunc {f.name}({params}):"] + doc + consts + TirDumper().stmt(f.body, 1))
