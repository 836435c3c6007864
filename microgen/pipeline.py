"""The build pipeline, top to bottom: import, plan memory, lower to loop nests, emit C.

One function per verb; the CLI only parses options and calls these.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import c_emitter, importers, memory_planner
from .graph import Graph
from .graph.analysis import summarize
from .memory_planner import ArenaPlan
from .tir.lower import LoweredOp, Target, c_identifier, lower as lower_graph


@dataclass(frozen=True)
class BuildResult:
    graph: Graph
    plan: ArenaPlan
    steps: tuple[LoweredOp, ...]
    project: c_emitter.EmittedProject
    seconds: float

    def summary(self) -> dict:
        s = summarize(self.graph)
        return dict(
            model=self.graph.name, name=self.project.name, out_dir=str(self.project.out_dir),
            ops=s.ops, kernels=sum(1 for st in self.steps if st.func is not None), macs=s.macs,
            arena_bytes=self.plan.arena_size, arena_lower_bound=self.plan.lower_bound,
            tflm_order_peak=self.plan.tflm_order_peak, weight_bytes=c_emitter.collect_consts(list(self.steps)),
            build_seconds=round(self.seconds, 3),
        )


def default_name(model_path: str | os.PathLike) -> str:
    stem = c_identifier(Path(model_path).stem).lower()
    return stem if stem[0].isalpha() else "m_" + stem


def build(model_path: str | os.PathLike, out_dir: str | os.PathLike, name: str | None = None,
          board: str = "host", target: Target | None = None) -> BuildResult:
    """Import MODEL, plan its arena, lower every op and write the C project into out_dir."""
    t0 = time.perf_counter()
    name = c_emitter.check_name(name or default_name(model_path))
    graph = importers.load(model_path)
    plan = memory_planner.plan(graph)
    steps = lower_graph(graph, plan, prefix=name, target=target)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    project = c_emitter.emit(graph, plan, steps, out_dir, name, board=board, source_hash=digest)
    return BuildResult(graph, plan, tuple(steps), project, time.perf_counter() - t0)
