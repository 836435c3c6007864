"""Converters of the arithmetic TFLite ops: convolutions, fully connected, batch matmul, pooling, MEAN,
elementwise, activations, softmax and (de)quantization.

Layouts need no change: TFLite's NHWC activations and [Cout, KH, KW, Cin] / [1, KH, KW, Cout] /
[Cout, K] weights are the IR's. Import-time rewrites of constants (each a new or replaced constant
tensor, see `build.TensorBuilder.derived`):
- hybrid ops (float activations, int8 quantized constant weights, e.g. kws_ref_model_float32): the
  weights are dequantized to float32, so the graph is a pure float graph;
- int16-activation MAC ops: an int16/int32 bias is widened to int64, the IR's bias type for 16x8
  (TFLM widens int16 biases itself and accumulates in int64 either way, so values are unchanged).
"""

from __future__ import annotations

import numpy as np

from ...graph import DType, Tensor
from . import geometry
from .context import Converted, Folded, OpContext
from .tensors import dequantize


def _weights(ctx: OpContext, i: int, x: Tensor) -> str:
    """The filter input's name; a hybrid op's quantized filter is replaced by its float32 values."""
    w = ctx.tensor(i)
    if x.dtype.is_float and w.dtype.is_int:
        if w.data is None or w.quant is None:
            raise ctx.unsupported(f"float input with an {w.dtype.value} filter that is not a quantized "
                                  f"constant (hybrid op) is not supported")
        return ctx.table.derived(ctx.op.inputs[i], "dequantized", dequantize)
    return ctx.name(i)


def _bias(ctx: OpContext, i: int, x: Tensor, channels: int) -> str:
    b = ctx.optional(i)
    if b is None:
        return ""
    if b.size != channels:
        raise ctx.fail(f"bias {b.name!r} has {b.size} values for {channels} output channels")
    if x.dtype is DType.INT16 and b.dtype in (DType.INT16, DType.INT32) and b.data is not None:
        def widen(t: Tensor, name: str) -> Tensor:
            data = t.data.astype(np.int64)
            data.flags.writeable = False
            return Tensor(name, t.shape, DType.INT64, t.quant, data)
        return ctx.table.derived(ctx.op.inputs[i], "int64", widen)
    return ctx.name(i)


def _misfit(ctx: OpContext, x: Tensor, w: Tensor, out: Tensor):
    return ctx.fail(f"input {list(x.shape)}, filter {list(w.shape)} and output {list(out.shape)} do not fit")


def conv_2d(ctx: OpContext) -> Converted:
    ctx.arity(2, 3)
    x, w, out = ctx.tensor(0), ctx.tensor(1), ctx.out()
    for t, what in ((x, "input"), (w, "filter"), (out, "output")):
        ctx.rank(t, 4, what)
    if w.shape[3] == 0 or x.shape[3] % w.shape[3] or out.shape[3] != w.shape[0] or out.shape[0] != x.shape[0]:
        raise _misfit(ctx, x, w, out)
    strides = ctx.positive("StrideH", "StrideW")
    dilations = ctx.positive("DilationHFactor", "DilationWFactor")
    pads = ctx.window_pads(x.shape[1:3], w.shape[1:3], strides, dilations, out.shape[1:3])
    inputs = (ctx.name(0), _weights(ctx, 1, x), _bias(ctx, 2, x, w.shape[0]))
    return Converted("CONV_2D", inputs, dict(strides=strides, dilations=dilations, pads=pads,
                                             activation=ctx.activation()))


def depthwise_conv_2d(ctx: OpContext) -> Converted:
    """depth_multiplier is Cout / Cin; TFLM takes the option value, so a file whose option disagrees
    with the shapes is rejected (0, written by some old converters, means "from the shapes")."""
    ctx.arity(2, 3)
    x, w, out = ctx.tensor(0), ctx.tensor(1), ctx.out()
    for t, what in ((x, "input"), (w, "filter"), (out, "output")):
        ctx.rank(t, 4, what)
    c_in, c_out = x.shape[3], w.shape[3]
    if w.shape[0] != 1 or c_in == 0 or c_out % c_in or out.shape[3] != c_out or out.shape[0] != x.shape[0]:
        raise _misfit(ctx, x, w, out)
    multiplier = c_out // c_in
    option = int(ctx.options["DepthMultiplier"])
    if option not in (0, multiplier):
        raise ctx.fail(f"depth_multiplier {option} does not match {c_in} input and {c_out} output channels")
    strides = ctx.positive("StrideH", "StrideW")
    dilations = ctx.positive("DilationHFactor", "DilationWFactor")
    pads = ctx.window_pads(x.shape[1:3], w.shape[1:3], strides, dilations, out.shape[1:3])
    inputs = (ctx.name(0), _weights(ctx, 1, x), _bias(ctx, 2, x, c_out))
    return Converted("DEPTHWISE_CONV_2D", inputs, dict(depth_multiplier=multiplier, strides=strides,
                                                       dilations=dilations, pads=pads,
                                                       activation=ctx.activation()))


def fully_connected(ctx: OpContext) -> Converted:
    """keep_num_dims only decides the output tensor's shape, which the file carries: it is checked, not
    kept. Shuffled weights (SHUFFLED4x16INT8) are an unsupported variant."""
    ctx.arity(2, 3)
    x, w, out = ctx.tensor(0), ctx.tensor(1), ctx.out()
    ctx.rank(w, 2, "filter")
    if int(ctx.options["WeightsFormat"]) != 0:
        raise ctx.unsupported("shuffled weights (weights_format SHUFFLED4x16INT8) are not supported")
    c_out, k = w.shape
    if k == 0 or x.size % k or not out.shape or out.shape[-1] != c_out or out.size != x.size // k * c_out:
        raise _misfit(ctx, x, w, out)
    if ctx.options["KeepNumDims"] and out.shape != (*x.shape[:-1], c_out):
        raise ctx.fail(f"keep_num_dims is set but output {list(out.shape)} does not keep the leading dims of "
                       f"input {list(x.shape)}")
    inputs = (ctx.name(0), _weights(ctx, 1, x), _bias(ctx, 2, x, c_out))
    return Converted("FULLY_CONNECTED", inputs, dict(activation=ctx.activation()))


def batch_matmul(ctx: OpContext) -> Converted:
    """BATCH_MATMUL without adjoints -> IR BATCH_MATMUL (numpy matmul broadcasting); adj_x / adj_y are
    unsupported variants. A hybrid op's constant int8 right operand is dequantized like a filter."""
    ctx.arity(2)
    a, b, out = ctx.tensor(0), ctx.tensor(1), ctx.out()
    if ctx.options["AdjX"] or ctx.options["AdjY"]:
        raise ctx.unsupported("adj_x / adj_y (transposed operands) are not supported")
    if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[-1] != b.shape[-2]:
        raise ctx.fail(f"operands {list(a.shape)} and {list(b.shape)} cannot be multiplied")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ctx.fail(f"the batch dims of {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if out.shape != (*batch, a.shape[-2], b.shape[-1]):
        raise ctx.fail(f"output {list(out.shape)} is not the product of {list(a.shape)} and {list(b.shape)}")
    return Converted("BATCH_MATMUL", (ctx.name(0), _weights(ctx, 1, a)))


def transpose_conv(ctx: OpContext) -> Converted:
    """TFLite inputs (output_shape, filter, input, bias?) -> IR (input, filter, bias). The output shape
    operand is dropped (the output tensor has it; when it is a constant it must agree). TFLM ignores
    a fused activation on TRANSPOSE_CONV, so one is reported as unsupported rather than guessed."""
    ctx.arity(3, 4)
    w, x, out = ctx.tensor(1), ctx.tensor(2), ctx.out()
    for t, what in ((x, "input"), (w, "filter"), (out, "output")):
        ctx.rank(t, 4, what)
    if w.shape[3] != x.shape[3] or out.shape[3] != w.shape[0] or out.shape[0] != x.shape[0]:
        raise _misfit(ctx, x, w, out)
    shape_operand = ctx.tensor(0)
    if shape_operand.data is not None and tuple(int(v) for v in shape_operand.data.reshape(-1)) != out.shape:
        raise ctx.fail(f"output_shape operand {shape_operand.data.tolist()} differs from the output tensor's "
                       f"shape {list(out.shape)}")
    if ctx.activation() != "NONE":
        raise ctx.unsupported(f"fused activation {ctx.activation()} on TRANSPOSE_CONV is not supported")
    strides = ctx.positive("StrideH", "StrideW")
    pads = geometry.transpose_conv_pads(ctx.padding(), x.shape[1:3], w.shape[1:3], strides, out.shape[1:3])
    inputs = (ctx.name(2), _weights(ctx, 1, x), _bias(ctx, 3, x, w.shape[0]))
    return Converted("TRANSPOSE_CONV", inputs, dict(strides=strides, dilations=(1, 1), pads=pads))


def _pool(kind: str):
    def convert(ctx: OpContext) -> Converted:
        ctx.arity(1)
        x, out = ctx.tensor(0), ctx.out()
        ctx.rank(x, 4, "input")
        ctx.rank(out, 4, "output")
        if (out.shape[0], out.shape[3]) != (x.shape[0], x.shape[3]):
            raise ctx.fail(f"input {list(x.shape)} and output {list(out.shape)} do not fit")
        kernel = ctx.positive("FilterHeight", "FilterWidth")
        strides = ctx.positive("StrideH", "StrideW")
        pads = ctx.window_pads(x.shape[1:3], kernel, strides, (1, 1), out.shape[1:3])
        attrs = dict(kernel=kernel, strides=strides, dilations=(1, 1), pads=pads, activation=ctx.activation())
        return Converted(kind, (ctx.name(0),), attrs)
    return convert


def mean(ctx: OpContext) -> Converted:
    ctx.arity(2)
    x, out = ctx.tensor(0), ctx.out()
    axes = tuple(sorted({ctx.axis(a, len(x.shape)) for a in ctx.ints(1, "axes")}))
    keep = bool(ctx.options["KeepDims"])
    want = tuple(1 if i in axes else n for i, n in enumerate(x.shape) if keep or i not in axes)
    if out.shape != want:
        raise ctx.fail(f"output {list(out.shape)} is not input {list(x.shape)} reduced over {list(axes)}")
    return Converted("MEAN", (ctx.name(0),), dict(axes=axes, keepdims=keep))


def _binary(kind: str):
    def convert(ctx: OpContext) -> Converted:
        ctx.arity(2)
        a, b, out = ctx.tensor(0), ctx.tensor(1), ctx.out()
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            shape = None
        if shape != out.shape:
            raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast to the output "
                           f"{list(out.shape)}")
        return Converted(kind, (ctx.name(0), ctx.name(1)), dict(activation=ctx.activation()))
    return convert


def _unary(kind: str, **attrs):
    def convert(ctx: OpContext) -> Converted:
        ctx.arity(1)
        ctx.same_shape(ctx.tensor(0), ctx.out())
        return Converted(kind, (ctx.name(0),), dict(attrs))
    return convert


def leaky_relu(ctx: OpContext) -> Converted:
    ctx.arity(1)
    ctx.same_shape(ctx.tensor(0), ctx.out())
    return Converted("LEAKY_RELU", (ctx.name(0),), dict(alpha=float(ctx.options["Alpha"])))


def softmax(ctx: OpContext) -> Converted:
    ctx.arity(1)
    ctx.same_shape(ctx.tensor(0), ctx.out())
    if not ctx.out().shape:
        raise ctx.fail("SOFTMAX of a scalar")
    return Converted("SOFTMAX", (ctx.name(0),), dict(beta=float(ctx.options["Beta"]), axis=-1))


def dequantize_op(ctx: OpContext) -> Converted | Folded:
    """DEQUANTIZE of a constant (float16 weights, or int8 weights of a weights-only quantized model) is
    folded into a float32 constant; of an activation it stays an op."""
    ctx.arity(1)
    x, out = ctx.tensor(0), ctx.out()
    ctx.same_shape(x, out)
    if x.data is not None and out.dtype is DType.FLOAT32:
        if x.dtype.is_float:
            return Folded(x.data.astype(np.float32))
        if x.quant is not None:
            return Folded(dequantize(x, out.name).data)
    return Converted("DEQUANTIZE", (ctx.name(0),))


CONVERTERS = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "FULLY_CONNECTED": fully_connected,
    "TRANSPOSE_CONV": transpose_conv,
    "BATCH_MATMUL": batch_matmul,
    "AVERAGE_POOL_2D": _pool("AVERAGE_POOL"),
    "MAX_POOL_2D": _pool("MAX_POOL"),
    "MEAN": mean,
    "ADD": _binary("ADD"),
    "SUB": _binary("SUB"),
    "MUL": _binary("MUL"),
    "RELU": _unary("CLIP", min=0.0, max=None),
    "RELU6": _unary("CLIP", min=0.0, max=6.0),
    "RELU_N1_TO_1": _unary("CLIP", min=-1.0, max=1.0),
    "LEAKY_RELU": leaky_relu,
    "HARD_SWISH": _unary("HARD_SWISH"),
    "LOGISTIC": _unary("LOGISTIC"),
    "TANH": _unary("TANH"),
    "SOFTMAX": softmax,
    "QUANTIZE": _unary("QUANTIZE", rounding="half_away"),
    "DEQUANTIZE": dequantize_op,
}

OPTIONS = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions", "BATCH_MATMUL": "BatchMatMulOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "MEAN": "ReducerOptions",
    "ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions", "LEAKY_RELU": "LeakyReluOptions",
    "SOFTMAX": "SoftmaxOptions",
}
