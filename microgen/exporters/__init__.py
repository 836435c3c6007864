"""Exporters: write a Graph back out in a standard format.

- `write_tflite(graph, path)` / `tflite_bytes(graph)`: a TFLite FlatBuffer the TFLM interpreter runs
  (used by the quantizer for its int8 result and by examples/make_demo_model.py).
"""

from .tflite_writer import tflite_bytes, write_tflite

__all__ = ["tflite_bytes", "write_tflite"]
