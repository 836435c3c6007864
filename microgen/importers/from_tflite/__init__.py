"""The TFLite importer: `load_tflite(data, name, path) -> Graph` (subgraph 0 of a .tflite file).

Stages:
1. `reader`: the FlatBuffer is read through bounds-checked tables into plain records; anything
   structurally wrong (truncation, bad offsets, out-of-range indices, negative shapes, buffers outside
   the file) is one ModelFormatError line naming the file, the place and the problem.
2. `build.check_ops` / `tensors.check_dtypes`: every unsupported op (with op indices and output tensor
   names) in one UnsupportedOpError, then every unsupported tensor type in one UnsupportedDTypeError.
3. Tensors (`tensors`): TFLite names (deduplicated), static shapes, per-tensor / per-axis quantization,
   constants as read-only arrays.
4. Ops (`ops_nn`, `ops_shape`): one converter per TFLite op producing the IR kind with fully resolved
   attributes (SAME/VALID -> explicit pads as TFLM computes them, fused activations, constant operands
   such as shapes, perms, axes, paddings and slice bounds turned into attributes). Unsupported variants
   of supported ops (e.g. a fused TANH) are collected into one UnsupportedOpError.
5. The op list is checked to be a valid execution order.

Decisions a user may notice:
- Hybrid ops (float activations, int8 constant weights) get dequantized float32 weights; DEQUANTIZE of a
  constant is folded. The result is a pure float graph.
- TRANSPOSE_CONV's output-shape operand is dropped; when it is a graph input (SEANet transpose_conv4)
  it stays a graph input that no op reads, so inputs keep TFLite's order.
- metadata: "tflite_tensor_index" {IR name: TFLite tensor index} (for comparing intermediates with
  TFLM's GetTensor), "tflite_op_names" {op index: TFLite op name}, "tflite_description".
"""

from __future__ import annotations

from ...graph import Graph
from .build import OPTIONS, build_graph
from .reader import read_model


def load_tflite(data: bytes, name: str, path: str) -> Graph:
    """Import subgraph 0 of a .tflite file (its bytes) as an IR Graph (not yet verified)."""
    raw = read_model(data, path, OPTIONS)
    return build_graph(raw, name, path)


__all__ = ["load_tflite"]
