"""Reading and writing sample arrays for `microgen run`: .npy for one input/output, .npz for several.

The first axis is the sample axis; each sample has the model input's shape (or the same number of
values) in the model's input dtype and layout.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .errors import InvalidInputError
from .graph import Graph


def load_samples(path: str, graph: Graph) -> dict[str, np.ndarray]:
    """Input samples by graph input name. A .npy file feeds a one-input model; a .npz needs one array
    per input name (or arrays named arr_0, arr_1, ... in input order)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InvalidInputError(f"{path}: not a readable .npy/.npz file ({e})") from None
    if isinstance(loaded, np.ndarray):
        if len(graph.inputs) != 1:
            raise InvalidInputError(f"{path}: the model has {len(graph.inputs)} inputs "
                                    f"({', '.join(graph.inputs)}); give a .npz with one array per input name")
        arrays = {graph.inputs[0]: loaded}
    else:
        with loaded:
            files = dict(loaded.items())
        arrays = {}
        for i, name in enumerate(graph.inputs):
            if name in files:
                arrays[name] = files[name]
            elif f"arr_{i}" in files:
                arrays[name] = files[f"arr_{i}"]
            else:
                raise InvalidInputError(f"{path}: no array for model input {name!r} "
                                        f"(the file has: {', '.join(files) or 'nothing'})")
    for name, arr in arrays.items():
        t = graph.tensors[name]
        if arr.ndim == 0 or arr.size == 0:
            raise InvalidInputError(f"{path}: the array for input {name!r} is empty")
        if arr.size % t.size or arr[0].size != t.size:
            raise InvalidInputError(
                f"{path}: array for input {name!r} has shape {list(arr.shape)}; expected [samples, "
                f"{', '.join(map(str, t.shape))}] ({t.dtype.value})")
        if t.dtype.is_int and not np.issubdtype(arr.dtype, np.integer):
            raise InvalidInputError(f"{path}: input {name!r} is {arr.dtype} but the model takes "
                                    f"{t.dtype.value} (quantize it first: q = round(x / {t.quant.s if t.quant and not t.quant.per_channel else 'scale'}) + zero_point)")
        if t.dtype.is_float and not np.issubdtype(arr.dtype, np.floating):
            arrays[name] = arr.astype(t.dtype.np)
    return arrays


def save_outputs(path: str, graph: Graph, outputs: dict[str, np.ndarray]) -> None:
    """Write outputs: .npy for a one-output model, .npz (one array per output name) otherwise."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if path.endswith(".npz"):
        np.savez(path, **{name: outputs[name] for name in graph.outputs})
        return
    if len(graph.outputs) != 1:
        raise InvalidInputError(f"{path}: the model has {len(graph.outputs)} outputs; use a .npz output file")
    np.save(path, outputs[graph.outputs[0]])
