"""How far the quantized graph is from its float graph: per-layer and end-to-end, on real samples.

Both graphs run in the reference executor (the quantized one bit-exact with TFLM, so this is what the
device will compute) on the same samples; the quantized model is fed the samples quantized the way
TFLite does it (round half away from zero, clamp), or the floats themselves with io="float".

- Per layer: SQNR (dB) = 10 log10(sum f^2 / sum (f - q)^2) over all samples, f the float op output,
  q the dequantized integer output (scale * (q - zero_point)). It measures the error accumulated up
  to that layer, not the layer's own: the worst layers are where the damage shows.
- End to end: the same SQNR on the model output (for a softmax: over the probabilities, as the
  digits README does), top-1 agreement of the argmax with the float model's, and with labels the
  float and quantized accuracy and their difference in points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .. import reference
from .params import dequantize_array, quantize_array


@dataclass(frozen=True)
class LayerSQNR:
    """One op output: its float tensor name, op kind, position in the float graph and SQNR."""

    name: str
    op: str
    index: int
    dtype: str
    sqnr_db: float


@dataclass(frozen=True)
class Accuracy:
    data: str                         # what the samples were: "calibration" or "validation"
    samples: int
    layers: tuple[LayerSQNR, ...]     # graph order
    output_sqnr_db: float
    agreement: float | None           # top-1 agreement with float (None: output is not a class vector)
    float_accuracy: float | None      # with labels
    quant_accuracy: float | None

    @property
    def drop_points(self) -> float | None:
        """Accuracy lost in percentage points (labels), else disagreement with float in points."""
        if self.float_accuracy is not None and self.quant_accuracy is not None:
            return 100.0 * (self.float_accuracy - self.quant_accuracy)
        if self.agreement is not None:
            return 100.0 * (1.0 - self.agreement)
        return None

    def worst(self, k: int | None = None) -> list[LayerSQNR]:
        ranked = sorted(self.layers, key=lambda layer: (layer.sqnr_db, layer.index))
        return ranked if k is None else ranked[:k]


def sqnr_db(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0.0:
        return math.inf
    if signal_power <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def quantized_feeds(graph, tensor_map: Mapping[str, str], sample: Mapping[str, np.ndarray],
                    float_io: bool = False) -> dict[str, np.ndarray]:
    """One sample's feeds for an integer graph: the float inputs quantized with its input params
    (round half away, clamp: TFLite's rule), or passed as they are when the graph takes floats."""
    if float_io:
        return dict(sample)
    feeds = {}
    for name, x in sample.items():
        t = graph.tensors[tensor_map[name]]
        feeds[t.name] = quantize_array(x, t.quant, t.dtype)
    return feeds


def evaluate(result, samples: Mapping[str, np.ndarray], labels: np.ndarray | None = None,
             data: str = "calibration", limit: int | None = None) -> Accuracy:
    """Compare a QuantizeResult's graphs on samples ({input: [N, *shape]}, float)."""
    return compare_graphs(result.float_graph, result.graph, result.tensor_map, samples, labels, data, limit,
                          float_io=result.options.io == "float")


def map_by_position(float_graph, int_graph) -> dict[str, str]:
    """Tensor map between a float graph and an integer graph with the same op list (e.g. a converter's
    int8 model of the same float model): inputs in order, then op outputs op by op."""
    f_ops = [op for op in float_graph.ops]
    q_ops = [op for op in int_graph.ops if op.kind not in ("QUANTIZE", "DEQUANTIZE")]
    kinds = ([op.kind for op in f_ops], [op.kind for op in q_ops])
    if kinds[0] != kinds[1]:
        raise ValueError(f"the graphs' op lists differ: {kinds[0]} vs {kinds[1]}")
    m = dict(zip(float_graph.inputs, int_graph.inputs))
    for fo, qo in zip(f_ops, q_ops):
        m.update(zip(fo.outputs, qo.outputs))
    return m


def compare_graphs(float_graph, int_graph, tensor_map: Mapping[str, str], samples: Mapping[str, np.ndarray],
                   labels: np.ndarray | None = None, data: str = "calibration", limit: int | None = None,
                   float_io: bool = False) -> Accuracy:
    """Run both graphs on every sample and compare each float op output with its integer twin
    (tensor_map: float name -> integer graph name)."""
    from .calib import as_samples

    fg, qg = float_graph, int_graph
    samples = as_samples(fg, samples, f"{data} data")
    n = len(next(iter(samples.values())))
    if limit is not None:
        n = min(n, limit)
        labels = None if labels is None else labels[:n]
    producers = [(op, name) for op in fg.ops for name in op.outputs]
    signal = {name: 0.0 for _, name in producers}
    noise = dict(signal)
    f_out, q_out = [], []
    out_name = fg.outputs[0]
    for i in range(n):
        sample = {k: v[i] for k, v in samples.items()}
        fv = reference.run(fg, sample, keep_all=True)
        qv = reference.run(qg, quantized_feeds(qg, tensor_map, sample, float_io), keep_all=True)
        for _, name in producers:
            t = qg.tensors[tensor_map[name]]
            f = fv[name].astype(np.float64)
            q = dequantize_array(qv[t.name], t.quant)
            signal[name] += float(np.sum(f * f))
            noise[name] += float(np.sum((f - q) ** 2))
        qt = qg.tensors[tensor_map[out_name]]
        f_out.append(fv[out_name].astype(np.float64).ravel())
        q_out.append(dequantize_array(qv[qt.name], qt.quant).ravel())
    layers = tuple(LayerSQNR(name, op.kind, k, qg.tensors[tensor_map[name]].dtype.value,
                             sqnr_db(signal[name], noise[name]))
                   for k, (op, name) in enumerate(producers))
    f_all, q_all = np.stack(f_out), np.stack(q_out)
    out_sqnr = sqnr_db(float(np.sum(f_all ** 2)), float(np.sum((f_all - q_all) ** 2)))
    agreement = f_acc = q_acc = None
    if f_all.shape[1] > 1 and (labels is not None or _is_classifier(fg)):
        f_top, q_top = f_all.argmax(axis=1), q_all.argmax(axis=1)
        agreement = float(np.mean(f_top == q_top))
        if labels is not None:
            f_acc, q_acc = float(np.mean(f_top == labels)), float(np.mean(q_top == labels))
    return Accuracy(data, n, layers, out_sqnr, agreement, f_acc, q_acc)


def _is_classifier(graph) -> bool:
    """Top-1 agreement means something when the first output is a softmax / logistic of classes."""
    producer = graph.producers().get(graph.outputs[0])
    return producer is not None and producer.kind in ("SOFTMAX", "LOGISTIC")


def evaluate_other(result, int_graph, samples: Mapping[str, np.ndarray], labels: np.ndarray | None = None,
                   data: str = "calibration", limit: int | None = None) -> Accuracy:
    """Estimate another integer model of the same float model (e.g. the converter's official int8 file,
    same op list) against result's float graph on the same samples, layer by layer."""
    tensor_map = map_by_position(result.float_graph, int_graph)
    float_io = int_graph.tensors[int_graph.inputs[0]].dtype.is_float
    return compare_graphs(result.float_graph, int_graph, tensor_map, samples, labels, data, limit, float_io)
