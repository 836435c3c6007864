"""`make bench`: speed and memory figures of microgen, printed as tables.

1. Build: per MLPerf Tiny int8 model, microgen's arena against its lower bound and TFLM's arena
   (arena_used_bytes of the 32-bit build, ../shared/baselines/tflm_cmsis_nn.json), constant bytes, code
   bytes (.text of an arm-none-eabi-gcc -Os -mcpu=cortex-m4 build of the library, weights excluded) and
   build time.
2. Host: how long importing a model and one reference-executor inference take (wall time, median of 5).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microgen import importers, pipeline, reference  # noqa: E402
from microgen.testing.corpus import SHARED  # noqa: E402
from microgen.graph.analysis import summarize  # noqa: E402
from microgen.testing.corpus import corpus_available, model_path, seeded_inputs  # noqa: E402
from microgen.textui import num, table  # noqa: E402

MLPERF = {
    "KWS": "mlperf_tiny/kws_ref_model.tflite",
    "VWW": "mlperf_tiny/vww_96_int8.tflite",
    "ResNet-8": "mlperf_tiny/pretrainedResnet_quant.tflite",
    "AD": "mlperf_tiny/ad01_int8.tflite",
}
BASELINE_KEYS = {"KWS": "kws", "VWW": "vww", "ResNet-8": "ic", "AD": "ad"}
ARENA_GOALS = {"KWS": 17_000, "VWW": 72_500, "ResNet-8": 39_200, "AD": 2_800}  # 0.7x TFLM (issue goals)


def arm_code_bytes(source: Path) -> int | None:
    """.text bytes of the library built with arm-none-eabi-gcc -Os for Cortex-M4 (constants are .rodata)."""
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        return None
    obj = source.with_suffix(".m4.o")
    flags = ["-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
    proc = subprocess.run([cc, *flags, "-c", str(source), "-o", str(obj), "-I", str(source.parent)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    out = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True, text=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if line.startswith(".text"))


def build_table() -> str:
    baseline = json.loads((SHARED / "baselines" / "tflm_cmsis_nn.json").read_text())["models"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, rel in MLPERF.items():
            t0 = time.perf_counter()
            try:
                result = pipeline.build(model_path(rel), Path(tmp) / label)
            except Exception as e:  # a model the code generator cannot take yet: say so in the table
                rows.append([label, f"build failed: {str(e)[:60]}", "", "", "", "", "", "", ""])
                continue
            seconds = time.perf_counter() - t0
            tflm = baseline[BASELINE_KEYS[label]]["cortex-m4"]["arena_used_bytes"]
            code = arm_code_bytes(result.project.source)
            s = result.summary()
            rows.append([label, num(s["arena_bytes"]), num(s["arena_lower_bound"]), num(tflm),
                         f"{s['arena_bytes'] / tflm:.2f}x", num(ARENA_GOALS[label]), num(s["weight_bytes"]),
                         num(code) if code is not None else "n/a", f"{seconds:.2f}"])
    return table(["model", "arena B", "lower bound B", "TFLM arena B", "ratio", "goal B", "const B",
                  "code B (M4 -Os)", "build s"], rows, right=range(1, 9))


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
    print("Build: arena vs lower bound vs TFLM (32-bit arena_used_bytes), constants, code, build time")
    print(build_table())
    print()
    print("Host: import + one reference inference (wall time, median of 5)")
    print(host_speed_table())
    if "--no-boards" not in sys.argv:
        import emulated
        emulated.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
