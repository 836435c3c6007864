"""The arena plan: where every activation lives, and checks that the plan is sound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..graph import Graph
from .liveness import Buffer, _round_up, best_order, build_buffers, peak_bytes
from .placement import arena_size, place


@dataclass(frozen=True)
class ArenaPlan:
    """A static memory plan.

    order: op indices of graph.ops in the order the generated code runs them.
    buffers: the buffers (groups of tensors sharing memory) with lifetimes in that order.
    offsets: byte offset in the arena of every activation tensor (tensors of one buffer share it).
    arena_size: bytes the caller must provide. lower_bound: peak of live bytes for this order and these
    buffers (no placement can beat it). tflm_order_peak: the peak for the model's own op order without
    sharing, the bound TFLM's planner works against.
    """

    order: tuple[int, ...]
    buffers: tuple[Buffer, ...]
    offsets: Mapping[str, int]
    arena_size: int
    lower_bound: int
    tflm_order_peak: int
    alignment: int

    def buffer_of(self, tensor: str) -> Buffer:
        return next(b for b in self.buffers if tensor in b.tensors)

    def check(self) -> None:
        """Assert the invariant: buffers alive at the same time never overlap, all inside the arena."""
        spans = {b.name: (self.offsets[b.tensors[0]], self.offsets[b.tensors[0]] + b.size) for b in self.buffers}
        for b in self.buffers:
            lo, hi = spans[b.name]
            assert lo % self.alignment == 0 and 0 <= lo and hi <= self.arena_size, (b, lo, hi)
            for t in b.tensors:
                assert self.offsets[t] == lo
        for i, a in enumerate(self.buffers):
            for b in self.buffers[i + 1:]:
                if a.overlaps_in_time(b):
                    (a0, a1), (b0, b1) = spans[a.name], spans[b.name]
                    assert a1 <= b0 or b1 <= a0, f"buffers {a.name} and {b.name} overlap in time and space"

    def timeline(self, width: int = 64) -> str:
        """A text chart: one row per op step, the arena across, a letter per live buffer."""
        scale = max(self.arena_size / width, 1)
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        key = {b.name: letters[i % len(letters)] for i, b in enumerate(self.buffers)}
        steps = max((b.last for b in self.buffers), default=0) + 1
        rows = []
        for step in range(steps):
            row = ["."] * width
            for b in self.buffers:
                if b.first <= step <= b.last:
                    off = self.offsets[b.tensors[0]]
                    for c in range(int(off / scale), min(width, max(int((off + b.size) / scale), int(off / scale) + 1))):
                        row[c] = key[b.name]
            rows.append(f"{step:4d} |{''.join(row)}|")
        legend = [f"  {key[b.name]} = {', '.join(b.tensors)} ({b.size} B @ {self.offsets[b.tensors[0]]})"
                  for b in self.buffers]
        return "\n".join(rows + legend)


def plan(graph: Graph, alignment: int = 8, inplace: bool = True, reorder: bool = True) -> ArenaPlan:
    """Plan the arena of `graph`: choose the op order, share buffers in place, place them."""
    order = best_order(graph, alignment, inplace) if reorder else list(range(len(graph.ops)))
    buffers = build_buffers(graph, order, inplace)
    lower = peak_bytes(buffers, alignment)
    buffer_offsets = place(buffers, alignment, lower)
    offsets = {t: buffer_offsets[b.name] for b in buffers for t in b.tensors}
    result = ArenaPlan(
        order=tuple(order), buffers=tuple(buffers), offsets=offsets,
        arena_size=arena_size(buffers, buffer_offsets, alignment), lower_bound=lower,
        tflm_order_peak=peak_bytes(build_buffers(graph, list(range(len(graph.ops))), inplace=False), alignment),
        alignment=alignment,
    )
    result.check()
    return result
