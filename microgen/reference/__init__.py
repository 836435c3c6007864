"""The numpy reference executor: `reference.run(graph, feeds)` computes what TFLite Micro computes.

Kernels live in one module per op family and register themselves in `registry.KERNELS`.
"""

from . import registry
from .executor import run, run_samples

# Importing the kernel modules registers them.
from . import conv, pool, elementwise, activations, shape_ops, quant_ops  # noqa: E402,F401

__all__ = ["run", "run_samples", "registry"]
