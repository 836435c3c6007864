"""External reference runtimes used as test oracles.

- TFLite Micro's Python interpreter (`pip install --pre tflite-micro`) is the bit-exact oracle for
  int8/int16 models: it is the MCU library itself. It can segfault instead of raising (too small an
  arena, some models), so it always runs in a child process.
- onnxruntime checks the ONNX float and QDQ paths.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

DEFAULT_ARENA = 8 * 1024 * 1024


@dataclass
class OracleResult:
    outputs: list[np.ndarray]                 # one stacked array per model output: [samples, *shape]
    tensors: dict[int, np.ndarray] | None     # with preserve_all: tensor index -> [samples, *shape]


class OracleError(RuntimeError):
    pass


def tflm_run(model_path: str, inputs: list[np.ndarray], preserve_all: bool = False,
             arena_size: int = DEFAULT_ARENA, timeout: float = 600) -> OracleResult:
    """Run every sample through the TFLM interpreter in a child process.

    inputs: one array per model input, each [samples, *input_shape] in the input's dtype.
    """
    with tempfile.TemporaryDirectory() as tmp:
        req, resp = os.path.join(tmp, "req.pkl"), os.path.join(tmp, "resp.pkl")
        with open(req, "wb") as f:
            pickle.dump(dict(model=os.path.abspath(model_path), inputs=inputs, preserve_all=preserve_all,
                             arena_size=arena_size), f)
        proc = subprocess.run([sys.executable, "-m", "microgen.testing._tflm_worker", req, resp],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise OracleError(f"TFLM interpreter failed on {model_path} (rc {proc.returncode}): "
                              f"{proc.stderr.strip()[-2000:]}")
        with open(resp, "rb") as f:
            out = pickle.load(f)
    return OracleResult(out["outputs"], out.get("tensors"))


def ort_run(model_path: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One onnxruntime run (CPU, default optimisation, 1 thread); returns the outputs in order."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
