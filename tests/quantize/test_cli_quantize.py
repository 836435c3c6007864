"""`microgen quantize` and `microgen build --quantize int8` as a user runs them (child processes)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

from microgen import importers
from microgen.testing.corpus import require_model


def microgen(*args):
    return subprocess.run([sys.executable, "-m", "microgen.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_quantize_writes_model_and_reports(tmp_path):
    model = require_model("digits/digits_cnn_float.tflite")
    npz = require_model("digits/digits_data.npz")
    out, html, txt = tmp_path / "q.tflite", tmp_path / "r.html", tmp_path / "r.txt"
    proc = microgen("quantize", model, "--calib", f"{npz}:calib_x", "--val", f"{npz}:val_x,val_y", "-o", out,
                    "--report", html, "--max-accuracy-drop", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "output SQNR 40.2 dB" in proc.stdout and "accuracy: float 98.8%, quantized 98.8%" in proc.stdout
    assert "worst layers:" in proc.stdout
    g = importers.load(out)
    assert g.tensors[g.inputs[0]].dtype.value == "int8" and g.tensors[g.outputs[0]].dtype.value == "int8"
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.split("<svg")[1][60:]
    svg = page[page.index("<svg"):page.index("</svg>") + 6]
    root = ET.fromstring(svg)  # well-formed, self-contained SVG
    assert len([e for e in root.iter() if e.tag.endswith("rect")]) == 7  # one bar per layer
    proc = microgen("quantize", model, "--calib", f"{npz}:calib_x", "--report", txt, "--io", "float",
                    "--observer", "percentile", "--eval-samples", "50")
    assert proc.returncode == 0, proc.stderr
    text = txt.read_text()
    assert "per-layer SQNR, worst first" in text and "io float" in text and "on 50 calibration sample(s)" in text


def test_max_accuracy_drop_fails_with_exit_1(tmp_path):
    """Calibrating on blank images squeezes the input range to nothing: every real input saturates."""
    model = require_model("digits/digits_mlp_float.tflite")
    npz = require_model("digits/digits_data.npz")
    np.save(tmp_path / "blank.npy", np.zeros((8, 64), np.float32))
    d = np.load(npz)
    np.savez(tmp_path / "val.npz", x=d["val_x"].reshape(-1, 64), y=d["val_y"])
    out = tmp_path / "q.tflite"
    proc = microgen("quantize", model, "--calib", tmp_path / "blank.npy", "--val", tmp_path / "val.npz",
                    "--max-accuracy-drop", "1", "-o", out)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: estimated accuracy drop") and "exceeds --max-accuracy-drop 1" in err
    assert "accuracy 98.2% float -> 10.0% quantized on 500 validation samples" in err and not out.exists()


def test_int16_auto_prints_the_pareto_table(tmp_path):
    model = require_model("digits/digits_cnn_float.onnx")
    npz = require_model("digits/digits_data.npz")
    proc = microgen("quantize", model, "--calib", f"{npz}:calib_x_nchw", "--int16", "auto", "--eval-samples", "60")
    assert proc.returncode == 0, proc.stderr
    assert "16x8 choices" in proc.stdout and "all int8" in proc.stdout and "worst 1 in int16" in proc.stdout
    assert "on the Pareto front" in proc.stdout


def test_build_quantize_int8(tmp_path):
    model = require_model("digits/digits_mlp_float.onnx")
    np.save(tmp_path / "calib.npy", np.load(require_model("digits/digits_data.npz"))["calib_x"].reshape(-1, 64))
    proc = microgen("build", model, "--quantize", "int8", "--calib", tmp_path / "calib.npy", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "digits_mlp_float.c").exists()
    assert (tmp_path / "out" / "digits_mlp_float.tflite").exists()
    proc = microgen("build", model, "--calib", tmp_path / "calib.npy", "-o", tmp_path / "out2")
    assert proc.returncode == 2 and "only go with --quantize int8" in proc.stderr
    proc = microgen("build", model, "--quantize", "int8", "-o", tmp_path / "out3")
    assert proc.returncode == 2 and "no calibration data" in proc.stderr
