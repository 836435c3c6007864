"""Model importers: `importers.load(path)` reads a .tflite or .onnx file into a verified Graph.

Each importer checks first, then converts: it scans the whole model and reports every unsupported
op and dtype in one ModelFormatError/UnsupportedOpError message, then maps each op through a table of
small converter functions.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from ..errors import ModelFormatError
from ..graph import Graph, verify

SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}


def sniff_format(data: bytes) -> str | None:
    """'tflite' if the bytes carry the TFLite FlatBuffer identifier, 'onnx' if they look like an ONNX
    protobuf (first field is ir_version or similar small varint field), else None."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    if len(data) >= 2 and data[0] in (0x08, 0x12, 0x1A, 0x22, 0x3A, 0x42):
        return "onnx"
    return None


def load(path: str | os.PathLike, bind: Mapping[str, np.ndarray] | None = None) -> Graph:
    """Import a model file into a Graph.

    bind: ONNX only: graph inputs to turn into constants (e.g. weights fed as inputs in ONNX test
    cases), by name.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ModelFormatError(f"{path}: unknown model file extension {suffix or '(none)'!r}; "
                               f"microgen reads .tflite and .onnx files")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFormatError(f"{path}: is a directory, not a model file") from None
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read: {e.strerror}") from None
    fmt = SUFFIXES[suffix]
    if not data:
        raise ModelFormatError(f"{path}: the file is empty")
    sniffed = sniff_format(data)
    if fmt == "tflite" and sniffed != "tflite":
        raise ModelFormatError(f"{path}: not a TFLite model (no 'TFL3' FlatBuffer identifier)"
                               + ("; it looks like an ONNX file, rename it to .onnx" if sniffed == "onnx" else ""))
    name = os.path.splitext(os.path.basename(path))[0]
    if fmt == "tflite":
        from .from_tflite import load_tflite
        graph = load_tflite(data, name=name, path=path)
    else:
        if sniffed == "tflite":
            raise ModelFormatError(f"{path}: this is a TFLite model, not ONNX; rename it to .tflite")
        from .from_onnx import load_onnx
        graph = load_onnx(data, name=name, path=path, bind=bind)
    return verify(graph)


__all__ = ["load", "sniff_format"]
