"""What an op converter sees: its TFLite op, its tensors as IR Tensors, and helpers that check the
things a corrupt or unusual model can get wrong (arity, ranks, constant operands, option values).

A converter is `fn(ctx) -> Converted | Folded`; it raises `ctx.fail(...)` (ModelFormatError: the file
is inconsistent) or `ctx.unsupported(...)` (UnsupportedOpError: a valid variant microgen does not
handle yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ...errors import ModelFormatError, UnsupportedOpError
from ...graph import Tensor
from . import geometry
from .reader import RawOp

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


@dataclass
class Converted:
    """The IR op for a TFLite op: kind, input names ("" = omitted) and attributes (defaults filled in
    later). Its outputs are the TFLite op's outputs."""

    kind: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Folded:
    """The op computes a constant (e.g. DEQUANTIZE of a constant): its output becomes this data."""

    data: np.ndarray


class TensorTable(Protocol):
    """The IR tensors of the model by TFLite index, plus constants derived on import (dequantized
    hybrid weights, widened biases); see `build.TensorBuilder`."""

    def name(self, index: int) -> str: ...
    def tensor(self, index: int) -> Tensor: ...
    def derived(self, index: int, tag: str, make: Callable[[Tensor], Tensor]) -> str: ...


class OpContext:
    def __init__(self, op: RawOp, table: TensorTable, path: str) -> None:
        self.op = op
        self.table = table
        self.path = path
        self.options = op.options

    # -- messages ------------------------------------------------------------------------------------
    def where(self) -> str:
        out = self.table.name(self.op.outputs[0]) if self.op.outputs else ""
        return f'op #{self.op.index} {self.op.name}' + (f' "{out}"' if out else "")

    def fail(self, problem: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {self.where()}: {problem}")

    def unsupported(self, problem: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.path}: {self.where()}: {problem}")

    # -- operands --------------------------------------------------------------------------------------
    def arity(self, lo: int, hi: int | None = None, outputs: int | None = 1) -> None:
        """Check the number of inputs (lo..hi; hi None = lo) and outputs (None = any, at least one)."""
        n = len(self.op.inputs)
        hi = lo if hi is None else hi
        if not lo <= n <= hi:
            raise self.fail(f"has {n} inputs, expected {lo}" + (f" to {hi}" if hi != lo else ""))
        n_out = len(self.op.outputs)
        if (outputs is not None and n_out != outputs) or n_out == 0:
            want = "at least 1" if outputs is None else outputs
            raise self.fail(f"has {n_out} outputs, expected {want}")

    def name(self, i: int) -> str:
        """IR name of input i ("" when the optional input is omitted)."""
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            return ""
        return self.table.name(self.op.inputs[i])

    def tensor(self, i: int) -> Tensor:
        """Input i, which must be present."""
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            raise self.fail(f"required input {i} is missing")
        return self.table.tensor(self.op.inputs[i])

    def optional(self, i: int) -> Tensor | None:
        return self.tensor(i) if self.name(i) else None

    def out(self, k: int = 0) -> Tensor:
        return self.table.tensor(self.op.outputs[k])

    def out_names(self) -> tuple[str, ...]:
        return tuple(self.table.name(i) for i in self.op.outputs)

    def const(self, i: int, what: str) -> np.ndarray:
        """The value of a constant input (e.g. a shape or axis operand)."""
        t = self.tensor(i)
        if t.data is None:
            raise self.unsupported(f"the {what} (input {i}) must be a constant, it is computed at run time")
        return t.data

    def ints(self, i: int, what: str) -> list[int]:
        data = self.const(i, what)
        if data.dtype.kind not in "iu":
            raise self.fail(f"the {what} (input {i}) is {data.dtype}, expected integers")
        return [int(v) for v in data.reshape(-1)]

    # -- shapes and options -----------------------------------------------------------------------
    def rank(self, t: Tensor, rank: int, what: str) -> None:
        if len(t.shape) != rank:
            raise self.fail(f"the {what} {t.name!r} has shape {list(t.shape)}, expected {rank} dimensions")

    def axis(self, axis: int, rank: int) -> int:
        """A possibly negative axis normalised into [0, rank)."""
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is out of range for a {rank}-D tensor")
        return axis % rank

    def positive(self, *keys: str) -> tuple[int, ...]:
        """Option values that must be >= 1 (strides, dilations, window sizes)."""
        values = tuple(int(self.options[k]) for k in keys)
        if any(v < 1 for v in values):
            raise self.fail(f"{'/'.join(keys)} = {list(values)} must be positive")
        return values

    def activation(self) -> str:
        code = int(self.options.get("FusedActivationFunction", 0))
        act = _ACTIVATIONS.get(code)
        if act is None:
            raise self.fail(f"unknown fused activation code {code}")
        if act in ("TANH", "SIGN_BIT"):
            raise self.unsupported(f"fused activation {act} is not supported")
        return act

    def padding(self) -> int:
        code = int(self.options["Padding"])
        if code not in (geometry.SAME, geometry.VALID):
            raise self.fail(f"unknown padding type {code}")
        return code

    def window_pads(self, in_hw: tuple[int, ...], k_hw: tuple[int, ...], strides: tuple[int, ...],
                    dilations: tuple[int, ...], out_hw: tuple[int, ...]) -> tuple[int, ...]:
        padding = self.padding()
        pads = geometry.window_pads(padding, in_hw, k_hw, strides, dilations, out_hw)
        if pads is None:
            want = [geometry.out_size(padding, n, k, s, d)
                    for n, k, s, d in zip(in_hw, k_hw, strides, dilations)]
            raise self.fail(f"output spatial size {list(out_hw)} is not the {want} that "
                            f"{'SAME' if padding == geometry.SAME else 'VALID'} padding gives")
        return pads

    def same_shape(self, a: Tensor, b: Tensor) -> None:
        if a.shape != b.shape:
            raise self.fail(f"{a.name!r} has shape {list(a.shape)} but {b.name!r} has {list(b.shape)}")
