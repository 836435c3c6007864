"""`make bench`: speed and memory figures of microgen, printed as tables.

Today: how long importing a model and one reference-executor inference take on the host (wall time,
median of several runs) for the MLPerf Tiny models. Later issues add arena sizes, code size and
emulated instructions per inference.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microgen import importers, reference  # noqa: E402
from microgen.graph.analysis import summarize  # noqa: E402
from microgen.testing.corpus import corpus_available, model_path, seeded_inputs  # noqa: E402
from microgen.textui import num, table  # noqa: E402

MLPERF = {
    "KWS": "mlperf_tiny/kws_ref_model.tflite",
    "VWW": "mlperf_tiny/vww_96_int8.tflite",
    "ResNet-8": "mlperf_tiny/pretrainedResnet_quant.tflite",
    "AD": "mlperf_tiny/ad01_int8.tflite",
}


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def host_speed_table() -> str:
    rows = []
    for label, rel in MLPERF.items():
        path = model_path(rel)
        t_import = median_seconds(lambda: importers.load(path), 5)
        graph = importers.load(path)
        feeds = {t.name: seeded_inputs(t, 1, seed=0)[0] for t in graph.input_tensors()}
        t_run = median_seconds(lambda: reference.run(graph, feeds), 5)
        s = summarize(graph)
        rows.append([label, num(s.macs), f"{t_import * 1e3:.1f}", f"{t_run * 1e3:.1f}",
                     f"{(t_import + t_run) * 1e3:.1f}"])
    return table(["model", "MACs", "import ms", "reference run ms", "import + run ms"], rows,
                 right=(1, 2, 3, 4))


def main() -> int:
    if not corpus_available():
        print("bench: ../shared/models not found; the benchmarks need the MLPerf Tiny models", file=sys.stderr)
        return 1
    print("Host: import + one reference inference (wall time, median of 5)")
    print(host_speed_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
