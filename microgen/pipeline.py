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
from .tir.schedule import Schedule, choose as choose_schedules


@dataclass(frozen=True)
class BuildResult:
    graph: Graph
    plan: ArenaPlan
    steps: tuple[LoweredOp, ...]
    project: c_emitter.EmittedProject
    seconds: float
    schedules: dict[int, Schedule] | None = None  # op index -> kernel schedule
    tuning: object = None                          # tune.apply.Tuning when built with a tuning log

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
          board: str = "host", target: Target | None = None,
          tuning_log: str | os.PathLike | None = None) -> BuildResult:
    """Import MODEL, plan its arena, lower every op and write the C project into out_dir.
    For a board other than 'host', lower for the board's features and also write its firmware
    project into out_dir/firmware (`make` there builds it). tuning_log: a `microgen tune` log; the
    best record of each task replaces its default schedule (result.tuning says what was used)."""
    t0 = time.perf_counter()
    board_file = None
    if board != "host":
        from .boards import get_board
        board_file = get_board(board)
        target = target or board_file.target()
    name = c_emitter.check_name(name or default_name(model_path))
    graph = importers.load(model_path)
    target = target or Target()
    tuning = None
    if tuning_log is not None:                                   # best tuning record per task
        from .tune.apply import tuned_schedules
        tuning = tuned_schedules(graph, target, board if board != "host" else target.name, tuning_log)
    schedules = choose_schedules(graph, target, tuning.tuned if tuning else None)  # templates and knobs per op
    plan = memory_planner.plan(graph, schedules=schedules)       # activations + scratch, overlaps by write order
    steps = lower_graph(graph, plan, prefix=name, target=target, schedules=schedules)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    project = c_emitter.emit(graph, plan, steps, out_dir, name, board=board, source_hash=digest)
    result = BuildResult(graph, plan, tuple(steps), project, time.perf_counter() - t0, schedules, tuning)
    if board_file is not None:
        from .device.firmware import emit_firmware
        emit_firmware(result, board_file, Path(out_dir) / "firmware")
    return result


def build_quantized(model_path: str | os.PathLike, out_dir: str | os.PathLike, calib: str | None = None,
                    synthetic: bool = False, name: str | None = None, board: str = "host", warn=print):
    """Quantize the float MODEL to int8 (quantize.run.quantize_file; calibration data from `calib`, or
    synthetic with a warning), write it as out_dir/NAME.tflite, and build that like any int8 model.
    Returns (quantize.run.Outcome, BuildResult)."""
    from .exporters import write_tflite
    from .quantize.run import quantize_file

    name = c_emitter.check_name(name or default_name(model_path))
    outcome = quantize_file(model_path, calib, synthetic, estimate=False, warn=warn)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    q_path = Path(out_dir) / f"{name}.tflite"
    write_tflite(outcome.result.graph, q_path)
    return outcome, build(q_path, out_dir, name=name, board=board)


def build_for_board(model_path: str | os.PathLike, board: str, build_dir: str | os.PathLike,
                    name: str | None = None, extra_cflags: tuple[str, ...] = (), plain_c: bool = False,
                    tuning_log: str | os.PathLike | None = None):
    """Build MODEL's library for `board` into build_dir and its measurement firmware into
    build_dir/firmware. plain_c: use no SIMD instructions (the board's target without DSP/MVE), for
    comparisons. Returns (BuildResult, Board, FirmwareResult)."""
    import dataclasses

    from .boards import get_board
    from .device.firmware import build_firmware

    b = get_board(board)
    target = b.target()
    if plain_c:
        target = dataclasses.replace(target, dsp=False, mve=False)
        extra_cflags = (*extra_cflags, "-DMG_PORTABLE_INTRINSICS")
    result = build(model_path, build_dir, name=name, board=b.name, target=target, tuning_log=tuning_log)
    fw = build_firmware(result, b, Path(build_dir) / "firmware", extra_cflags=extra_cflags)
    return result, b, fw


def boot(result: BuildResult, board, elf, port: str | None = None, timeout: float = 5.0):
    """Boot a built firmware on `board` (a boards.Board) and check it carries result's model.
    Returns a Session; the caller closes it (that also stops QEMU)."""
    from .device import connect, runner

    session = connect.open_board(board, elf, port=port, timeout=timeout)
    try:
        runner.check_firmware(session, result.graph, result.project.name)
    except BaseException:
        session.close()
        raise
    return session


def open_board(model_path: str | os.PathLike, board: str, build_dir: str | os.PathLike, port: str | None = None,
               timeout: float = 5.0, extra_cflags: tuple[str, ...] = (), tuning_log: str | os.PathLike | None = None):
    """Build MODEL for `board` and boot it there. Returns (BuildResult, Session)."""
    result, b, fw = build_for_board(model_path, board, build_dir, extra_cflags=extra_cflags, tuning_log=tuning_log)
    return result, boot(result, b, fw.elf, port, timeout)


def run_on_board(model_path: str | os.PathLike, board: str, samples: dict, build_dir: str | os.PathLike,
                 port: str | None = None, timeout: float = 5.0, tuning_log: str | os.PathLike | None = None) -> dict:
    """Build MODEL for `board`, run every sample there, return the outputs stacked per output name.
    Board 'host' compiles and runs on this machine; any other board boots its firmware (QEMU for
    emulated boards, the flasher and `port` for real ones)."""
    from .device import host, runner

    if board == "host":
        result = build(model_path, build_dir, board=board, tuning_log=tuning_log)
        exe = host.compile_project(build_dir, result.project.name)
        return host.run_executable(exe, result.graph, samples)
    result, session = open_board(model_path, board, build_dir, port, timeout, tuning_log=tuning_log)
    with session:
        outputs = runner.run_samples(session, result.graph, samples, runner.run_timeout(result.graph, timeout))
        session.exit()
    return outputs


@dataclass(frozen=True)
class OutputCheck:
    name: str
    mismatched: int          # samples whose output differs from the reference
    max_abs_diff: float


@dataclass(frozen=True)
class Validation:
    model: str
    board: str
    samples: int
    seed: int
    outputs: tuple[OutputCheck, ...]

    @property
    def ok(self) -> bool:
        return all(o.mismatched == 0 for o in self.outputs)

    def text(self) -> str:
        lines = [f"validate {self.model} on {self.board}: {self.samples} seeded sample(s) (seed {self.seed}) "
                 f"against the reference executor"]
        for o in self.outputs:
            lines.append(f"  output {o.name}: {o.mismatched} of {self.samples} sample(s) differ"
                         + (f" (max |diff| {o.max_abs_diff:g})" if o.mismatched else ""))
        lines.append("OK: bit-exact" if self.ok else "MISMATCH")
        return "\n".join(lines)


def validate(model_path: str | os.PathLike, board: str, samples: int, seed: int, build_dir: str | os.PathLike,
             port: str | None = None, timeout: float = 5.0, tuning_log: str | os.PathLike | None = None) -> Validation:
    """Run `samples` seeded inputs on `board` and compare every output with microgen.reference.run.
    Integer outputs must match exactly; float outputs within 1e-5 (absolute and relative)."""
    import numpy as np

    from . import reference
    from .errors import InvalidInputError
    from .testing.corpus import seeded_inputs

    if samples < 1:
        raise InvalidInputError(f"--samples {samples}: give at least 1")
    graph = importers.load(model_path)
    inputs = {t.name: seeded_inputs(t, samples, seed + i) for i, t in enumerate(graph.input_tensors())}
    got = run_on_board(model_path, board, inputs, build_dir, port, timeout, tuning_log=tuning_log)
    want = reference.run_samples(graph, inputs)
    checks = []
    for name in graph.outputs:
        g, w = got[name], want[name]
        if graph.tensors[name].dtype.is_int:
            bad = np.any((g != w).reshape(samples, -1), axis=1)
        else:
            bad = ~np.isclose(g, w, rtol=1e-5, atol=1e-5).reshape(samples, -1).all(axis=1)
        diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
        checks.append(OutputCheck(name, int(bad.sum()), float(diff.max()) if diff.size else 0.0))
    return Validation(graph.name, board, samples, seed, tuple(checks))


def profile(model_path: str | os.PathLike, board: str, build_dir: str | os.PathLike, port: str | None = None,
            timeout: float = 5.0, repeats: int = 2, seed: int = 0, tuning_log: str | os.PathLike | None = None):
    """Per-layer cost of one inference of MODEL on `board` (a profile_report.Profile), measured on a
    seeded input; each figure is the minimum over `repeats` runs."""
    return profile_build(model_path, board, build_dir, port, timeout, repeats, seed, tuning_log)[0]


def profile_build(model_path: str | os.PathLike, board: str, build_dir: str | os.PathLike, port: str | None = None,
                  timeout: float = 5.0, repeats: int = 2, seed: int = 0,
                  tuning_log: str | os.PathLike | None = None):
    """profile(), also returning the BuildResult (its schedules and tuning say which layers are tuned)."""
    from .errors import InvalidInputError

    if board == "host":
        raise InvalidInputError("profile needs a board with a counter: an emulated board (e.g. --board "
                                "qemu-cortex-m4) or a real one with --port")
    result, b, fw = build_for_board(model_path, board, build_dir, tuning_log=tuning_log)
    return profile_firmware(result, b, fw.elf, port, timeout, repeats, seed), result


def profile_firmware(result: BuildResult, board, elf, port: str | None = None, timeout: float = 5.0,
                     repeats: int = 2, seed: int = 0):
    """profile() on an already built firmware (boards.Board `board`, image `elf`)."""
    from .device import runner
    from .profile_report import make_profile
    from .testing.corpus import seeded_inputs

    graph = result.graph
    sample = {t.name: seeded_inputs(t, 1, seed + i)[0] for i, t in enumerate(graph.input_tensors())}
    with boot(result, board, elf, port, timeout) as session:
        m = runner.measure(session, graph, sample, runner.run_timeout(graph, timeout), repeats)
        session.exit()
    return make_profile(result, board.name, m)


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
