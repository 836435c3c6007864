"""The generated C, compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic -O2 and again with
ASan/UBSan, on every model the importers cover: bit-exact with TFLM (int8/int16) or within 1e-5 (float);
ONNX models against the reference executor (itself checked against onnxruntime)."""

import pytest

from microgen.testing import corpus
from microgen.testing.corpus import require_model

from .host_check import assert_matches_reference, assert_matches_tflm, build_and_run

TFLITE = corpus.INT_TFLITE + corpus.FLOAT_TFLITE
SLOW_TFLITE = corpus.SLOW_INT_TFLITE + corpus.SLOW_FLOAT_TFLITE + corpus.HYBRID_TFLITE
ONNX = corpus.ONNX_MODELS


_id = corpus.short_id


def _check_tflite(rel, tmp_path, sanitize=True):
    path = require_model(rel)
    result, inputs, outputs = build_and_run(path, tmp_path / "out", sanitize=sanitize)
    if rel.endswith("kws_ref_model_float32.tflite"):  # hybrid: TFLM refuses it
        assert_matches_reference(path, result, inputs, outputs)
    else:
        assert_matches_tflm(path, result, inputs, outputs)
    result.plan.check()
    assert result.plan.arena_size <= result.plan.lower_bound


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
