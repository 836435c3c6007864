"""TFLite tensors -> IR Tensors: names, dtypes, quantization params and constant data.

Decisions (see also the package docstring):
- Names are the TFLite names; a repeated name gets a `_<n>` suffix, an empty one becomes `t<index>`.
- Shapes are the static `shape` field (shape_signature's -1 batch is ignored).
- Quantization: one scale -> per-tensor; several -> per-axis along quantized_dimension, whose length
  must match. Quirk: a 1-D tensor (a bias) whose quantized_dimension is past its rank (3 in
  person_detect-style models) is per-axis along 0. Scales are python floats of the stored float32
  values. Float tensors drop any quant params (they compute in float whatever the file says).
- A tensor whose buffer has bytes is a constant (little-endian data, copied, read-only); a buffer
  with zero bytes means an activation.
"""

from __future__ import annotations

import math

import numpy as np
import tflite

from ...errors import ModelFormatError, UnsupportedDTypeError, UnsupportedOpError
from ...graph import DType, QuantParams, Tensor
from .reader import RawTensor

_T = tflite.TensorType
DTYPES: dict[int, DType] = {
    _T.FLOAT32: DType.FLOAT32, _T.FLOAT16: DType.FLOAT16, _T.FLOAT64: DType.FLOAT64,
    _T.INT8: DType.INT8, _T.UINT8: DType.UINT8, _T.INT16: DType.INT16, _T.UINT16: DType.UINT16,
    _T.INT32: DType.INT32, _T.UINT32: DType.UINT32, _T.INT64: DType.INT64, _T.UINT64: DType.UINT64,
    _T.BOOL: DType.BOOL,
}
TYPE_NAMES = {v: k for k, v in vars(_T).items() if isinstance(v, int)}


def type_name(code: int) -> str:
    return TYPE_NAMES.get(code, f"type {code}")


def unique_names(raws: list[RawTensor]) -> list[str]:
    """One distinct IR name per TFLite tensor: the first tensor with a name keeps it, later duplicates
    get the first free `_<n>` suffix (never a name another tensor asks for)."""
    wanted = [r.name or f"t{r.index}" for r in raws]
    names: list[str | None] = [None] * len(wanted)
    taken: set[str] = set()
    for i, name in enumerate(wanted):
        if name not in taken:
            names[i] = name
            taken.add(name)
    avoid = set(wanted)
    next_suffix: dict[str, int] = {}
    for i, name in enumerate(wanted):
        if names[i] is None:
            n = next_suffix.get(name, 1)
            while f"{name}_{n}" in taken or f"{name}_{n}" in avoid:
                n += 1
            names[i] = f"{name}_{n}"
            taken.add(f"{name}_{n}")
            next_suffix[name] = n + 1
    return [n for n in names if n is not None]


def check_dtypes(raws: list[RawTensor], used: list[int], names: list[str], path: str) -> None:
    """UnsupportedDTypeError naming every used tensor whose type microgen does not handle."""
    bad = [f"{names[i]!r} ({type_name(raws[i].type_code)})" for i in used if raws[i].type_code not in DTYPES]
    if bad:
        raise UnsupportedDTypeError(
            f"{path}: unsupported tensor types: {', '.join(bad)}; microgen supports "
            f"{', '.join(d.value for d in DType)} tensors")
    sparse = [f"{names[i]!r}" for i in used if raws[i].sparse]
    if sparse:
        raise UnsupportedOpError(f"{path}: sparse (compressed) tensors are not supported: "
                                 f"{', '.join(sparse)}; convert the model without sparsity")
    custom = [f"{names[i]!r}" for i in used if raws[i].custom_quantization]
    if custom:
        raise UnsupportedDTypeError(f"{path}: tensors with custom quantization details are not supported: "
                                    f"{', '.join(custom)}")


def quant_params(raw: RawTensor, name: str, dtype: DType, path: str) -> QuantParams | None:
    """The IR quantization params of a tensor (None when it has none or is float)."""
    if not raw.scale or dtype.is_float or dtype is DType.BOOL:
        return None

    def bad(problem: str) -> ModelFormatError:
        return ModelFormatError(f"{path}: tensor {name!r} (#{raw.index}) has invalid quantization: {problem}")

    scale, zp = raw.scale, raw.zero_point
    if not zp:
        zp = (0,) * len(scale)  # the schema allows omitting zero points (they default to 0)
    if len(zp) != len(scale):
        raise bad(f"{len(scale)} scales but {len(zp)} zero points")
    if not all(math.isfinite(s) and s >= 0 for s in scale):
        raise bad(f"scale {_head(scale)} is not a finite non-negative number")
    if len(scale) == 1:
        return QuantParams((scale[0],), (zp[0],), None)
    axis = raw.quantized_dimension
    rank = len(raw.shape)
    if rank == 1 and axis >= rank:
        axis = 0  # 1-D bias written with the filter's quantized_dimension (person_detect)
    if not 0 <= axis < rank or raw.shape[axis] != len(scale):
        raise bad(f"{len(scale)} per-axis scales along dimension {raw.quantized_dimension} of shape "
                  f"{list(raw.shape)}")
    return QuantParams(tuple(scale), tuple(zp), axis)


def _head(values: tuple) -> str:
    return str(list(values[:4]))[:-1] + (", ...]" if len(values) > 4 else "]")


def constant_data(raw: RawTensor, name: str, dtype: DType, path: str) -> np.ndarray | None:
    """The constant value of a tensor as a read-only array of its shape, or None for an activation."""
    if raw.data is None:
        return None
    size = int(np.prod(raw.shape, dtype=np.int64))
    if len(raw.data) != size * dtype.itemsize:
        raise ModelFormatError(f"{path}: tensor {name!r} (#{raw.index}) is {dtype.value}{list(raw.shape)} "
                               f"({size * dtype.itemsize} bytes) but its buffer holds {len(raw.data)} bytes")
    if dtype is DType.BOOL:
        arr = np.frombuffer(raw.data, dtype=np.uint8) != 0
    else:
        arr = np.frombuffer(raw.data, dtype=dtype.np.newbyteorder("<")).astype(dtype.np)
    arr = arr.reshape(raw.shape)
    arr.flags.writeable = False
    return arr


def make_tensor(raw: RawTensor, name: str, path: str) -> Tensor:
    dtype = DTYPES[raw.type_code]
    return Tensor(name, raw.shape, dtype, quant_params(raw, name, dtype, path),
                  constant_data(raw, name, dtype, path))


def dequantize(t: Tensor, name: str) -> Tensor:
    """A float32 constant holding the real values scale * (q - zp) of a quantized constant (per-tensor or
    per-axis). Each value is rounded once to float32 from the exact product, as TFLite's dequantize."""
    assert t.data is not None and t.quant is not None
    q = t.quant
    shape = [1] * len(t.shape)
    if q.axis is not None:
        shape[q.axis] = len(q.scale)
    scale = np.asarray(q.scale, dtype=np.float64).reshape(shape)
    zp = np.asarray(q.zero_point, dtype=np.float64).reshape(shape)
    data = ((t.data.astype(np.float64) - zp) * scale).astype(np.float32)
    data.flags.writeable = False
    return Tensor(name, t.shape, DType.FLOAT32, None, data)
