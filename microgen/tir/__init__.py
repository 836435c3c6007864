"""The loop-nest IR: nodes (nodes.py), the C99 printer (printer.py) and the op lowerings (lower_*.py).

`tir.lower(graph, plan, target)` turns every op of a graph into a PrimFunc.
"""

from .nodes import Buffer, Expr, For, ForKind, PrimFunc, Stmt, Var

__all__ = ["Buffer", "Expr", "For", "ForKind", "PrimFunc", "Stmt", "Var"]
