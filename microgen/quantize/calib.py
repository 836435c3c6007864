"""Calibration and validation data: files in, one checked float32 array per model input out.

DATA is a .npy file, a .npz file, or a folder of them (read in sorted name order, samples joined).
The first axis is the sample axis; each sample has the model input's shape (its leading batch 1 may
be left out) in the model's own layout (an ONNX model keeps its NCHW input). Which array of an .npz:
- `FILE.npz:KEY` picks one array (one-input models; for validation `FILE.npz:XKEY,YKEY`);
- else one array per model input name, or an array named `x`, or the only array in the file.
Validation data also needs labels: `y` (or the second key), integer class indices [N] (or one-hot).

Every problem raises InvalidInputError naming the file and what is wrong with it: unreadable, empty,
not numeric, NaN / inf (with the first bad sample), a sample shape the model does not take.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..graph import Graph

SUFFIXES = (".npy", ".npz")


def load_calibration(spec: str | os.PathLike, graph: Graph) -> dict[str, np.ndarray]:
    """Calibration samples for the graph's inputs: {input name: float32 [N, *input_shape]}."""
    inputs, _ = _load(str(spec), graph, labels=False)
    return inputs


def load_validation(spec: str | os.PathLike, graph: Graph) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(samples as load_calibration, labels int64 [N] or None when the data has none)."""
    return _load(str(spec), graph, labels=True)


def as_samples(graph: Graph, arrays, what: str = "calibration data") -> dict[str, np.ndarray]:
    """In-memory arrays ({input name: [N, ...]}) checked and shaped [N, *input_shape] in the input dtype,
    for callers of the Python API (files go through load_calibration)."""
    out = {}
    for name in graph.inputs:
        if name not in arrays:
            raise InvalidInputError(f"{what}: no array for model input {name!r}")
        a = np.asarray(arrays[name])
        t = graph.tensors[name]
        if a.ndim == 0 or len(a) == 0 or a[0].size != t.size:
            raise InvalidInputError(f"{what}: input {name!r} has shape {list(a.shape)}; expected [N, "
                                    f"{', '.join(map(str, t.shape))}] with N >= 1")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InvalidInputError(f"{what}: input {name!r} holds NaN or infinite values")
        out[name] = a.reshape((len(a),) + tuple(t.shape)).astype(t.dtype.np)
    if len({len(v) for v in out.values()}) > 1:
        raise InvalidInputError(f"{what}: the inputs have different numbers of samples")
    return out


def synthetic_calibration(graph: Graph, n: int = 32, seed: int = 0, lo: float = 0.0, hi: float = 1.0
                          ) -> dict[str, np.ndarray]:
    """n seeded samples per input in [lo, hi]: smooth random fields (low-frequency noise upsampled
    along every axis, plus a little fine noise), closer to images and spectra than white noise.

    A stand-in when no real data exists: the ranges it finds are guesses, so the caller must warn."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in graph.input_tensors():
        samples = []
        for _ in range(n):
            coarse_shape = tuple(max(1, d // 4) for d in t.shape)
            field = rng.uniform(0.0, 1.0, size=coarse_shape)
            for axis, d in enumerate(t.shape):
                field = np.repeat(field, -(-d // field.shape[axis]), axis=axis)
                field = np.take(field, np.arange(d), axis=axis)
            x = 0.85 * field + 0.15 * rng.uniform(0.0, 1.0, size=t.shape)
            samples.append(lo + (hi - lo) * x)
        out[t.name] = np.stack(samples).astype(t.dtype.np)
    return out


# -- loading -----------------------------------------------------------------------------------------

def _split_spec(spec: str) -> tuple[str, list[str]]:
    """'data.npz:calib_x' -> ('data.npz', ['calib_x']); keys only after an existing .npz path."""
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(".npz") and os.path.isfile(head):
        return head, [k for k in tail.split(",") if k]
    return spec, []


def _load(spec: str, graph: Graph, labels: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    path, keys = _split_spec(spec)
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in SUFFIXES and f.is_file())
        if not files:
            raise InvalidInputError(f"{path}: the folder holds no .npy or .npz files")
    elif p.exists():
        files = [p]
    else:
        raise InvalidInputError(f"{path}: no such file or folder")
    parts = [_load_file(f, graph, keys, labels) for f in files]
    inputs = {name: np.concatenate([x[name] for x, _ in parts]) for name in graph.inputs}
    ys = [y for _, y in parts]
    y = None
    if labels and all(v is not None for v in ys):
        y = np.concatenate(ys)
    return inputs, y


def _read(f: Path):
    if f.suffix.lower() not in SUFFIXES:
        raise InvalidInputError(f"{f}: not a .npy or .npz file")
    try:
        with open(f, "rb") as fh:
            magic = fh.read(6)
    except OSError as e:
        raise InvalidInputError(f"{f}: cannot read it ({e.strerror})") from None
    want = b"\x93NUMPY" if f.suffix.lower() == ".npy" else b"PK"
    if not magic.startswith(want):
        header = "zip header" if want == b"PK" else "NumPy header"
        what = "empty" if not magic else f"not a {f.suffix} file (no {header})"
        raise InvalidInputError(f"{f}: {what}")
    try:
        data = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InvalidInputError(f"{f}: cannot read it as {f.suffix} data ({_reason(e)})") from None
    if isinstance(data, np.ndarray):
        return {"": data}
    try:
        return {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InvalidInputError(f"{f}: cannot read its arrays ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _load_file(f: Path, graph: Graph, keys: list[str], labels: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    arrays = _read(f)
    names = list(graph.inputs)
    x_keys, y_key = _pick(f, arrays, names, keys, labels)
    inputs = {name: _check_x(f, key, arrays[key], graph, name) for name, key in zip(names, x_keys)}
    n = {len(v) for v in inputs.values()}
    if len(n) > 1:
        raise InvalidInputError(f"{f}: the inputs have different numbers of samples ({sorted(n)})")
    y = _check_y(f, y_key, arrays[y_key], n.pop()) if y_key is not None else None
    return inputs, y


def _pick(f: Path, arrays: dict, names: list[str], keys: list[str], labels: bool) -> tuple[list[str], str | None]:
    """Which arrays are the inputs (one per model input) and which the labels."""
    found = ", ".join(repr(k) for k in arrays if k) or "none"
    if keys:
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise InvalidInputError(f"{f}: no array {missing[0]!r} (arrays: {found})")
        if len(names) != 1:
            raise InvalidInputError(f"{f}: ':KEY' picks one array but the model has {len(names)} inputs; store "
                                    f"one array per input name ({', '.join(names)}) instead")
        return [keys[0]], (keys[1] if labels and len(keys) > 1 else None)
    y_key = "y" if labels and "y" in arrays else None
    if all(n in arrays for n in names):
        return names, y_key
    if len(names) == 1 and "x" in arrays:
        return ["x"], y_key
    if len(names) == 1 and len(arrays) == 1:
        return [next(iter(arrays))], None
    want = "an array named 'x'" if len(names) == 1 else "one array per input"
    raise InvalidInputError(f"{f}: cannot tell which array feeds the model (arrays: {found}); store {want} "
                            f"(model inputs: {', '.join(names)}) or pick one with {f.name}:KEY")


def _check_x(f: Path, key: str, a: np.ndarray, graph: Graph, name: str) -> np.ndarray:
    t = graph.tensors[name]
    where = f"{f}" + (f" array {key!r}" if key else "")
    if a.dtype.kind not in "fiu":
        raise InvalidInputError(f"{where}: dtype {a.dtype} is not a real number type")
    if a.ndim == 0 or len(a) == 0:
        raise InvalidInputError(f"{where}: holds no samples (shape {list(a.shape)})")
    sample = tuple(a.shape[1:])
    unbatched = tuple(t.shape[1:]) if t.shape and t.shape[0] == 1 else tuple(t.shape)
    if sample not in (tuple(t.shape), unbatched):
        raise InvalidInputError(
            f"{where}: shape {list(a.shape)} gives samples of shape {list(sample)}, but model input {name!r} "
            f"takes {list(t.shape)}; the first axis is the sample axis, then the input's own shape and layout")
    bad = ~np.isfinite(a.reshape(len(a), -1)) if a.dtype.kind == "f" else None
    if bad is not None and bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InvalidInputError(f"{where}: {int(bad.sum())} NaN or infinite value(s), first in sample {rows[0]} "
                                f"({len(rows)} sample(s) affected)")
    return a.reshape((len(a),) + tuple(t.shape)).astype(t.dtype.np)


def _check_y(f: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise InvalidInputError(f"{f} array {key!r}: labels must be integer class indices, got {y.dtype}")
    if y.ndim != 1 or len(y) != n:
        raise InvalidInputError(f"{f} array {key!r}: {list(y.shape)} labels for {n} samples")
    return y.astype(np.int64)
