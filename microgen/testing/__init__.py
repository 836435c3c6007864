"""Helpers for tests and benchmarks: the external oracles (TFLM interpreter, onnxruntime) and the
location of the shared model corpus. Not used by the compiler itself."""
