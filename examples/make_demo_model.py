#!/usr/bin/env python3
"""Make the project's own demo model: a small keyword-spotting-shaped int8 CNN (DS-CNN style).

    python examples/make_demo_model.py OUT.tflite [--seed N]

The repository carries no third-party models, so `make demo` and many tests use this one. It is built
as a microgen Graph in code (`make_demo_graph(seed)`) and written with microgen.exporters:

    input  int8 [1, 49, 10, 1]           (49 frames x 10 MFCC features; s=0.5, zp=12)
    CONV_2D 10x4 stride 2 SAME + RELU     -> [1, 25, 5, 24]
    2 x (DEPTHWISE_CONV_2D 3x3 SAME + RELU, CONV_2D 1x1 + RELU)
    AVERAGE_POOL 25x5 VALID               -> [1, 1, 1, 24]
    RESHAPE                               -> [1, 24]
    FULLY_CONNECTED                       -> [1, 12] logits
    SOFTMAX                               -> int8 [1, 12], s=1/256, zp=-128

Weights are seeded (numpy default_rng(seed)): He-normal float weights, quantized symmetric int8 in
[-127, 127] per output channel for the convolutions (axis 0 of CONV_2D [out,kh,kw,in], axis 3 of
DEPTHWISE_CONV_2D [1,kh,kw,out]) and per tensor for FULLY_CONNECTED (as in the MLPerf Tiny KWS model);
biases int32 with scale in_scale * w_scale.

Activation scales are calibrated, not guessed: the float version of the same network runs in numpy
on 24 seeded inputs drawn like the tests' inputs (microgen.testing.corpus.seeded_inputs: int8 noise
around the zero point with amplitudes 1..256), and every RELU output gets scale = 1.1 * max / 255 and
zero point -128 (its calibrated range [0, max] with 10% headroom, so typical inputs do not
saturate). The classifier weights are rescaled so the calibrated logits span about +-6, which keeps
the softmax from being one-hot; the logits tensor gets the asymmetric range 1.1 * [min, max] of the
calibration logits. Scales are rounded to
float32 so the Graph equals what a reader gets back from the file.

Deterministic: the same seed gives identical bytes. The file is about 10 KB.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from microgen.exporters import write_tflite
from microgen.graph import DType, Graph, Op, QuantParams, Tensor, verify
from microgen.graph.ops import with_defaults
from microgen.testing.corpus import seeded_inputs

INPUT_SHAPE = (1, 49, 10, 1)
INPUT_QUANT = QuantParams.per_tensor(0.5, 12)
CHANNELS = 24
CLASSES = 12
LOGIT_SPAN = 6.0
HEADROOM = 1.1  # calibrated ranges are widened by 10%: inputs other than the calibration set go higher
CALIBRATION_SAMPLES = 24

# (name, kind, kernel (kh, kw), strides, pads (top, left, bottom, right))
_LAYERS = [
    ("conv1", "CONV_2D", (10, 4), (2, 2), (4, 1, 5, 1)),
    ("dw1", "DEPTHWISE_CONV_2D", (3, 3), (1, 1), (1, 1, 1, 1)),
    ("pw1", "CONV_2D", (1, 1), (1, 1), (0, 0, 0, 0)),
    ("dw2", "DEPTHWISE_CONV_2D", (3, 3), (1, 1), (1, 1, 1, 1)),
    ("pw2", "CONV_2D", (1, 1), (1, 1), (0, 0, 0, 0)),
]


def _f32(x: float) -> float:
    """A scale as the float32 a .tflite file stores."""
    return float(np.float32(x))


# -- the float network (calibration only) ------------------------------------------------------------
def _conv_float(x: np.ndarray, w: np.ndarray, b: np.ndarray, strides, pads, depthwise: bool) -> np.ndarray:
    """x [N,H,W,Cin] float64; w [Cout,KH,KW,Cin] or depthwise [1,KH,KW,C]; explicit pads; + bias."""
    top, left, bottom, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = w.shape[1:3]
    sh, sw = strides
    ho = (xp.shape[1] - kh) // sh + 1
    wo = (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[0] if not depthwise else w.shape[3]))
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw, :]
            out += patch * w[0, ky, kx, :] if depthwise else patch @ w[:, ky, kx, :].T
    return out + b


def _float_weights(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """He-normal weights and small biases for every layer, in IR layouts."""
    weights = {}
    cin = INPUT_SHAPE[3]
    for name, kind, (kh, kw), _, _ in _LAYERS:
        if kind == "DEPTHWISE_CONV_2D":
            w = rng.normal(0.0, np.sqrt(2.0 / (kh * kw)), size=(1, kh, kw, cin))
        else:
            w = rng.normal(0.0, np.sqrt(2.0 / (kh * kw * cin)), size=(CHANNELS, kh, kw, cin))
            cin = CHANNELS
        weights[name] = (w, rng.normal(0.0, 0.1, size=CHANNELS))
    weights["fc"] = (rng.normal(0.0, np.sqrt(1.0 / CHANNELS), size=(CLASSES, CHANNELS)),
                     rng.normal(0.0, 0.1, size=CLASSES))
    return weights


def _calibrate(weights, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the float network on real-valued inputs x [N,49,10,1]; every layer's output by name."""
    acts = {}
    for name, kind, _, strides, pads in _LAYERS:
        w, b = weights[name]
        x = np.maximum(_conv_float(x, w, b, strides, pads, kind == "DEPTHWISE_CONV_2D"), 0.0)
        acts[name] = x
    pooled = x.mean(axis=(1, 2))
    w, b = weights["fc"]
    acts["logits"] = pooled @ w.T + b
    return acts


# -- quantization --------------------------------------------------------------------------------------
def _quantize_weights(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 in [-127, 127], per slice along `axis` (or per tensor)."""
    reduce = tuple(i for i in range(w.ndim) if i != axis) if axis is not None else None
    amax = np.max(np.abs(w), axis=reduce)
    scales = np.asarray(amax / 127.0, dtype=np.float32).astype(np.float64).reshape(-1)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    if axis is None:
        return q, QuantParams.per_tensor(scales[0], 0)
    return q, QuantParams(tuple(scales.tolist()), (0,) * len(scales), axis)


def _bias(b: np.ndarray, in_scale: float, wq: QuantParams) -> tuple[np.ndarray, QuantParams]:
    scales = np.asarray(np.float32(in_scale) * np.asarray(wq.scale, dtype=np.float32), dtype=np.float32)
    q = np.round(b / scales.astype(np.float64)).astype(np.int32)
    if wq.axis is None:
        return q, QuantParams.per_tensor(float(scales[0]), 0)
    return q, QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), 0)


def _relu_quant(acts: np.ndarray) -> QuantParams:
    return QuantParams.per_tensor(_f32(HEADROOM * float(acts.max()) / 255.0), -128)


def make_demo_graph(seed: int = 0) -> Graph:
    """The demo KWS model as a verified microgen Graph (see the module docstring)."""
    rng = np.random.default_rng(seed)
    weights = _float_weights(rng)
    inp = Tensor("input", INPUT_SHAPE, DType.INT8, INPUT_QUANT)
    q_in = seeded_inputs(inp, CALIBRATION_SAMPLES, seed=seed + 1000)
    x_cal = INPUT_QUANT.s * (q_in.reshape(-1, *INPUT_SHAPE[1:]).astype(np.float64) - INPUT_QUANT.zp)
    acts = _calibrate(weights, x_cal)
    # Rescale the classifier so the calibration logits span about +-LOGIT_SPAN.
    w_fc, b_fc = weights["fc"]
    gain = LOGIT_SPAN / max(float(np.abs(acts["logits"]).max()), 1e-6)
    weights["fc"] = (w_fc * gain, b_fc * gain)
    acts["logits"] = acts["logits"] * gain

    tensors: dict[str, Tensor] = {"input": inp}
    ops: list[Op] = []

    def add(t: Tensor) -> str:
        tensors[t.name] = t
        return t.name

    def op(kind: str, inputs, output: str, **attrs) -> None:
        ops.append(Op(kind, tuple(inputs), (output,), with_defaults(kind, attrs), name=output,
                      index=len(ops)))

    x, x_quant = "input", INPUT_QUANT
    h, w_ = INPUT_SHAPE[1:3]
    for name, kind, (kh, kw), strides, pads in _LAYERS:
        w_f, b_f = weights[name]
        depthwise = kind == "DEPTHWISE_CONV_2D"
        wq, wq_params = _quantize_weights(w_f, axis=3 if depthwise else 0)
        bq, bq_params = _bias(b_f, x_quant.s, wq_params)
        wname = add(Tensor(f"{name}/weights", wq.shape, DType.INT8, wq_params, wq))
        bname = add(Tensor(f"{name}/bias", bq.shape, DType.INT32, bq_params, bq))
        h = (h + pads[0] + pads[2] - kh) // strides[0] + 1
        w_ = (w_ + pads[1] + pads[3] - kw) // strides[1] + 1
        out_quant = _relu_quant(acts[name])
        add(Tensor(name, (1, h, w_, CHANNELS), DType.INT8, out_quant))
        extra = dict(depth_multiplier=1) if depthwise else {}
        op(kind, (x, wname, bname), name, strides=strides, pads=pads, activation="RELU", **extra)
        x, x_quant = name, out_quant

    # Pooling and reshape keep the quantization params (TFLite requires it).
    add(Tensor("pool", (1, 1, 1, CHANNELS), DType.INT8, x_quant))
    op("AVERAGE_POOL", (x,), "pool", kernel=(h, w_), strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0))
    add(Tensor("flatten", (1, CHANNELS), DType.INT8, x_quant))
    op("RESHAPE", ("pool",), "flatten")

    wq, wq_params = _quantize_weights(weights["fc"][0], axis=None)
    bq, bq_params = _bias(weights["fc"][1], x_quant.s, wq_params)
    add(Tensor("fc/weights", wq.shape, DType.INT8, wq_params, wq))
    add(Tensor("fc/bias", bq.shape, DType.INT32, bq_params, bq))
    lo = HEADROOM * min(float(acts["logits"].min()), 0.0)
    hi = HEADROOM * max(float(acts["logits"].max()), 0.0)
    s_logits = _f32((hi - lo) / 255.0)
    zp_logits = int(np.clip(np.round(-128 - lo / s_logits), -128, 127))
    add(Tensor("logits", (1, CLASSES), DType.INT8, QuantParams.per_tensor(s_logits, zp_logits)))
    op("FULLY_CONNECTED", ("flatten", "fc/weights", "fc/bias"), "logits")
    add(Tensor("output", (1, CLASSES), DType.INT8, QuantParams.per_tensor(1.0 / 256.0, -128)))
    op("SOFTMAX", ("logits",), "output", beta=1.0)

    graph = Graph(f"demo_kws_seed{seed}", tensors, tuple(ops), ("input",), ("output",),
                  metadata={"generator": "examples/make_demo_model.py", "seed": seed})
    return verify(graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the microgen demo KWS int8 model as .tflite.")
    parser.add_argument("out", help="output .tflite path")
    parser.add_argument("--seed", type=int, default=0, help="weight / calibration seed (default 0)")
    args = parser.parse_args(argv)
    graph = make_demo_graph(args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_tflite(graph, args.out)
    print(f"wrote {args.out}: {os.path.getsize(args.out)} bytes, {len(graph.ops)} ops, seed {args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
