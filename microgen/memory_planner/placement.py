"""Offsets for buffers in one arena: buffers alive at the same time never overlap.

Two steps:
1. Greedy: place buffers one by one at the lowest offset that fits beside the already placed buffers
   they share time with, under several orderings (by size as TFLM's greedy planner does, by lifetime,
   by size x lifetime, by first use); keep the best.
2. Exact: when the greedy result is above the lower bound (the peak of live bytes) and the graph is
   small, a branch-and-bound search over "lowest fitting offset" placements in every buffer order,
   pruned by the best arena found so far; it stops at the lower bound or after a node budget.
"""

from __future__ import annotations

from .liveness import Buffer, _round_up


def _lowest_fit(size: int, busy: list[tuple[int, int]]) -> int:
    """Lowest offset where [offset, offset+size) misses every (start, end) interval in busy."""
    offset = 0
    for start, end in sorted(busy):
        if offset + size <= start:
            break
        offset = max(offset, end)
    return offset


def greedy(buffers: list[Buffer], order: list[int], align: int) -> dict[str, int]:
    offsets: dict[str, int] = {}
    placed: list[Buffer] = []
    for idx in order:
        b = buffers[idx]
        busy = [(offsets[p.name], offsets[p.name] + _round_up(p.size, align)) for p in placed
                if p.overlaps_in_time(b)]
        offsets[b.name] = _lowest_fit(_round_up(b.size, align), busy)
        placed.append(b)
    return offsets


def arena_size(buffers: list[Buffer], offsets: dict[str, int], align: int) -> int:
    return max((offsets[b.name] + _round_up(b.size, align) for b in buffers), default=0)


def place(buffers: list[Buffer], align: int, lower_bound: int, exact_budget: int = 200_000) -> dict[str, int]:
    """Offsets for every buffer; tries greedy orderings, then an exact search if still above the bound."""
    idx = list(range(len(buffers)))
    orderings = [
        sorted(idx, key=lambda i: (-buffers[i].size, buffers[i].first)),
        sorted(idx, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size)),
        sorted(idx, key=lambda i: (-buffers[i].size * (buffers[i].last - buffers[i].first + 1),)),
        sorted(idx, key=lambda i: (buffers[i].first, -buffers[i].size)),
    ]
    best: dict[str, int] | None = None
    best_size = 1 << 62
    for order in orderings:
        offsets = greedy(buffers, order, align)
        size = arena_size(buffers, offsets, align)
        if size < best_size:
            best, best_size = offsets, size
    assert best is not None or not buffers
    if best_size > lower_bound and len(buffers) <= 64:
        exact = _branch_and_bound(buffers, align, lower_bound, best_size, exact_budget)
        if exact is not None:
            best = exact
    return best or {}


def _branch_and_bound(buffers: list[Buffer], align: int, lower_bound: int, incumbent: int,
                      budget: int) -> dict[str, int] | None:
    """Search buffer orders (largest first at each branch) for an arena smaller than `incumbent`."""
    n = len(buffers)
    sizes = [_round_up(b.size, align) for b in buffers]
    conflicts = [[j for j in range(n) if j != i and buffers[i].overlaps_in_time(buffers[j])] for i in range(n)]
    best_offsets: list[int] | None = None
    best = incumbent
    nodes = 0
    offsets: list[int | None] = [None] * n

    def search(placed: int, current_top: int) -> bool:
        nonlocal best, best_offsets, nodes
        if placed == n:
            if current_top < best:
                best, best_offsets = current_top, list(offsets)  # type: ignore[arg-type]
            return best <= lower_bound
        nodes += 1
        if nodes > budget:
            return True
        # Branch on the unplaced buffers in decreasing size; each goes to its lowest fitting offset.
        tried_sizes = set()
        for i in sorted((i for i in range(n) if offsets[i] is None), key=lambda i: -sizes[i]):
            key = (sizes[i], buffers[i].first, buffers[i].last)
            if key in tried_sizes:  # an identical buffer was already tried at this node
                continue
            tried_sizes.add(key)
            busy = [(offsets[j], offsets[j] + sizes[j]) for j in conflicts[i] if offsets[j] is not None]
            off = _lowest_fit(sizes[i], busy)  # type: ignore[arg-type]
            top = max(current_top, off + sizes[i])
            if top >= best:
                continue
            offsets[i] = off
            stop = search(placed + 1, top)
            offsets[i] = None
            if stop:
                return True
        return False

    search(0, 0)
    if best_offsets is None:
        return None
    return {buffers[i].name: best_offsets[i] for i in range(n)}
