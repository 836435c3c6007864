"""Offsets for buffers in one arena: buffers alive at the same time never overlap, except anchored pairs.

The unit of placement is a *cluster*: buffers with fixed offsets relative to each other. Most clusters
are one buffer; an op whose output may start `shift` bytes before its dying input (overlap.py) ties the
two into one cluster (output = input - shift), and chains of such ops make longer clusters.

Two steps:
1. Greedy: place clusters one by one at the lowest base offset where no member meets a placed buffer
   it shares time with, under several orderings (by size as TFLM's greedy planner does, by lifetime, by
   size x lifetime, by first use); keep the best.
2. Exact: when the greedy result is above the bound and the graph is small, a branch-and-bound search over
   "lowest fitting offset" placements in every cluster order, pruned by the best arena found so far; it
   stops at the bound or after a node budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from .liveness import Buffer, _round_up


@dataclass(frozen=True)
class Cluster:
    """Buffers placed together: members[i] sits at base + rel[i]."""

    members: tuple[Buffer, ...]
    rel: tuple[int, ...]

    @property
    def size(self) -> int:
        return max(r + b.size for r, b in zip(self.rel, self.members))

    @property
    def first(self) -> int:
        return min(b.first for b in self.members)

    @property
    def last(self) -> int:
        return max(b.last for b in self.members)


def singletons(buffers: list[Buffer]) -> list[Cluster]:
    return [Cluster((b,), (0,)) for b in buffers]


def _lowest_base(cluster: Cluster, placed: list[tuple[Buffer, int, int]], align: int) -> int:
    """Lowest aligned base offset where every member misses every time-overlapping placed buffer.
    placed: (buffer, start, end) triples."""
    conflicts = [(m, r, start, end) for m, r in zip(cluster.members, cluster.rel)
                 for (p, start, end) in placed if m.overlaps_in_time(p)]
    candidates = {0}
    for m, r, start, end in conflicts:
        if end - r > 0:
            candidates.add(_round_up(end - r, align))
    for base in sorted(candidates):
        ok = True
        for m, r, start, end in conflicts:
            lo = base + r
            if lo < end and start < lo + _round_up(m.size, align):
                ok = False
                break
        if ok:
            return base
    raise AssertionError("no base offset found")  # unreachable: the largest candidate always fits


def greedy(clusters: list[Cluster], order: list[int], align: int) -> dict[str, int]:
    offsets: dict[str, int] = {}
    placed: list[tuple[Buffer, int, int]] = []
    for idx in order:
        c = clusters[idx]
        base = _lowest_base(c, placed, align)
        for m, r in zip(c.members, c.rel):
            offsets[m.name] = base + r
            placed.append((m, base + r, base + r + _round_up(m.size, align)))
    return offsets


def arena_size(buffers: list[Buffer], offsets: dict[str, int], align: int) -> int:
    return max((offsets[b.name] + _round_up(b.size, align) for b in buffers), default=0)


def place(buffers: list[Buffer], align: int, lower_bound: int, exact_budget: int = 20_000,
          clusters: list[Cluster] | None = None) -> dict[str, int]:
    """Offsets for every buffer; tries greedy orderings, then an exact search if still above the bound."""
    clusters = clusters if clusters is not None else singletons(buffers)
    idx = list(range(len(clusters)))
    orderings = [
        sorted(idx, key=lambda i: (-clusters[i].size, clusters[i].first)),
        sorted(idx, key=lambda i: (-(clusters[i].last - clusters[i].first), -clusters[i].size)),
        sorted(idx, key=lambda i: (-clusters[i].size * (clusters[i].last - clusters[i].first + 1),)),
        sorted(idx, key=lambda i: (clusters[i].first, -clusters[i].size)),
    ]
    best: dict[str, int] = {}
    best_size = 1 << 62
    for order in orderings:
        offsets = greedy(clusters, order, align)
        size = arena_size(buffers, offsets, align)
        if size < best_size:
            best, best_size = offsets, size
    if best_size > lower_bound and len(clusters) <= 40:
        exact = _branch_and_bound(clusters, buffers, align, lower_bound, best_size, exact_budget)
        if exact is not None:
            best = exact
    return best


def _branch_and_bound(clusters: list[Cluster], buffers: list[Buffer], align: int, lower_bound: int,
                      incumbent: int, budget: int) -> dict[str, int] | None:
    """Search cluster orders (largest first at each branch) for an arena smaller than `incumbent`."""
    n = len(clusters)
    best_offsets: dict[str, int] | None = None
    best = incumbent
    nodes = 0
    placed: list[tuple[Buffer, int, int]] = []
    done = [False] * n
    sizes = [c.size for c in clusters]

    def search(count: int, top: int) -> bool:
        nonlocal best, best_offsets, nodes
        if count == n:
            if top < best:
                best = top
                best_offsets = {b.name: start for b, start, _ in placed}
            return best <= lower_bound
        nodes += 1
        if nodes > budget:
            return True
        tried = set()
        for i in sorted((i for i in range(n) if not done[i]), key=lambda i: -sizes[i]):
            c = clusters[i]
            key = (sizes[i], c.first, c.last, len(c.members))
            if key in tried:  # an identical cluster was already tried at this node
                continue
            tried.add(key)
            base = _lowest_base(c, placed, align)
            new_top = max(top, *(base + r + _round_up(m.size, align) for m, r in zip(c.members, c.rel)))
            if new_top >= best:
                continue
            done[i] = True
            for m, r in zip(c.members, c.rel):
                placed.append((m, base + r, base + r + _round_up(m.size, align)))
            stop = search(count + 1, new_top)
            del placed[len(placed) - len(c.members):]
            done[i] = False
            if stop:
                return True
        return False

    search(0, 0)
    return best_offsets
