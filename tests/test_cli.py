"""The command line: real models through inspect / run / build, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from microgen.testing.corpus import require_model


def microgen(*args, cwd=None):
    """Run the installed entry point in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "microgen.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    return err


@pytest.mark.parametrize("rel,macs", [
    ("mlperf_tiny/kws_ref_model.tflite", 2_656_768),
    ("mlperf_tiny/vww_96_int8.tflite", 7_489_664),
    ("mlperf_tiny/pretrainedResnet_quant.tflite", 12_501_632),
    ("mlperf_tiny/ad01_int8.tflite", 264_192),
])
def test_inspect_reports_mlperf_macs(rel, macs):
    proc = microgen("inspect", require_model(rel), "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["totals"]["macs"] == macs
    assert sum(op["macs"] for op in d["ops"]) == macs
    text = microgen("inspect", require_model(rel))
    assert f"{macs:,} MACs" in text.stdout


def test_inspect_kws_table_details():
    d = json.loads(microgen("inspect", require_model("mlperf_tiny/kws_ref_model.tflite"), "--json").stdout)
    assert [op["op"] for op in d["ops"]][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert d["ops"][0]["inputs"] == [[1, 49, 10, 1]] and d["ops"][0]["outputs"] == [[1, 25, 5, 64]]
    assert d["ops"][0]["weight_quant"] == "per-channel"
    assert d["inputs"][0]["dtype"] == "int8" and d["inputs"][0]["quant"] == "s=0.584703 zp=83"
    assert d["totals"]["peak_live_bytes"] == 16_000
    assert d["totals"]["weight_bytes"] > 20_000


def test_run_reference_npy_and_npz(tmp_path):
    model = require_model("mlperf_tiny/kws_ref_model.tflite")
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    proc = microgen("run", model, "--reference", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 1, 12) and y.dtype == np.int8
    # Samples without the batch axis work too; a .npz names its input.
    np.savez(tmp_path / "x.npz", **{"input_1": x[:, 0]})
    from microgen import importers
    name = importers.load(model).inputs[0]
    np.savez(tmp_path / "x.npz", **{name: x[:, 0]})
    proc = microgen("run", model, "--reference", "-i", tmp_path / "x.npz", "-o", tmp_path / "y.npz")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "y.npz") as f:
        np.testing.assert_array_equal(f[f.files[0]], y)


def test_run_on_host_board_matches_reference(tmp_path):
    model = require_model("mlperf_tiny/ad01_int8.tflite")
    x = np.random.default_rng(1).integers(-128, 128, size=(4, 1, 640), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    assert microgen("run", model, "--reference", "-i", tmp_path / "x.npy", "-o", tmp_path / "ref.npy").returncode == 0
    proc = microgen("run", model, "--board", "host", "-i", tmp_path / "x.npy", "-o", tmp_path / "host.npy")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "host.npy"), np.load(tmp_path / "ref.npy"))


def test_build_prints_summary_and_writes_project(tmp_path):
    proc = microgen("build", require_model("mlperf_tiny/ad01_int8.tflite"), "-o", tmp_path / "ad", "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["arena_bytes"] == s["arena_lower_bound"] == 768
    assert s["macs"] == 264_192
    assert (tmp_path / "ad" / "ad01_int8.h").exists() and (tmp_path / "ad" / "CMakeLists.txt").exists()


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    one_line_error(microgen("inspect", tmp_path / "missing.tflite"), "no such file")
    (tmp_path / "model.bin").write_bytes(b"abc")
    one_line_error(microgen("inspect", tmp_path / "model.bin"), "extension")
    data = require_model("mlperf_tiny/kws_ref_model.tflite").read_bytes()
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 3])
    one_line_error(microgen("inspect", tmp_path / "cut.tflite"), "cut.tflite")
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(0).bytes(5000))
    one_line_error(microgen("inspect", tmp_path / "noise.onnx"), "noise.onnx")
    one_line_error(microgen("inspect", require_model("tflm/trained_lstm_int8.tflite")),
                   "UNIDIRECTIONAL_SEQUENCE_LSTM")
    one_line_error(microgen("inspect", require_model("tflm/audio_preprocessor_int8.tflite")),
                   "SignalWindow")


def test_run_rejects_bad_input_arrays(tmp_path):
    model = require_model("mlperf_tiny/kws_ref_model.tflite")
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 7), np.int8))
    one_line_error(microgen("run", model, "--reference", "-i", tmp_path / "wrong_shape.npy", "-o", tmp_path / "y.npy"),
                   "wrong_shape.npy", "49")
    np.save(tmp_path / "floats.npy", np.zeros((2, 1, 49, 10, 1), np.float32))
    one_line_error(microgen("run", model, "--reference", "-i", tmp_path / "floats.npy", "-o", tmp_path / "y.npy"),
                   "int8")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    one_line_error(microgen("run", model, "--reference", "-i", tmp_path / "junk.npy", "-o", tmp_path / "y.npy"),
                   "junk.npy")
