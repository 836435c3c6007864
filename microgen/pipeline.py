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


def run_on_board(model_path: str | os.PathLike, board: str, samples: dict, build_dir: str | os.PathLike) -> dict:
    """Build MODEL for `board`, run every sample there, return the outputs stacked per output name."""
    from .device import host
    from .errors import BoardError

    if board != "host":
        raise BoardError(f"unknown board {board!r}: today `run --board` takes 'host'")
    result = build(model_path, build_dir, board=board)
    exe = host.compile_project(build_dir, result.project.name)
    return host.run_executable(exe, result.graph, samples)


def code_bytes(result: BuildResult) -> int | None:
    """Text bytes of the compiled library (host compiler, -Os), weights excluded; None without a compiler."""
    import shutil
    import subprocess

    cc = shutil.which("gcc")
    size = shutil.which("size")
    if not cc or not size:
        return None
    src = result.project.source
    obj = src.with_suffix(".o")
    proc = subprocess.run([cc, "-std=c99", "-Os", "-c", str(src), "-o", str(obj), "-I", str(src.parent)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    out = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True).stdout
    obj.unlink(missing_ok=True)
    return sum(int(line.split()[1]) for line in out.splitlines()
               if line.startswith(".text") and len(line.split()) > 1)


def format_summary(s: dict) -> str:
    from .textui import num

    lines = [
        f"built {s['name']} from {s['model']} into {s['out_dir']} in {s['build_seconds']:.2f} s",
        f"  ops {s['ops']} ({s['kernels']} kernels), MACs {num(s['macs'])}",
        f"  arena {num(s['arena_bytes'])} B (lower bound {num(s['arena_lower_bound'])} B; live-bytes peak in "
        f"the model's own op order {num(s['tflm_order_peak'])} B)",
        f"  constants (weights, biases, tables) {num(s['weight_bytes'])} B",
    ]
    if "code_bytes_host" in s:
        lines.append(f"  code {num(s['code_bytes_host'])} B (host gcc -Os, .text)")
    return "\n".join(lines)
