"""Shared checks for generated C on the host: build a model, compile it strictly (and with ASan/UBSan),
run seeded inputs, compare with the oracle."""

from __future__ import annotations

import numpy as np

from microgen import importers, pipeline, reference
from microgen.device import host
from microgen.testing.corpus import seeded_inputs
from microgen.testing.oracles import tflm_run

N_SAMPLES = 20


def build_and_run(model_path, out_dir, n=N_SAMPLES, seed=1234, sanitize=True, name=None):
    """Build, compile (-O2 strict; and with sanitizers), run. Returns (build result, inputs, outputs)."""
    result = pipeline.build(model_path, out_dir, name=name)
    graph = result.graph
    inputs = {t.name: seeded_inputs(t, n, seed=seed + i) for i, t in enumerate(graph.input_tensors())}
    exe = host.compile_project(out_dir, result.project.name)
    outputs = host.run_executable(exe, graph, inputs)
    if sanitize:
        exe_san = host.compile_project(out_dir, result.project.name, opt="-O1", sanitize=True)
        san = host.run_executable(exe_san, graph, inputs)
        for name in graph.outputs:
            np.testing.assert_array_equal(san[name], outputs[name])
    return result, inputs, outputs


def assert_matches_tflm(model_path, result, inputs, outputs):
    """int8/int16: every element equal to TFLM; float: within 1e-5 of the largest magnitude."""
    graph = result.graph
    oracle = tflm_run(str(model_path), [inputs[n] for n in graph.inputs])
    for k, name in enumerate(graph.outputs):
        want = oracle.outputs[k].reshape(outputs[name].shape)
        compare(outputs[name], want, name)


def assert_matches_reference(model_path, result, inputs, outputs):
    graph = importers.load(model_path)
    want = reference.run_samples(graph, inputs)
    for name in graph.outputs:
        compare(outputs[name], want[name], name)


def compare(got, want, name):
    if np.issubdtype(want.dtype, np.integer):
        bad = np.count_nonzero(got != want)
        assert bad == 0, f"{name}: {bad}/{got.size} elements differ (max {np.abs(got.astype(np.int64) - want).max()})"
    else:
        scale = max(float(np.abs(want).max()), 1e-30)
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= 1e-5 * scale, f"{name}: max error {err:.3g} > 1e-5 x {scale:.3g}"
