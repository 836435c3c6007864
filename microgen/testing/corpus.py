"""Where the shared real-model corpus lives: `../shared/models` beside the repository.

Tests that need it skip with a clear reason when it is absent, except under CI (CI=true), where a
missing corpus is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MICROGEN_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"


def model_path(rel: str) -> Path:
    """Path of a corpus file, e.g. model_path('mlperf_tiny/kws_ref_model.tflite')."""
    return MODELS / rel


def corpus_available() -> bool:
    return MODELS.is_dir()


def require_model(rel: str) -> Path:
    """The path of a corpus file for a test; skips it (fails it under CI=true) when ../shared is missing."""
    import pytest

    path = model_path(rel)
    if not path.exists():
        msg = f"{path} not found: the shared model corpus (../shared/models) is not beside the repo"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: the corpus must be present)")
        pytest.skip(msg)
    return path


def seeded_inputs(tensor, n: int, seed: int):
    """n seeded samples for an input Tensor, stacked [n, *shape].

    Integer inputs vary their amplitude around the zero point sample by sample (full-range noise
    saturates most classifiers' outputs); float inputs are normal with a varying amplitude.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        amp = [1, 4, 16, 48, 128, 256][i % 6]
        if tensor.dtype.is_int:
            lo, hi = tensor.dtype.limits()
            zp = tensor.quant.zero_point[0] if tensor.quant is not None else 0
            x = np.clip(np.round(rng.normal(zp, amp, size=tensor.shape)), lo, hi)
            out.append(x.astype(tensor.dtype.np))
        else:
            out.append(rng.normal(0, amp / 32.0, size=tensor.shape).astype(tensor.dtype.np))
    return np.stack(out)


# The models the importers cover (issue "foundation"), by kind; tests and benchmarks share these lists.
INT_TFLITE = [
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "tflm/hello_world_int8.tflite",
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
]
SLOW_INT_TFLITE = ["mlperf_tiny/vww_96_int8.tflite"]
FLOAT_TFLITE = [
    "mlperf_tiny/ad01_fp32.tflite",
    "tflm/hello_world_float.tflite",
    "digits/digits_cnn_float.tflite",
    "digits/digits_mlp_float.tflite",
]
SLOW_FLOAT_TFLITE = ["mlperf_tiny/pretrainedResnet.tflite", "mlperf_tiny/vww_96_float.tflite"]
HYBRID_TFLITE = ["mlperf_tiny/kws_ref_model_float32.tflite"]
ONNX_MODELS = [
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


def short_id(rel: str) -> str:
    """'mlperf_tiny/kws_ref_model.tflite' -> 'kws_ref_model.tflite' (test ids)."""
    return rel.rsplit("/", 1)[-1]


def require_tools(*programs: str) -> None:
    """Skip a test whose programs (cross compilers, QEMU) are not installed; under CI=true fail instead,
    since `make test` installs them there (a skip would hide a broken set-up)."""
    import shutil

    import pytest

    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        msg = f"needs {', '.join(missing)} (make setup installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: the toolchains must be present)")
        pytest.skip(msg)
