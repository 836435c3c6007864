"""microgen: a TinyML code generator (TFLite/ONNX in, dependency-free C99 out)."""

__version__ = "0.1.0"
