"""The digits PTQ benchmark (../shared/models/digits/README.md): calibrating on calib_x only, microgen's
int8 models of the four float models reach at least the anchors' accuracy, top-1 agreement with float
and output SQNR on val_x; their .tflite files run bit-exactly in TFLM; the C build too.

The anchor figures are measured here, not copied: the TFLite anchor runs in the reference executor
(bit-exact with TFLM) against the float .tflite model, the way the README computes them (SQNR over the
500 x 10 dequantized softmax probabilities), and must round to the README's numbers.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from microgen import importers
from microgen.quantize import OBSERVER_DEFAULT, QuantizeOptions, quantize
from microgen.quantize.accuracy import evaluate, evaluate_other
from microgen.quantize.calib import load_calibration
from microgen.testing.corpus import require_model

from .checks import check_c, check_tflm

# model -> (anchor .tflite, README accuracy %, agreement %, SQNR dB)
ANCHORS = {
    "cnn": ("digits/digits_cnn_int8_tfliteconv.tflite", 98.8, 99.2, 40.2),
    "mlp": ("digits/digits_mlp_int8_tfliteconv.tflite", 98.2, 100.0, 41.7),
}
MODELS = ["digits_cnn_float.tflite", "digits_mlp_float.tflite", "digits_cnn_float.onnx", "digits_mlp_float.onnx"]


@functools.lru_cache(maxsize=None)
def data():
    return dict(np.load(require_model("digits/digits_data.npz")))


def samples(model: str, split: str) -> np.ndarray:
    """calib_x / val_x in the model's input layout: NHWC, NCHW (ONNX CNN) or [N, 64] (MLP)."""
    d = data()
    if "mlp" in model:
        return d[f"{split}_x"].reshape(-1, 64)
    return d[f"{split}_x_nchw"] if model.endswith(".onnx") else d[f"{split}_x"]


@functools.lru_cache(maxsize=None)
def quantized(model: str, observer: str = OBSERVER_DEFAULT):
    g = importers.load(require_model(f"digits/{model}"))
    result = quantize(g, {g.inputs[0]: samples(model, "calib")}, QuantizeOptions(observer=observer))
    acc = evaluate(result, {g.inputs[0]: samples(model, "val")}, data()["val_y"], "validation")
    return result, acc


@functools.lru_cache(maxsize=None)
def anchor(kind: str):
    """The TFLite anchor's figures, measured against the float .tflite model on val_x."""
    float_model = f"digits_{kind}_float.tflite"
    result, _ = quantized(float_model)
    official = importers.load(require_model(ANCHORS[kind][0]))
    x = {result.float_graph.inputs[0]: samples(float_model, "val")}
    return evaluate_other(result, official, x, data()["val_y"], "validation")


@pytest.mark.parametrize("kind", sorted(ANCHORS))
def test_anchor_measurement_matches_the_readme(kind):
    a = anchor(kind)
    _, acc, agree, sqnr = ANCHORS[kind]
    assert round(100 * a.quant_accuracy, 1) == acc
    assert round(100 * a.agreement, 1) == agree
    assert round(a.output_sqnr_db, 1) == sqnr


@pytest.mark.parametrize("model", MODELS)
def test_reaches_the_anchor(model):
    result, acc = quantized(model)
    a = anchor("cnn" if "cnn" in model else "mlp")
    print(f"\n{model}: accuracy {100 * acc.quant_accuracy:.1f}% (float {100 * acc.float_accuracy:.1f}%), "
          f"agreement {100 * acc.agreement:.1f}%, output SQNR {acc.output_sqnr_db:.2f} dB | anchor "
          f"{100 * a.quant_accuracy:.1f}% / {100 * a.agreement:.1f}% / {a.output_sqnr_db:.2f} dB")
    assert result.samples == 200 and acc.samples == 500
    assert acc.quant_accuracy >= a.quant_accuracy
    assert acc.agreement >= a.agreement
    assert acc.output_sqnr_db >= a.output_sqnr_db - 1e-9
    # The spec facts the anchors carry: int8 io, softmax output 1/256 / -128, per-channel weights.
    q = result.graph
    assert q.tensors[q.outputs[0]].quant.scale == (1 / 256,) and q.tensors[q.outputs[0]].quant.zp == -128
    assert all(q.tensors[op.inputs[1]].quant.per_channel for op in q.ops if op.kind == "FULLY_CONNECTED")


@pytest.mark.slow
def test_observer_table():
    """The measurement behind OBSERVER_DEFAULT: print every observer's figures; the default must meet
    the anchors on all four models (the others trade accuracy for SQNR here)."""
    rows = []
    for model in MODELS:
        for obs in ("minmax", "percentile", "mse"):
            _, acc = quantized(model, obs)
            rows.append(f"  {model:26s} {obs:10s} acc {100 * acc.quant_accuracy:5.1f}%  agree "
                        f"{100 * acc.agreement:5.1f}%  SQNR {acc.output_sqnr_db:6.2f} dB")
    print("\n" + "\n".join(rows))
    assert OBSERVER_DEFAULT == "minmax"


@pytest.mark.parametrize("model,io", [("digits_cnn_float.tflite", "int8"), ("digits_mlp_float.onnx", "int8"),
                                      ("digits_cnn_float.onnx", "float")])
def test_exported_tflite_is_bit_exact_in_tflm(tmp_path, model, io):
    g = importers.load(require_model(f"digits/{model}"))
    result = quantize(g, {g.inputs[0]: samples(model, "calib")}, QuantizeOptions(io=io))
    q = result.graph
    x = samples(model, "val")[:100].reshape(100, *g.tensors[g.inputs[0]].shape)
    if io == "int8":
        from microgen.quantize.params import quantize_array
        t = q.tensors[q.inputs[0]]
        x = quantize_array(x, t.quant, t.dtype)
    check_tflm(q, tmp_path / "q.tflite", {q.inputs[0]: x})
    if model.endswith(".onnx"):
        check_c(tmp_path / "q.tflite", q, {q.inputs[0]: x[:20]}, tmp_path / "c")


def test_calibration_from_the_shipped_npz_by_key():
    g = importers.load(require_model("digits/digits_cnn_float.tflite"))
    x = load_calibration(f"{require_model('digits/digits_data.npz')}:calib_x", g)
    assert x[g.inputs[0]].shape == (200, 1, 8, 8, 1)
    assert quantize(g, x).graph.dump() == quantized("digits_cnn_float.tflite")[0].graph.dump()
