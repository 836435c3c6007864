"""The ONNX backend node test cases (../shared/models/onnx/onnx_node_tests) through the ONNX importer and
the reference executor.

Each case is imported with its weight/parameter inputs bound as constants (`bind`) and its data inputs
kept as graph inputs; the outputs must equal the expected .pb outputs exactly for integer outputs and
within 1e-4 of the largest expected magnitude for float ones. MatMul/Gemm/QLinearMatMul cases also run
with B kept as an input (BATCH_MATMUL instead of FULLY_CONNECTED).

Out-of-scope cases are skipped with the reason, after checking that the importer rejects them with
the right MicrogenError (so a skip is never silent about what happens).
"""

from __future__ import annotations

import os
import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from microgen.errors import UnsupportedDTypeError, UnsupportedOpError
from microgen.importers import load
from microgen.reference import run
from microgen.testing.corpus import model_path, require_model

ROOT = "onnx/onnx_node_tests"

# Inputs that stay graph inputs (the rest are weights/params and get bound); None = all of them.
DATA_INPUTS = {"Add": None, "Mul": None, "Sub": None, "Concat": None}
# Op types run a second time with these inputs kept (B as an activation -> BATCH_MATMUL).
SECOND_VARIANT = {"MatMul": (0, 1), "Gemm": (0, 1), "QLinearMatMul": (0, 3)}

# (case-name pattern, expected error, reason): out of scope, checked to be rejected, then skipped.
OUT_OF_SCOPE = [
    (r"e4m3fn|e5m2", UnsupportedDTypeError, "float8 tensors are not supported"),
    (r"float4e2m1", UnsupportedDTypeError, "float4 tensors are not supported"),
    (r"_u?int4$", UnsupportedDTypeError, "int4/uint4 tensors are not supported"),
    (r"_u?int2$", UnsupportedDTypeError, "int2/uint2 tensors are not supported"),
    (r"^test_convinteger", UnsupportedOpError, "ConvInteger is out of scope"),
    (r"^test_matmulinteger", UnsupportedOpError, "MatMulInteger is out of scope"),
    (r"^test_reduce_(l2|sum_square).*_expanded$", UnsupportedOpError,
     "expanded ReduceL2/ReduceSumSquare use ReduceSum/Sqrt/Cast, which are out of scope"),
    (r"^test_maxpool_with_argmax", UnsupportedOpError, "MaxPool with an indices (argmax) output"),
    (r"blocked", UnsupportedOpError, "blocked quantization (block_size) is not supported"),
    (r"^test_batchnorm.*training_mode", UnsupportedOpError,
     "training-mode BatchNormalization (batch statistics, running-stat outputs)"),
    (r"^test_convtranspose_3d$", UnsupportedOpError, "3-D transposed convolution"),
]


# Cases whose expected outputs are literals rounded to 4 decimals in onnx's generator: half a unit of
# the last digit is allowed on top of the relative tolerance.
ROUNDED_EXPECTED = {"test_averagepool_2d_ceil_last_window_starts_on_pad": 5e-5}


def _cases() -> list:
    root = model_path(ROOT)
    names = sorted(os.listdir(root)) if root.is_dir() else []
    params = []
    for name in names:
        if not (root / name / "model.onnx").exists():
            continue
        params.append(pytest.param(name, None, id=name))
        op = onnx.load(str(root / name / "model.onnx"), load_external_data=False).graph.node[0].op_type
        if op in SECOND_VARIANT:
            params.append(pytest.param(name, SECOND_VARIANT[op], id=f"{name}-B_as_input"))
    return params or [pytest.param("(missing)", None, id="corpus-missing")]


def _read(path) -> np.ndarray:
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def _data_sets(case_dir):
    for ds in sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_")):
        d = case_dir / ds
        ins = sorted((f for f in os.listdir(d) if f.startswith("input_")), key=lambda f: int(f[6:-3]))
        outs = sorted((f for f in os.listdir(d) if f.startswith("output_")), key=lambda f: int(f[7:-3]))
        yield ds, [_read(d / f) for f in ins], [_read(d / f) for f in outs]


def check_outputs(got: np.ndarray, want: np.ndarray, what: str, rtol: float = 1e-4,
                  atol: float = 0.0) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind in "iub":
        mism = np.flatnonzero(got != want)
        assert mism.size == 0, (f"{what}: {mism.size}/{want.size} integer outputs differ, first at flat "
                                f"{mism[0]}: got {got.ravel()[mism[0]]}, expected {want.ravel()[mism[0]]}")
    elif want.size:
        scale = float(np.max(np.abs(want.astype(np.float64)))) or 1.0
        err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        assert err <= rtol * scale + atol, f"{what}: max |diff| {err:.3g} > {rtol} * {scale:.3g} + {atol}"


@pytest.mark.parametrize("case,keep", _cases())
def test_node_case(case: str, keep) -> None:
    path = require_model(f"{ROOT}/{case}/model.onnx")
    for pattern, error, reason in OUT_OF_SCOPE:
        if re.search(pattern, case):
            with pytest.raises(error):
                load(path, bind=_bind_all_but_first(path))
            pytest.skip(f"{reason} (the importer raises {error.__name__})")
    model = onnx.load(str(path))
    op = model.graph.node[0].op_type
    names = [i.name for i in model.graph.input]
    data = DATA_INPUTS.get(op, (0,)) if keep is None else keep
    data = range(len(names)) if data is None else data
    ran = 0
    for ds, inputs, outputs in _data_sets(path.parent):
        bind = {names[k]: a for k, a in enumerate(inputs) if k not in data}
        graph = load(path, bind=bind)
        feeds = {names[k]: inputs[k] for k in data if k < len(inputs)}
        assert set(feeds) == set(graph.inputs), (sorted(feeds), graph.inputs)
        got = run(graph, feeds)
        assert len(graph.outputs) == len(outputs)
        for name, want in zip(graph.outputs, outputs):
            check_outputs(got[name], want, f"{case}/{ds} output {name!r}",
                          atol=ROUNDED_EXPECTED.get(case, 0.0))
        ran += 1
    assert ran, f"{case}: no test data sets"


def _bind_all_but_first(path):
    """For the rejection check: bind everything but input 0 (as the in-scope cases do)."""
    model = onnx.load(str(path))
    names = [i.name for i in model.graph.input]
    ds = next(_data_sets(path.parent), None)
    if ds is None:
        return {}
    return {names[k]: a for k, a in enumerate(ds[1]) if k != 0}
