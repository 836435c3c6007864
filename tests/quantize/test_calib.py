"""Calibration / validation data loading: good layouts load, bad data fails with one clear error naming
the file and the problem (library and command line), no data is refused unless --synthetic-calib."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from microgen.errors import InvalidInputError
from microgen.quantize.calib import as_samples, load_calibration, load_validation, synthetic_calibration

from .graphs import GraphBuilder


def cnn_graph():
    b = GraphBuilder("tiny", seed=0)
    x = b.input("img", (1, 4, 4, 1))
    c = b.op("CONV_2D", [x, b.weights("w", (2, 3, 3, 1)), b.weights("b", (2,))], "c", (1, 4, 4, 2),
             pads=(1, 1, 1, 1), activation="RELU")
    r = b.op("RESHAPE", [c], "flat", (1, 32))
    f = b.op("FULLY_CONNECTED", [r, b.weights("wf", (3, 32))], "logits", (1, 3))
    return b.graph([b.op("SOFTMAX", [f], "probs", (1, 3))])


def two_input_graph():
    b = GraphBuilder("two", seed=1)
    a, c = b.input("a", (1, 4)), b.input("b", (1, 4))
    return b.graph([b.op("ADD", [a, c], "sum", (1, 4))])


@pytest.fixture
def g():
    return cnn_graph()


def test_npy_npz_folder_and_key_layouts(tmp_path, g):
    x = np.random.default_rng(0).uniform(size=(5, 4, 4, 1)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)                               # batch dim left out
    np.savez(tmp_path / "b.npz", x=x[:, None].astype(np.float64))  # batch dim kept, float64
    np.savez(tmp_path / "c.npz", img=x, other=np.zeros(3))       # by input name
    np.savez(tmp_path / "d.npz", calib=x, val=x[:2], y=np.array([0, 1]))
    for f in ("a.npy", "b.npz", "c.npz", "d.npz:calib"):
        got = load_calibration(tmp_path / f if ":" not in f else f"{tmp_path / f}", g)
        assert got["img"].shape == (5, 1, 4, 4, 1) and got["img"].dtype == np.float32
    folder = tmp_path / "set"
    folder.mkdir()
    np.save(folder / "part1.npy", x)
    np.save(folder / "part2.npy", (x[:3] * 255).astype(np.uint8))  # integer data is fine
    assert load_calibration(folder, g)["img"].shape == (8, 1, 4, 4, 1)
    xs, y = load_validation(f"{tmp_path / 'd.npz'}:val,y", g)
    assert xs["img"].shape == (2, 1, 4, 4, 1) and y.tolist() == [0, 1]
    np.savez(tmp_path / "v.npz", x=x, y=np.eye(3)[[0, 1, 2, 0, 1]])  # one-hot labels
    assert load_validation(tmp_path / "v.npz", g)[1].tolist() == [0, 1, 2, 0, 1]


def test_multi_input_npz(tmp_path):
    g = two_input_graph()
    np.savez(tmp_path / "ab.npz", a=np.ones((3, 4)), b=np.zeros((3, 4)))
    got = load_calibration(tmp_path / "ab.npz", g)
    assert got["a"].shape == (3, 1, 4) and got["b"].shape == (3, 1, 4)
    np.save(tmp_path / "one.npy", np.ones((3, 4)))
    with pytest.raises(InvalidInputError, match="one array per input"):
        load_calibration(tmp_path / "one.npy", g)


BAD = {
    "nan.npy": (lambda: np.where(np.arange(5)[:, None, None, None] == 3, np.nan, np.ones((5, 4, 4, 1))),
                ["nan.npy", "NaN or infinite", "sample 3"]),
    "inf.npy": (lambda: np.full((2, 4, 4, 1), np.inf), ["inf.npy", "NaN or infinite", "sample 0"]),
    "shape.npy": (lambda: np.zeros((5, 4, 4)), ["shape.npy", "[5, 4, 4]", "takes [1, 4, 4, 1]"]),
    "empty.npy": (lambda: np.zeros((0, 4, 4, 1)), ["empty.npy", "holds no samples"]),
    "text.npy": (lambda: np.array([["a"]]), ["text.npy", "not a real number type"]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arrays_name_the_file_and_the_problem(tmp_path, g, name):
    make, fragments = BAD[name]
    np.save(tmp_path / name, make())
    with pytest.raises(InvalidInputError) as e:
        load_calibration(tmp_path / name, g)
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_unreadable_missing_and_ambiguous_files(tmp_path, g):
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04broken")
    (tmp_path / "zero.npy").write_bytes(b"")
    (tmp_path / "empty_dir").mkdir()
    np.savez(tmp_path / "many.npz", p=np.ones((2, 16)), q=np.ones((2, 16)))
    cases = {
        "junk.npy": "no NumPy header", "trunc.npz": "cannot read", "zero.npy": "empty",
        "missing.npy": "no such file", "empty_dir": "holds no .npy or .npz files",
        "many.npz": "cannot tell which array", "many.npz:zz": "no array 'zz'",
    }
    for spec, fragment in cases.items():
        path = f"{tmp_path / spec.split(':')[0]}" + (":" + spec.split(":")[1] if ":" in spec else "")
        with pytest.raises(InvalidInputError) as e:
            load_calibration(path, g)
        assert fragment in str(e.value) and spec.split(":")[0] in str(e.value), (spec, str(e.value))


def test_bad_labels(tmp_path, g):
    x = np.zeros((4, 4, 4, 1))
    np.savez(tmp_path / "v.npz", x=x, y=np.array([0, 1, 2]))
    with pytest.raises(InvalidInputError, match="labels for 4 samples"):
        load_validation(tmp_path / "v.npz", g)
    np.savez(tmp_path / "w.npz", x=x, y=np.array([0.5, 1, 2, 3]))
    with pytest.raises(InvalidInputError, match="integer class indices"):
        load_validation(tmp_path / "w.npz", g)


def test_in_memory_arrays_and_synthetic(g):
    assert as_samples(g, {"img": np.zeros((3, 16))})["img"].shape == (3, 1, 4, 4, 1)
    with pytest.raises(InvalidInputError, match="NaN"):
        as_samples(g, {"img": np.full((3, 16), np.nan)})
    with pytest.raises(InvalidInputError, match="no array for model input 'img'"):
        as_samples(g, {})
    s = synthetic_calibration(g, 6, seed=1, lo=-2.0, hi=3.0)["img"]
    assert s.shape == (6, 1, 4, 4, 1) and s.min() >= -2.0 and s.max() <= 3.0
    assert np.array_equal(s, synthetic_calibration(g, 6, seed=1, lo=-2.0, hi=3.0)["img"])


def microgen(*args):
    return subprocess.run([sys.executable, "-m", "microgen.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_bad_calibration_is_one_line_exit_2(tmp_path):
    from microgen.exporters import write_tflite

    model = tmp_path / "tiny.tflite"
    write_tflite(cnn_graph(), model)
    np.save(tmp_path / "nan.npy", np.full((2, 4, 4, 1), np.nan, np.float32))
    for args, fragment in [(["--calib", tmp_path / "nan.npy"], "nan.npy: 32 NaN or infinite value(s)"),
                           ([], "no calibration data: give --calib DATA")]:
        proc = microgen("quantize", model, *args)
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1 and fragment in err, err
    proc = microgen("quantize", model, "--synthetic-calib", "-o", tmp_path / "q.tflite")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: --synthetic-calib" in proc.stderr and "not real data" in proc.stderr
    assert (tmp_path / "q.tflite").exists()
