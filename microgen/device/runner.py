"""Running a model and measuring it through a Session: the device half of `run`, `validate`, `profile`.

Inputs go to the board in graph input order (the order of <NAME>_INPUT<i> in the generated header),
raw bytes of the tensor's dtype; outputs come back the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BoardError
from ..graph import Graph
from .session import Session

# Conservative speed for RUN timeouts: instructions per MAC of plain C kernels, and the slowest
# supported core or emulator in instructions per second.
_INSTRUCTIONS_PER_MAC = 12
_SLOWEST_IPS = 20e6


def run_timeout(graph: Graph, base: float) -> float:
    """Seconds to allow for one inference: `base` plus a generous estimate from the model's MACs."""
    from ..graph.analysis import summarize

    return base + summarize(graph).macs * _INSTRUCTIONS_PER_MAC / _SLOWEST_IPS


def check_firmware(session: Session, graph: Graph, name: str) -> None:
    """Refuse a firmware that carries another model (a stale build, a wrong ELF)."""
    info = session.info_cache or session.info()
    want_in = tuple(graph.tensors[n].nbytes for n in graph.inputs)
    want_out = tuple(graph.tensors[n].nbytes for n in graph.outputs)
    if info.model_name != name or info.input_bytes != want_in or info.output_bytes != want_out:
        raise BoardError(
            f"the firmware on {session.where()} carries model {info.model_name!r} (inputs "
            f"{list(info.input_bytes)} B, outputs {list(info.output_bytes)} B), not {name!r} (inputs "
            f"{list(want_in)} B, outputs {list(want_out)} B): rebuild and reflash")


def infer(session: Session, graph: Graph, sample: dict[str, np.ndarray], timeout: float):
    """One inference: load every input, RUN, and return the RunResult (outputs stay on the board)."""
    for i, name in enumerate(graph.inputs):
        t = graph.tensors[name]
        session.load_input(i, np.ascontiguousarray(sample[name], dtype=t.dtype.np).tobytes())
    result = session.run(timeout=timeout)
    if result.status != 0:
        raise BoardError(f"the model's invoke returned status {result.status} on {session.where()}")
    return result


def run_samples(session: Session, graph: Graph, samples: dict[str, np.ndarray],
                timeout: float) -> dict[str, np.ndarray]:
    """Run every sample (samples[name]: [n, *shape]); returns outputs stacked the same way."""
    n = len(next(iter(samples.values())))
    outs: dict[str, list[np.ndarray]] = {name: [] for name in graph.outputs}
    for s in range(n):
        infer(session, graph, {name: samples[name][s] for name in graph.inputs}, timeout)
        for j, name in enumerate(graph.outputs):
            t = graph.tensors[name]
            raw = session.read_output(j, t.nbytes)
            outs[name].append(np.frombuffer(raw, dtype=t.dtype.np).reshape(t.shape).copy())
    return {name: np.stack(v) for name, v in outs.items()}


@dataclass(frozen=True)
class Measurement:
    """Costs of one inference as the firmware measured them, in `unit`, harness overhead excluded.

    layer_costs[i] is kernel call i of the generated invoke (layers in plan order, aliases skipped).
    With repeats > 1 every figure is the minimum over the runs: the least disturbed one (no counter
    interrupt inside, warm caches on real boards)."""

    unit: str                  # "cycles" | "emulated_instructions"
    total: int
    layer_costs: tuple[int, ...]
    resolution: float          # the counter's tick in units (1 = exact; 40 for SysTick under QEMU)
    hook_overhead: int         # units removed from each layer (harness code inside its window)
    repeats: int


def measure(session: Session, graph: Graph, sample: dict[str, np.ndarray], timeout: float,
            repeats: int = 2) -> Measurement:
    info = session.info_cache or session.info()
    totals, layers = [], []
    for _ in range(max(repeats, 1)):
        result = infer(session, graph, sample, timeout)
        if result.layers_timed != info.num_layers:
            raise BoardError(f"{session.where()} timed {result.layers_timed} layers, the model has "
                             f"{info.num_layers}: is the model built with the profiling hooks?")
        kept = min(info.num_layers, info.max_layers)
        if kept < info.num_layers:
            raise BoardError(f"the firmware keeps {info.max_layers} layer costs but the model has "
                             f"{info.num_layers}: rebuild with -DMG_MAX_LAYERS={info.num_layers}")
        if result.total == 0:
            raise BoardError(f"the counter of {session.where()} does not advance (every cost is 0): check "
                             f"the board's mg_board_counter (QEMU does not model DWT->CYCCNT)")
        totals.append(result.total)
        layers.append(session.read_profile(kept))
    per_layer = tuple(int(min(col)) for col in zip(*layers)) if layers[0] else ()
    return Measurement(info.counter_unit, int(min(totals)), per_layer, info.resolution, info.hook_inner,
                       len(totals))
