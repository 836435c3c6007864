"""Where the shared real-model corpus lives: `../shared/models` beside the repository.

Tests that need it skip with a clear reason when it is absent, except under CI (CI=true), where a
missing corpus is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MICROGEN_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"


def model_path(rel: str) -> Path:
    """Path of a corpus file, e.g. model_path('mlperf_tiny/kws_ref_model.tflite')."""
    return MODELS / rel


def corpus_available() -> bool:
    return MODELS.is_dir()


def require_model(rel: str) -> Path:
    """The path of a corpus file for a test; skips it (fails it under CI=true) when ../shared is missing."""
    import pytest

    path = model_path(rel)
    if not path.exists():
        msg = f"{path} not found: the shared model corpus (../shared/models) is not beside the repo"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " (CI=true: the corpus must be present)")
        pytest.skip(msg)
    return path


def seeded_inputs(tensor, n: int, seed: int):
    """n seeded samples for an input Tensor, stacked [n, *shape].

    Integer inputs vary their amplitude around the zero point sample by sample (full-range noise
    saturates most classifiers' outputs); float inputs are normal with a varying amplitude.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        amp = [1, 4, 16, 48, 128, 256][i % 6]
        if tensor.dtype.is_int:
            lo, hi = tensor.dtype.limits()
            zp = tensor.quant.zero_point[0] if tensor.quant is not None else 0
            x = np.clip(np.round(rng.normal(zp, amp, size=tensor.shape)), lo, hi)
            out.append(x.astype(tensor.dtype.np))
        else:
            out.append(rng.normal(0, amp / 32.0, size=tensor.shape).astype(tensor.dtype.np))
    return np.stack(out)
