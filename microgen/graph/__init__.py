"""The typed graph IR shared by every stage (see ir.py for the conventions, ops.py for the op table)."""

from .ir import DType, Graph, Op, QuantParams, Tensor
from .ops import ACTIVATIONS, OPS, OpSpec
from .verify import GraphInvariantError, verify

__all__ = ["DType", "Graph", "Op", "QuantParams", "Tensor", "ACTIVATIONS", "OPS", "OpSpec",
           "GraphInvariantError", "verify"]
