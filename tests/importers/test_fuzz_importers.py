"""Mutated real model files (truncated, flipped bytes, spliced) fed to both importers: only MicrogenError
ever comes out, never another exception, a crash or a hang."""

import os
import signal
import tempfile
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microgen import importers
from microgen.errors import MicrogenError
from microgen.testing.corpus import require_model

SOURCES = {
    ".tflite": ["mlperf_tiny/kws_ref_model.tflite", "extra/add_mul_concat_int8.tflite",
                "tflm/hello_world_int8.tflite"],
    ".onnx": ["onnx/mnist-8.onnx", "onnx/derived/mnist-8_qdq_int8.onnx", "digits/digits_mlp_float.onnx"],
}


@contextmanager
def time_limit(seconds: int):
    """A load that takes longer than this is a hang: fail the example."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"importer took longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("zero"), st.floats(0, 1), st.integers(1, 64)),
)


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for kind, where, arg in mutations:
        if not buf:
            break
        pos = min(int(where * len(buf)), len(buf) - 1)
        if kind == "truncate":
            buf = buf[:pos]
        elif kind == "flip":
            buf[pos] ^= arg
        elif kind == "splice":  # overwrite 4 bytes with a random word (a bogus offset or length)
            buf[pos:pos + 4] = arg.to_bytes(4, "little")
        else:
            buf[pos:pos + arg] = bytes(min(arg, len(buf) - pos))
    return bytes(buf)


@pytest.mark.parametrize("suffix", sorted(SOURCES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_models_raise_only_microgen_errors(suffix, data):
    rel = data.draw(st.sampled_from(SOURCES[suffix]))
    original = require_model(rel).read_bytes()
    mutated = mutate(original, data.draw(st.lists(mutation, min_size=1, max_size=4)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model" + suffix)
        with open(path, "wb") as f:
            f.write(mutated)
        with time_limit(10):
            try:
                importers.load(path)
            except MicrogenError as e:
                assert str(e) and "\n" not in str(e).strip()
