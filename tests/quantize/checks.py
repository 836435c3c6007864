"""Shared checks: a quantized graph, exported, runs bit-exactly in TFLM and in the generated C."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microgen import pipeline, reference
from microgen.device import host
from microgen.exporters import write_tflite
from microgen.testing.corpus import seeded_inputs
from microgen.testing.oracles import tflm_run


def graph_inputs(graph, n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Seeded samples for the graph's own inputs (int8 or float), [n, *shape]."""
    return {t.name: seeded_inputs(t, n, seed + i) for i, t in enumerate(graph.input_tensors())}


def assert_equal_outputs(got: dict, want: dict, where: str) -> None:
    for name, w in want.items():
        g = np.asarray(got[name]).reshape(w.shape)
        if np.issubdtype(w.dtype, np.integer):
            bad = int(np.count_nonzero(g != w))
            assert bad == 0, f"{where}: {name}: {bad}/{w.size} values differ"
        else:  # float io: DEQUANTIZE of equal integers is the same float32 multiply
            np.testing.assert_array_equal(g, w, err_msg=f"{where}: {name}")


def check_tflm(graph, path: Path, inputs: dict) -> None:
    """Write graph to path; TFLM on the file == reference executor on the graph."""
    write_tflite(graph, path)
    want = reference.run_samples(graph, inputs)
    oracle = tflm_run(str(path), [inputs[n] for n in graph.inputs])
    assert_equal_outputs({n: oracle.outputs[k] for k, n in enumerate(graph.outputs)}, want, "TFLM")


def check_c(tflite_path: Path, graph, inputs: dict, out_dir: Path, name: str = "q") -> None:
    """Build the written model into C on the host; its outputs == reference executor on the graph."""
    built = pipeline.build(tflite_path, out_dir, name=name)
    exe = host.compile_project(out_dir, built.project.name)
    got = host.run_executable(exe, built.graph, inputs)
    assert_equal_outputs(got, reference.run_samples(graph, inputs), "generated C")
