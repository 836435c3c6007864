"""Real ONNX models through the importer and the reference executor, against onnxruntime.

- float models: within 1e-5 of the output's largest magnitude (the reference sums in float64, ORT in
  float32 with its own order; both are within ~1e-6 of each other);
- QDQ int8 models (TFLM arithmetic after fusion): the same top-1 as onnxruntime's integer kernels and
  within one output quantization step on at least 99% of the outputs.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from microgen import importers
from microgen.reference import run
from microgen.testing.corpus import require_model, seeded_inputs

FLOAT_MODELS = ["onnx/mnist-8.onnx", "onnx/derived/mnist-8_opset13.onnx",
                "onnx/onnx2c_atmega_mnist_simplified.onnx", "onnx/onnx2c_mnist_pytorch.onnx",
                "onnx/onnx2c_tfl_helloworld.onnx", "digits/digits_cnn_float.onnx",
                "digits/digits_mlp_float.onnx"]


class Ort:
    """One onnxruntime session (CPU, 1 thread, default optimisation) reused across samples."""

    def __init__(self, path) -> None:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def __call__(self, feeds: dict) -> list[np.ndarray]:
        return self.sess.run(None, feeds)


def _read_pb(path) -> np.ndarray:
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def zoo_sets():
    root = require_model("onnx/mnist-8_test_data")
    for ds in sorted(os.listdir(root)):
        yield _read_pb(root / ds / "input_0.pb"), _read_pb(root / ds / "output_0.pb")


def digit_images(n: int, seed: int) -> list[np.ndarray]:
    """Realistic MNIST-like inputs: seeded picks of the 8x8 digits (0..1) upsampled x3, padded to 28x28,
    pixel range 0..255."""
    data = np.load(require_model("digits/digits_data.npz"))["val_x_nchw"]
    idx = np.random.default_rng(seed).choice(len(data), n, replace=False)
    return [np.pad(np.kron(data[i, 0], np.ones((3, 3))) * 255.0, 2)[None, None].astype(np.float32)
            for i in idx]


def assert_close(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 1e-5) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = max(float(np.abs(want).max()), 1e-30)
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} > {rtol} * {scale:.3g}"


@pytest.mark.parametrize("rel", FLOAT_MODELS)
def test_float_model_matches_onnxruntime(rel):
    path = require_model(rel)
    graph = importers.load(path)
    ort = Ort(path)
    (name,) = graph.inputs
    samples = list(seeded_inputs(graph.tensors[name], 6, seed=7))
    if "helloworld" in rel:  # the sine model: x in [0, 2 pi] (near-zero inputs give outputs near 0)
        samples = [np.array([[v]], np.float32) for v in np.linspace(0.1, 2 * np.pi, 12)]
    elif "mnist-8" in rel:
        samples += [x for x, _ in zoo_sets()] + digit_images(4, seed=1)
    elif "digits" in rel:
        val = np.load(require_model("digits/digits_data.npz"))["val_x_nchw"][:8]
        samples += [x.reshape(graph.tensors[name].shape) for x in val]
    for k, x in enumerate(samples):
        x = x.reshape(graph.tensors[name].shape).astype(np.float32)
        got = run(graph, {name: x})
        for out, want in zip(graph.outputs, ort({name: x})):
            assert_close(got[out], want, f"{rel} sample {k} output {out!r}")


def test_mnist8_zoo_expected_outputs():
    """The zoo's expected outputs (from CNTK) agree with onnxruntime only to ~1e-3 absolute."""
    graph = importers.load(require_model("onnx/mnist-8.onnx"))
    for x, want in zoo_sets():
        got = run(graph, {"Input3": x})["Plus214_Output_0"]
        assert_close(got, want, "zoo set", rtol=1e-4)


def _qdq_compare(rel: str, samples: list[np.ndarray], min_within_1: float = 0.99, min_top1: float = 1.0):
    path = require_model(rel)
    graph = importers.load(path)
    (name,), (out,) = graph.inputs, graph.outputs
    deq = graph.producers()[out]
    assert deq.kind == "DEQUANTIZE"
    q = graph.tensors[deq.inputs[0]].quant
    ort = Ort(path)
    steps, top1 = [], []
    for x in samples:
        x = x.reshape(graph.tensors[name].shape).astype(np.float32)
        values = run(graph, {name: x}, keep_all=True)
        (want,) = ort({name: x})
        ints = values[deq.inputs[0]].astype(np.int64)
        # onnxruntime's output is the dequantized int8 result: recover its integers exactly
        want_q = np.rint(want.astype(np.float64) / q.s).astype(np.int64) + q.zp
        np.testing.assert_allclose((want_q - q.zp) * np.float32(q.s), want, rtol=1e-6)
        steps.append(np.abs(ints - want_q).ravel())
        top1.append(np.argmax(values[out]) == np.argmax(want))
    steps = np.concatenate(steps)
    within = float(np.mean(steps <= 1))
    assert within >= min_within_1, f"{rel}: only {within:.1%} of outputs within 1 step (max {steps.max()})"
    assert float(np.mean(top1)) >= min_top1, f"{rel}: top-1 agrees on {np.mean(top1):.1%}"
    return steps


def test_mnist8_qdq_matches_onnxruntime_int8():
    samples = [x for x, _ in zoo_sets()] + digit_images(20, seed=2024)
    steps = _qdq_compare("onnx/derived/mnist-8_qdq_int8.onnx", samples)
    assert steps.max() <= 1


@pytest.mark.parametrize("rel", ["digits/digits_cnn_int8_ort_qdq.onnx",
                                 "digits/digits_mlp_int8_ort_qdq.onnx"])
def test_digits_qdq_matches_onnxruntime_int8(rel):
    """The softmax is TFLM's (output 1/256) requantized to the model's 1/255: one step apart often."""
    val = np.load(require_model("digits/digits_data.npz"))["val_x_nchw"][:40]
    _qdq_compare(rel, list(val), min_within_1=1.0, min_top1=0.97)
