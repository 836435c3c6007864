"""The op vocabulary of the graph IR: one entry per op kind, with its inputs, attributes and meaning.

This table is the contract between the importers (which produce these ops), the reference executor
(which defines what they compute) and the code generator. Semantics follow TFLite / TFLite Micro;
ONNX ops are mapped onto them on import.

Whether an op is quantized is decided by its tensors, not its kind: an op whose activations are integer
tensors with `quant` params computes in the quantized domain with the TFLM reference recipe for that op
(see `../shared/docs/int8-reference.md`); float tensors compute in float32; integer tensors without
quant params (ONNX "plain integer" arithmetic) compute as plain integers.

Common attribute conventions:
- `strides`, `dilations`, `kernel`: tuples with one entry per spatial dimension (H, W for 2-D).
- `pads`: tuple (begin_0, ..., begin_n, end_0, ..., end_n) per spatial dimension, i.e. for 2-D
  (top, left, bottom, right): explicit, already resolved from SAME/VALID/auto_pad on import.
- `activation`: fused activation applied to the output, one of ACTIVATIONS. In the quantized domain it
  becomes a clamp of the quantized output (TFLM's CalculateActivationRangeQuantized).
- `rounding` on requantizing ops: "tflm" (default: integer MultiplyByQuantizedMultiplier with TFLM's
  double rounding) or "onnx" (ONNX QLinear* semantics: acc * (s_in * s_w / s_out) in float, rounded
  half to even, then + zero point and saturated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")

# Sentinel for a required attribute in OpSpec.attrs.
REQUIRED = object()


@dataclass(frozen=True)
class OpSpec:
    """What an op kind takes: its inputs (names; a trailing '?' marks an optional one), whether it
    takes any number of inputs/outputs, and its attributes with defaults (REQUIRED if none)."""

    kind: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    variadic_inputs: bool = False
    variadic_outputs: bool = False
    doc: str = ""

    @property
    def min_inputs(self) -> int:
        return sum(1 for i in self.inputs if not i.endswith("?"))


def _spec(kind: str, inputs: tuple[str, ...], doc: str, **attrs: Any) -> OpSpec:
    return OpSpec(kind, inputs, attrs, doc=doc)


_CONV_ATTRS = dict(strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), activation="NONE", rounding="tflm")

OPS: dict[str, OpSpec] = {s.kind: s for s in [
    # -- MAC ops -------------------------------------------------------------------------------------
    _spec("CONV_2D", ("input", "filter", "bias?"),
          "2-D convolution. input [N,H,W,Cin], filter [Cout,KH,KW,Cin/groups], bias [Cout] "
          "(int32 for int8, int64 for int16 activations, float for float). groups = Cin / filter.shape[3].",
          **_CONV_ATTRS),
    _spec("DEPTHWISE_CONV_2D", ("input", "filter", "bias?"),
          "Depthwise 2-D convolution. input [N,H,W,Cin], filter [1,KH,KW,Cin*depth_multiplier], "
          "output channel c reads input channel c // depth_multiplier.",
          depth_multiplier=1, **_CONV_ATTRS),
    _spec("TRANSPOSE_CONV", ("input", "filter", "bias?"),
          "Transposed convolution (gradient of CONV_2D). input [N,H,W,Cin], filter [Cout,KH,KW,Cin]. "
          "Output shape comes from the output tensor; `pads` (top,left,bottom,right) are cropped from the "
          "full result of size (in-1)*stride + (k-1)*dilation + 1.",
          strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), activation="NONE"),
    _spec("FULLY_CONNECTED", ("input", "filter", "bias?"),
          "y = x @ filter.T + bias. input [..., K] is taken as [-1, K]; filter [Cout, K]. The output "
          "tensor's shape says how the rows are laid out ([-1, Cout] or the input's leading dims).",
          activation="NONE", rounding="tflm"),
    _spec("BATCH_MATMUL", ("a", "b"),
          "Matrix product of two activations with numpy matmul broadcasting (ONNX MatMul / QLinearMatMul "
          "with a non-constant B). 1-D operands follow numpy's promotion rules.",
          rounding="tflm"),
    # -- pooling and reductions ---------------------------------------------------------------------
    _spec("AVERAGE_POOL", ("input",),
          "Average pooling over the spatial dims of [N, *spatial, C]. count_include_pad: padded cells "
          "count in the divisor (ONNX); TFLite pools never include padding.",
          kernel=REQUIRED, strides=REQUIRED, dilations=None, pads=None, activation="NONE",
          count_include_pad=False),
    _spec("MAX_POOL", ("input",),
          "Max pooling over the spatial dims of [N, *spatial, C]; padded cells never win.",
          kernel=REQUIRED, strides=REQUIRED, dilations=None, pads=None, activation="NONE"),
    _spec("MEAN", ("input",), "Mean over `axes` (TFLite MEAN / ONNX ReduceMean).",
          axes=REQUIRED, keepdims=True),
    # -- elementwise ---------------------------------------------------------------------------------
    _spec("ADD", ("a", "b"), "a + b with numpy broadcasting.", activation="NONE"),
    _spec("SUB", ("a", "b"), "a - b with numpy broadcasting.", activation="NONE"),
    _spec("MUL", ("a", "b"), "a * b with numpy broadcasting.", activation="NONE"),
    _spec("CLIP", ("input",),
          "Clamp to [min, max] (real values; None = unbounded). RELU is CLIP(0, None), RELU6 CLIP(0, 6).",
          min=None, max=None),
    _spec("LEAKY_RELU", ("input",), "x if x >= 0 else alpha * x.", alpha=REQUIRED),
    _spec("HARD_SWISH", ("input",), "x * relu6(x + 3) / 6."),
    _spec("LOGISTIC", ("input",), "1 / (1 + exp(-x))."),
    _spec("TANH", ("input",), "tanh(x)."),
    _spec("SOFTMAX", ("input",), "softmax(beta * x) along `axis`.", beta=1.0, axis=-1),
    # -- quantization --------------------------------------------------------------------------------
    _spec("QUANTIZE", ("input",),
          "float -> int: clamp(round(x / scale) + zp); int -> int: requantize (TFLM). rounding: "
          "'half_away' (TFLite) or 'half_even' (ONNX QuantizeLinear).",
          rounding="half_away"),
    _spec("DEQUANTIZE", ("input",), "int -> float: scale * (q - zero_point)."),
    # -- data movement -------------------------------------------------------------------------------
    _spec("RESHAPE", ("input",), "Same data, the output tensor's shape (row-major)."),
    _spec("TRANSPOSE", ("input",), "numpy transpose with `perm`.", perm=REQUIRED),
    OpSpec("CONCATENATION", ("inputs",), dict(axis=REQUIRED, activation="NONE"), variadic_inputs=True,
           doc="Concatenate along `axis` (quantized: each input requantized to the output params)."),
    _spec("PAD", ("input",),
          "Pad by `pads` ((before, after) per dim). mode: constant (with `value`, a raw value in the "
          "tensor's own dtype, e.g. the zero point for quantized tensors), reflect, edge, wrap.",
          pads=REQUIRED, mode="constant", value=0),
    _spec("SLICE", ("input",),
          "Strided slice: out = x[begin[0]:end[0]:strides[0], ...], all resolved and positive-stride "
          "or negative-stride per numpy rules; the output shape is the tensor's (shrunk axes reshaped).",
          begin=REQUIRED, end=REQUIRED, strides=REQUIRED),
    OpSpec("SPLIT", ("input",), dict(axis=REQUIRED, sizes=REQUIRED), variadic_outputs=True,
           doc="Split along `axis` into parts of `sizes`."),
    _spec("RESIZE_NEAREST_NEIGHBOR", ("input",),
          "Nearest-neighbour resize of [N,H,W,C] to the output tensor's H,W (TFLite semantics).",
          align_corners=False, half_pixel_centers=False),
]}


def spec(kind: str) -> OpSpec:
    return OPS[kind]


def with_defaults(kind: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The attributes of an op of `kind`: the given ones on top of the spec's defaults."""
    out = {k: v for k, v in OPS[kind].attrs.items() if v is not REQUIRED}
    out.update(attrs)
    return out
