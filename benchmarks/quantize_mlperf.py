"""microgen's int8 post-training quantization of the float MLPerf Tiny models, beside the official int8 models.

    python benchmarks/quantize_mlperf.py [ad resnet vww] [--calib N] [--eval N] [--check-c]

The corpus has no datasets for these models, so both calibration and evaluation use seeded synthetic
inputs (quantize.calib.synthetic_calibration: smooth random fields) over each model's documented input
range, read from the official int8 model's input params (VWW [0, 1], ResNet-8 [0, 255], AD about
[-85, 15]). The official models were calibrated on real data, microgen here on synthetic data: the
comparison shows how close the two quantizations are on the same inputs, not task accuracy.
Per layer: SQNR (dB) of each model's dequantized op output against the float model's; end to end:
output SQNR and top-1 agreement with float. --check-c also builds microgen's model into C, runs it on
the host and checks it bit-exact against the reference executor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from microgen import importers, pipeline, reference  # noqa: E402
from microgen.exporters import write_tflite  # noqa: E402
from microgen.quantize import quantize  # noqa: E402
from microgen.quantize.accuracy import evaluate, evaluate_other  # noqa: E402
from microgen.quantize.calib import synthetic_calibration  # noqa: E402
from microgen.testing.corpus import model_path  # noqa: E402

MODELS = {
    "ad": ("mlperf_tiny/ad01_fp32.tflite", "mlperf_tiny/ad01_int8.tflite"),
    "resnet": ("mlperf_tiny/pretrainedResnet.tflite", "mlperf_tiny/pretrainedResnet_quant.tflite"),
    "vww": ("mlperf_tiny/vww_96_float.tflite", "mlperf_tiny/vww_96_int8.tflite"),
}


def input_range(int_graph) -> tuple[float, float]:
    """The real range the official int8 model's input covers."""
    q = int_graph.tensors[int_graph.inputs[0]].quant
    lo, hi = int_graph.tensors[int_graph.inputs[0]].dtype.limits()
    return q.s * (lo - q.zp), q.s * (hi - q.zp)


def compare(key: str, n_calib: int = 64, n_eval: int = 32, seed: int = 0):
    """(microgen QuantizeResult, its Accuracy, the official model's Accuracy, seconds to quantize)."""
    float_rel, int_rel = MODELS[key]
    g = importers.load(model_path(float_rel))
    official = importers.load(model_path(int_rel))
    lo, hi = input_range(official)
    calib = synthetic_calibration(g, n_calib, seed=seed, lo=lo, hi=hi)
    evals = synthetic_calibration(g, n_eval, seed=seed + 1000, lo=lo, hi=hi)
    t0 = time.perf_counter()
    result = quantize(g, calib)
    seconds = time.perf_counter() - t0
    ours = evaluate(result, evals, data="synthetic")
    theirs = evaluate_other(result, official, evals, data="synthetic")
    return result, ours, theirs, seconds


def table(key: str, result, ours, theirs, seconds: float) -> str:
    lines = [f"== {key}: {result.float_graph.name}, calibrated on {result.samples} synthetic samples in "
             f"{seconds:.1f} s; {ours.samples} synthetic eval samples",
             f"  {'#':>3} {'op':18s} {'microgen dB':>12s} {'official dB':>12s}  tensor"]
    for a, b in zip(ours.layers, theirs.layers):
        lines.append(f"  {a.index:3d} {a.op:18s} {a.sqnr_db:12.1f} {b.sqnr_db:12.1f}  {a.name.split(';')[0][:50]}")
    agree = lambda acc: "-" if acc.agreement is None else f"{100 * acc.agreement:.1f}%"  # noqa: E731
    lines.append(f"  output SQNR: microgen {ours.output_sqnr_db:.1f} dB, official {theirs.output_sqnr_db:.1f} dB; "
                 f"top-1 agreement with float: microgen {agree(ours)}, official {agree(theirs)}")
    return "\n".join(lines)


def check_c(result, n: int = 4) -> str:
    """Build microgen's int8 model into C on the host and compare with the reference executor."""
    from microgen.device import host
    from microgen.testing.corpus import seeded_inputs

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.tflite"
        write_tflite(result.graph, path)
        built = pipeline.build(path, Path(tmp) / "c", name="q")
        inputs = {t.name: seeded_inputs(t, n, 7) for t in built.graph.input_tensors()}
        exe = host.compile_project(Path(tmp) / "c", built.project.name)
        got = host.run_executable(exe, built.graph, inputs)
        want = reference.run_samples(result.graph, inputs)
        bad = sum(int(np.count_nonzero(got[k] != want[k])) for k in want)
    return f"  C on host vs reference executor: {bad} differing output values over {n} samples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--calib", type=int, default=64)
    ap.add_argument("--eval", type=int, default=32)
    ap.add_argument("--check-c", action="store_true")
    args = ap.parse_args()
    for key in args.models:
        result, ours, theirs, seconds = compare(key, args.calib, args.eval)
        print(table(key, result, ours, theirs, seconds))
        if args.check_c:
            print(check_c(result))
        print()


if __name__ == "__main__":
    main()
