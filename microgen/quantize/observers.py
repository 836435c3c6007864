"""Range observers: what real range [lo, hi] each activation tensor is quantized over.

The float graph runs on every calibration sample (the reference executor, all tensors kept) and each
float activation tensor feeds a `RangeStats`: its exact min / max and a histogram of its values.
`RangeStats.range(method)` then picks the range:

- "minmax": [min, max] seen. No value is ever clipped; one outlier widens the step for all others.
- "percentile": [q(1 - p), q(p)] with p = `percentile` (e.g. 99.99): drops the rarest extremes.
- "mse": the range that minimises the expected squared quantization error over the histogram:
  clipping error (x - clamp(x))^2 outside the range plus step^2 / 12 inside it (uniform rounding
  noise), searched over each end shrunk towards 0 (a coordinate search, two rounds).

The range always contains 0, since int8 must represent real 0 exactly (padding, ReLU).

Histogram: `BINS` equal bins over [h_lo, h_hi] containing 0, grown by doubling when new values fall
outside (two neighbouring bins merge, empty ones are added on the growing side), so one pass over the
data is enough and memory stays `BINS` counts per tensor whatever the sample count.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

METHODS = ("minmax", "percentile", "mse")
BINS = 2048


class RangeStats:
    """Running min / max and a growing histogram of one tensor's values."""

    def __init__(self) -> None:
        self.lo = np.inf
        self.hi = -np.inf
        self.count = 0
        self.h_lo = 0.0
        self.h_hi = 0.0
        self.counts = np.zeros(BINS, dtype=np.float64)

    def update(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        vmin, vmax = float(v.min()), float(v.max())
        if self.count == 0:
            self.h_lo, self.h_hi = min(vmin, 0.0), max(vmax, 0.0)
            if self.h_hi - self.h_lo <= 0:
                self.h_hi = self.h_lo + 1e-6
        else:
            self._grow(vmin, vmax)
        self.lo, self.hi = min(self.lo, vmin), max(self.hi, vmax)
        self.count += v.size
        width = (self.h_hi - self.h_lo) / BINS
        idx = np.clip(((v - self.h_lo) / width).astype(np.int64), 0, BINS - 1)
        self.counts += np.bincount(idx, minlength=BINS)

    def _grow(self, vmin: float, vmax: float) -> None:
        """Double the histogram span until [vmin, vmax] fits, merging bin pairs."""
        while vmin < self.h_lo or vmax > self.h_hi:
            span = self.h_hi - self.h_lo
            merged = self.counts.reshape(BINS // 2, 2).sum(axis=1)
            empty = np.zeros(BINS // 2)
            # Grow towards the side that is out of range by more (relative to the span).
            if (self.h_lo - vmin) > (vmax - self.h_hi):
                self.counts = np.concatenate([empty, merged])
                self.h_lo -= span
            else:
                self.counts = np.concatenate([merged, empty])
                self.h_hi += span

    # -- range choices -----------------------------------------------------------------------------
    def range(self, method: str = "minmax", percentile: float = 99.99, levels: int = 256) -> tuple[float, float]:
        """(lo, hi) with lo <= 0 <= hi, by one of METHODS. levels: the integer codes (256 for int8)."""
        if self.count == 0:
            return 0.0, 0.0
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        if method == "minmax":
            return lo, hi
        if method == "percentile":
            return self._percentile(percentile)
        if method == "mse":
            return self._mse(levels)
        raise ValueError(f"unknown observer {method!r} (expected one of {', '.join(METHODS)})")

    def _centers(self) -> np.ndarray:
        width = (self.h_hi - self.h_lo) / BINS
        return self.h_lo + (np.arange(BINS) + 0.5) * width

    def _percentile(self, p: float) -> tuple[float, float]:
        cdf = np.cumsum(self.counts) / self.count
        width = (self.h_hi - self.h_lo) / BINS
        tail = 1.0 - p / 100.0
        # The bin holding each quantile; its outer edge, so the quantile itself is kept.
        i_lo = min(int(np.searchsorted(cdf, tail)), BINS - 1)
        i_hi = min(int(np.searchsorted(cdf, 1.0 - tail)), BINS - 1)
        q_lo = self.h_lo + i_lo * width if tail > 0 else self.lo
        q_hi = self.h_lo + (i_hi + 1) * width
        # Never wider than what was seen, never excluding 0.
        return min(max(q_lo, self.lo), 0.0), max(min(q_hi, self.hi), 0.0)

    def _mse(self, levels: int) -> tuple[float, float]:
        lo0, hi0 = min(self.lo, 0.0), max(self.hi, 0.0)
        if hi0 - lo0 <= 0:
            return lo0, hi0
        c, n = self._centers(), self.counts

        def error(lo: float, hi: float) -> float:
            step = (hi - lo) / (levels - 1)
            inside = (c >= lo) & (c <= hi)
            return float(np.sum(n * (c - np.clip(c, lo, hi)) ** 2) + np.sum(n[inside]) * step * step / 12.0)

        # Coordinate search: the best upper end for the current lower end, then the other way round.
        # The ends move independently because outliers are rarely symmetric (ReLU outputs have lo = 0).
        shrink = np.linspace(1.0, 0.05, 96)
        lo, hi = lo0, hi0
        for _ in range(2):
            if hi0 > 0:
                hi = min((hi0 * f for f in shrink), key=lambda h: error(lo, h))
            if lo0 < 0:
                lo = min((lo0 * f for f in shrink), key=lambda v: error(v, hi))
        return float(lo), float(hi)


def collect(graph, samples: Mapping[str, np.ndarray], names: set[str] | None = None) -> dict[str, RangeStats]:
    """Run the float `graph` on every sample and gather RangeStats for its float activation tensors.

    samples: one array per graph input, [N, *input_shape] (see calib.load_calibration).
    names: only these tensors (default: every float activation).
    """
    from .. import reference

    n = len(next(iter(samples.values())))
    wanted = names if names is not None else {t.name for t in graph.activations() if t.dtype.is_float}
    stats = {name: RangeStats() for name in wanted}
    for i in range(n):
        values = reference.run(graph, {k: v[i] for k, v in samples.items()}, keep_all=True)
        for name, st in stats.items():
            if name in values:
                st.update(values[name])
    return stats
