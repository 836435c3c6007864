"""The arena plan: where every activation lives, and checks that the plan is sound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..graph import Graph
from .liveness import Buffer, _round_up, best_order, build_buffers, peak_bytes, scratch_name
from .overlap import safe_shift
from .placement import Cluster, arena_size, place


@dataclass(frozen=True)
class Overlap:
    """At op step `step`, buffer `output` starts `shift` bytes before buffer `input` (proven safe)."""

    input: str
    output: str
    shift: int
    step: int


@dataclass(frozen=True)
class ArenaPlan:
    """A static memory plan.

    order: op indices of graph.ops in the order the generated code runs them.
    buffers: the buffers (groups of tensors sharing memory) with lifetimes in that order.
    offsets: byte offset in the arena of every activation tensor (tensors of one buffer share it).
    overlaps: output-over-consumed-input pairs (see overlap.py).
    arena_size: bytes the caller must provide. lower_bound: peak of live bytes for this order and these
    buffers with no two tensors overlapping (the classic bound; overlaps can go below it).
    tflm_order_peak: the same peak for the model's own op order without any sharing, the bound TFLM's
    planner works against.
    """

    order: tuple[int, ...]
    buffers: tuple[Buffer, ...]
    offsets: Mapping[str, int]
    arena_size: int
    lower_bound: int
    tflm_order_peak: int
    alignment: int
    overlaps: tuple[Overlap, ...] = ()

    def buffer_of(self, tensor: str) -> Buffer:
        return next(b for b in self.buffers if tensor in b.tensors)

    def check(self) -> None:
        """Assert the invariant: buffers alive at the same time never overlap (except the proven
        overlap pairs, exactly as planned), and all lie inside the arena."""
        spans = {b.name: (self.offsets[b.tensors[0]], self.offsets[b.tensors[0]] + b.size) for b in self.buffers}
        allowed = {(o.input, o.output): o for o in self.overlaps}
        for b in self.buffers:
            lo, hi = spans[b.name]
            assert lo % self.alignment == 0 and 0 <= lo and hi <= self.arena_size, (b, lo, hi)
            assert all(self.offsets[t] == lo for t in b.tensors)
        for i, a in enumerate(self.buffers):
            for b in self.buffers[i + 1:]:
                if not a.overlaps_in_time(b):
                    continue
                (a0, a1), (b0, b1) = spans[a.name], spans[b.name]
                if a1 <= b0 or b1 <= a0:
                    continue
                pair = allowed.get((a.name, b.name)) or allowed.get((b.name, a.name))
                assert pair is not None, f"buffers {a.name} and {b.name} overlap in time and space"
                assert spans[pair.output][0] == spans[pair.input][0] - pair.shift, pair
                assert a.first == b.last or b.first == a.last, f"overlap pair {pair} shares more than one step"

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
                    lo = int(off / scale)
                    for c in range(lo, min(width, max(int((off + b.size) / scale), lo + 1))):
                        row[c] = key[b.name]
            rows.append(f"{step:4d} |{''.join(row)}|")
        legend = [f"  {key[b.name]} = {', '.join(b.tensors)} ({b.size} B @ {self.offsets[b.tensors[0]]})"
                  for b in self.buffers]
        return "\n".join(rows + legend)


def find_overlaps(graph: Graph, order: list[int], buffers: list[Buffer], align: int,
                  orders: dict[int, object] | None = None) -> list[Overlap]:
    """Output-over-input pairs worth taking: the op's input buffer dies at the op and is no graph output,
    and sharing saves bytes. orders: each op's kernel AccessOrder (tir.schedule), by op index."""
    by_tensor = {t: b for b in buffers for t in b.tensors}
    result = []
    used_inputs: set[str] = set()
    for step, index in enumerate(order):
        op = graph.ops[index]
        shift = safe_shift(graph, op, (orders or {}).get(index))
        if shift is None:
            continue
        src, dst = by_tensor.get(op.inputs[0]), by_tensor.get(op.outputs[0])
        if src is None or dst is None or src is dst or src.last != step or dst.first != step:
            continue
        if set(src.tensors) & set(graph.outputs) or src.name in used_inputs:
            continue
        shift = _round_up(shift, align)
        footprint = shift + max(_round_up(src.size, align), _round_up(dst.size, align) - shift)
        if footprint < _round_up(src.size, align) + _round_up(dst.size, align):
            result.append(Overlap(src.name, dst.name, shift, step))
            used_inputs.add(src.name)
    return result


def make_clusters(buffers: list[Buffer], overlaps: list[Overlap]) -> list[Cluster]:
    """Chain the overlap pairs into clusters with relative offsets (output = input - shift)."""
    by_name = {b.name: b for b in buffers}
    parent_of = {o.output: o for o in overlaps}  # each output has one input anchor
    child_of = {o.input: o for o in overlaps}
    clusters = []
    seen: set[str] = set()
    for b in buffers:
        if b.name in seen:
            continue
        head = b.name  # walk up to the chain's first input
        while head in parent_of:
            head = parent_of[head].input
        members, rel, pos = [], [], 0
        name = head
        while True:
            members.append(by_name[name])
            rel.append(pos)
            seen.add(name)
            link = child_of.get(name)
            if link is None:
                break
            pos -= link.shift
            name = link.output
        low = min(rel)
        clusters.append(Cluster(tuple(members), tuple(r - low for r in rel)))
    return clusters


def cluster_peak(clusters: list[Cluster], align: int) -> int:
    """Peak over steps of the summed extents of every cluster's live members: a bound with overlaps."""
    horizon = max((c.last for c in clusters), default=0) + 1
    return max((_step_bytes(clusters, step, align) for step in range(horizon)), default=0)


def _step_bytes(clusters: list[Cluster], step: int, align: int) -> int:
    total = 0
    for c in clusters:
        spans = [(r, r + _round_up(m.size, align)) for m, r in zip(c.members, c.rel) if m.first <= step <= m.last]
        if spans:
            total += max(e for _, e in spans) - min(s for s, _ in spans)
    return total


def choose_overlaps(buffers: list[Buffer], candidates: list[Overlap], align: int) -> list[Overlap]:
    """Keep the overlaps that shrink the arena.

    Taking every candidate is not best: a chain of overlaps is one rigid cluster whose members drift
    down by each shift, so a long chain (a MobileNet) can need more room than no overlap at all. Greedy:
    start from none, try candidates at the busiest steps first, keep one when the arena does not grow and
    the bound with overlaps drops.
    """
    if not candidates:
        return []
    live = _live_per_step(buffers, align)
    chosen: list[Overlap] = []
    best = (_trial_arena(buffers, chosen, align), _footprints(buffers, chosen, align))
    for cand in sorted(candidates, key=lambda o: -live[o.step]):
        trial = chosen + [cand]
        score = (_trial_arena(buffers, trial, align), _footprints(buffers, trial, align))
        # Smaller arena, or the same arena with busy steps made lighter (they may be the next peak).
        if score < best:
            chosen, best = trial, score
    every = (_trial_arena(buffers, candidates, align), _footprints(buffers, candidates, align))
    return list(candidates) if every < best else chosen


def _footprints(buffers: list[Buffer], overlaps: list[Overlap], align: int) -> list[int]:
    """Per-step bytes with these overlaps, heaviest first (compared lexicographically)."""
    clusters = make_clusters(buffers, overlaps)
    horizon = max((c.last for c in clusters), default=0) + 1
    return sorted((_step_bytes(clusters, step, align) for step in range(horizon)), reverse=True)


def _trial_arena(buffers: list[Buffer], overlaps: list[Overlap], align: int) -> int:
    clusters = make_clusters(buffers, overlaps)
    offsets = place(buffers, align, cluster_peak(clusters, align), exact_budget=2_000, clusters=clusters)
    return arena_size(buffers, offsets, align)


def _live_per_step(buffers: list[Buffer], align: int) -> list[int]:
    horizon = max((b.last for b in buffers), default=0) + 1
    live = [0] * (horizon + 1)
    for b in buffers:
        for step in range(b.first, b.last + 1):
            live[step] += _round_up(b.size, align)
    return live


def plan(graph: Graph, alignment: int = 8, inplace: bool = True, reorder: bool = True,
         overlap: bool = True, schedules: dict | None = None) -> ArenaPlan:
    """Plan the arena of `graph`: choose the op order, share buffers in place, overlap outputs with
    consumed inputs where proven safe, place everything.

    schedules: the kernel schedule of each op (op index -> tir.schedule.Schedule): their scratch buffers
    are planned too (at offsets[scratch_name(i)]) and their write orders decide which overlaps are safe.
    Without them every op is taken as a generic kernel (no scratch, row-major writes).
    """
    scratch, orders = {}, {}
    if schedules:
        from ..tir.schedule import access_order, scratch_bytes
        for i, op in enumerate(graph.ops):
            scratch[i] = scratch_bytes(graph, op, schedules[i])
            orders[i] = access_order(graph, op, schedules[i])
    order = best_order(graph, alignment, inplace, scratch=scratch) if reorder else list(range(len(graph.ops)))
    buffers = build_buffers(graph, order, inplace, scratch)
    lower = peak_bytes(buffers, alignment)
    candidates = find_overlaps(graph, order, buffers, alignment, orders) if overlap else []
    overlaps = choose_overlaps(buffers, candidates, alignment)
    clusters = make_clusters(buffers, overlaps)
    buffer_offsets = place(buffers, alignment, cluster_peak(clusters, alignment), clusters=clusters)
    offsets = {t: buffer_offsets[b.name] for b in buffers for t in b.tensors}
    assert all(scratch_name(i) in offsets for i, n in scratch.items() if n)
    result = ArenaPlan(
        order=tuple(order), buffers=tuple(buffers), offsets=offsets,
        arena_size=arena_size(buffers, buffer_offsets, alignment), lower_bound=lower,
        tflm_order_peak=peak_bytes(build_buffers(graph, list(range(len(graph.ops))), inplace=False), alignment),
        alignment=alignment, overlaps=tuple(overlaps),
    )
    result.check()
    return result
