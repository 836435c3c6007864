"""The generated C, compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 and again with
ASan/UBSan, on every model the importers cover: bit-exact with TFLM (int8/int16) or within 1e-5 (float);
ONNX models against the reference executor (itself checked against onnxruntime)."""

import pytest

from microgen.testing.corpus import require_model

from .host_check import assert_matches_reference, assert_matches_tflm, build_and_run

TFLITE = [
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "mlperf_tiny/ad01_fp32.tflite",
    "tflm/hello_world_int8.tflite",
    "tflm/hello_world_float.tflite",
    "tflm/micro_speech_quantized.tflite",
    "tflm/simple_add_model.tflite",
    "tflm/seanet_int16/add0.tflite",
    "tflm/seanet_int16/conv0.tflite",
    "tflm/seanet_int16/leaky_relu0.tflite",
    "tflm/seanet_int16/pad0.tflite",
    "tflm/seanet_int16/quantize0.tflite",
    "tflm/seanet_int16/strided_slice0.tflite",
    "tflm/seanet_int16/sub0.tflite",
    "tflm/seanet_int16/transpose_conv4.tflite",
    "extra/activations_fc_int8.tflite",
    "extra/add_mul_concat_int8.tflite",
    "extra/conv_dw_fc_int16x8.tflite",
    "extra/conv_dw_fc_per_tensor_int8.tflite",
    "extra/conv_dw_fc_uint8_io.tflite",
    "extra/pad_conv_mean_fc_int8.tflite",
    "extra/split_slice_transpose_conv1d_int8.tflite",
    "extra/transpose_conv_upsample_int8.tflite",
    "digits/digits_cnn_int8_tfliteconv.tflite",
    "digits/digits_mlp_int8_tfliteconv.tflite",
    "digits/digits_cnn_float.tflite",
    "digits/digits_mlp_float.tflite",
]
SLOW_TFLITE = [
    "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/vww_96_float.tflite",
    "mlperf_tiny/pretrainedResnet.tflite",
    "mlperf_tiny/kws_ref_model_float32.tflite",
]
ONNX = [
    "onnx/mnist-8.onnx",
    "onnx/derived/mnist-8_opset13.onnx",
    "onnx/derived/mnist-8_qdq_int8.onnx",
    "onnx/onnx2c_atmega_mnist_simplified.onnx",
    "onnx/onnx2c_mnist_pytorch.onnx",
    "onnx/onnx2c_tfl_helloworld.onnx",
    "digits/digits_cnn_float.onnx",
    "digits/digits_mlp_float.onnx",
    "digits/digits_cnn_int8_ort_qdq.onnx",
    "digits/digits_mlp_int8_ort_qdq.onnx",
]


def _id(rel):
    return rel.rsplit("/", 1)[-1]


def _check_tflite(rel, tmp_path, sanitize=True):
    path = require_model(rel)
    result, inputs, outputs = build_and_run(path, tmp_path / "out", sanitize=sanitize)
    if rel.endswith("kws_ref_model_float32.tflite"):  # hybrid: TFLM refuses it
        assert_matches_reference(path, result, inputs, outputs)
    else:
        assert_matches_tflm(path, result, inputs, outputs)
    result.plan.check()
    assert result.plan.arena_size >= result.plan.lower_bound


@pytest.mark.parametrize("rel", TFLITE, ids=[_id(r) for r in TFLITE])
def test_tflite_model_on_host(rel, tmp_path):
    _check_tflite(rel, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("rel", SLOW_TFLITE, ids=[_id(r) for r in SLOW_TFLITE])
def test_tflite_model_on_host_slow(rel, tmp_path):
    _check_tflite(rel, tmp_path)


@pytest.mark.parametrize("rel", ONNX, ids=[_id(r) for r in ONNX])
def test_onnx_model_on_host(rel, tmp_path):
    path = require_model(rel)
    result, inputs, outputs = build_and_run(path, tmp_path / "out")
    assert_matches_reference(path, result, inputs, outputs)
