"""Float graph + Plan -> the quantized graph (TFLite int8 spec; 16x8 for int16 groups).

Each float op becomes the same op over integer tensors; the arithmetic then follows from the tensors
(see graph/ops.py), so the result runs through the reference executor, the C path and the .tflite
writer like an imported int8 model. Per op:

- MAC ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV): int8 symmetric weights per
  channel (axis 0; depthwise axis 3; fully-connected per tensor with `per_channel_fc=False`), bias
  int32 (int64 for 16x8) at input_scale * weight_scale.
- Constant operands of elementwise ops, BATCH_MATMUL and CONCATENATION: per-tensor params from their
  own range (CONCATENATION: the output's).
- An activation operand whose dtype (int8 / int16) or params do not fit what the op needs (an int16
  tensor read by an int8 op; a "same" op's input whose params could not be tied) is requantized by an
  inserted QUANTIZE (TFLM's int -> int requantize), shared by all readers that need the same.
- PAD's fill value is a raw value in the tensor's dtype: the real fill quantized with the output params.

Tensor names: with io="int8" every activation keeps its float name. With io="float" each graph input
keeps its float tensor, read by a QUANTIZE into '<name>/quantized', and each graph output is a
DEQUANTIZE of '<name>/quantized'. `tensor_map` maps every float activation to its quantized tensor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UnsupportedOpError
from ..graph import DType, Graph, Op, QuantParams, Tensor, verify
from ..graph.ir import unique_name
from .params import activation_params, bias_fit_scales, quantize_array, quantize_bias, quantize_weights, weight_scales
from .plan import OP_RULES, Plan

WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}


class _Builder:
    def __init__(self, graph: Graph, plan: Plan, io: str, per_channel_fc: bool) -> None:
        self.g, self.plan, self.io, self.per_channel_fc = graph, plan, io, per_channel_fc
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.tensor_map: dict[str, str] = {}
        self._cache: dict[tuple, str] = {}
        self._taken = set(graph.tensors)
        for name in plan.params:
            t = graph.tensors[name]
            qname = self._fresh(f"{name}/quantized") if io == "float" and (
                name in graph.inputs or name in graph.outputs) else name
            self.tensors[qname] = Tensor(qname, t.shape, plan.dtypes[name], plan.params[name])
            self.tensor_map[name] = qname
        if io == "float":
            for name in graph.inputs:
                self.tensors[name] = graph.tensors[name]
                self.ops.append(Op("QUANTIZE", (name,), (self.tensor_map[name],), {"rounding": "half_away"},
                                   name=f"{name}/quantize"))

    # -- names and tensors ---------------------------------------------------------------------------
    def _fresh(self, hint: str) -> str:
        return unique_name(hint, self._taken)

    def _const(self, hint: str, data: np.ndarray, q: QuantParams) -> str:
        name = self._fresh(hint)
        self.tensors[name] = Tensor(name, tuple(data.shape), DType.from_numpy(data.dtype), q, data)
        return name

    def out(self, name: str) -> Tensor:
        return self.tensors[self.tensor_map[name]]

    # -- operands ------------------------------------------------------------------------------------
    def act(self, name: str, dtype: DType, params: QuantParams | None = None) -> str:
        """The quantized operand for float activation `name` as `dtype` (and `params` if given),
        requantized through an inserted QUANTIZE when the planned tensor differs."""
        t = self.out(name)
        if t.dtype is dtype and (params is None or params == t.quant):
            return t.name
        if params is None:
            params = t.quant if t.dtype is dtype else self._params_for(name, dtype)
        key = ("act", name, dtype, params)
        if key not in self._cache:
            qname = self._fresh(f"{name}/{dtype.value}")
            self.tensors[qname] = Tensor(qname, t.shape, dtype, params)
            self.ops.append(Op("QUANTIZE", (t.name,), (qname,), {"rounding": "half_away"},
                               name=f"{name}/requantize"))
            self._cache[key] = qname
        return self._cache[key]

    def _params_for(self, name: str, dtype: DType) -> QuantParams:
        """Params for a tensor re-expressed in another dtype, covering its planned real range."""
        return activation_params(*self.plan.ranges[name], dtype)

    def operand(self, name: str, dtype: DType, params: QuantParams | None = None) -> str:
        """An activation (see act) or a float constant quantized per tensor (own range or `params`)."""
        t = self.g.tensors[name]
        if not t.is_const:
            return self.act(name, dtype, params)
        if params is None:
            data = t.data.astype(np.float64)
            params = activation_params(float(data.min(initial=0.0)), float(data.max(initial=0.0)), dtype)
        key = ("const", name, dtype, params)
        if key not in self._cache:
            self._cache[key] = self._const(f"{name}/{dtype.value}", quantize_array(t.data, params, dtype), params)
        return self._cache[key]

    # -- ops -----------------------------------------------------------------------------------------
    def op(self, op: Op) -> None:
        rule = OP_RULES[op.kind]
        dtype = self.out(op.outputs[0]).dtype
        outs = tuple(self.tensor_map[n] for n in op.outputs)
        attrs = dict(op.attrs)
        if op.kind in WEIGHT_AXIS:
            inputs = self._mac_inputs(op, dtype)
        elif rule == "same":
            q = self.out(op.outputs[0]).quant
            if op.kind == "CONCATENATION":
                inputs = tuple(self.operand(n, dtype, q) for n in op.inputs)
            else:
                inputs = (self.act(op.inputs[0], dtype, q),) + tuple(op.inputs[1:])
            if op.kind == "PAD" and attrs.get("mode", "constant") == "constant":
                fill = np.asarray([float(attrs.get("value", 0))])
                attrs["value"] = int(quantize_array(fill, q, dtype)[0])
        else:
            inputs = tuple(self.operand(n, dtype) if n else "" for n in op.inputs)
        self.ops.append(dataclasses.replace(op, inputs=inputs, outputs=outs, attrs=attrs))

    def _mac_inputs(self, op: Op, dtype: DType) -> tuple[str, ...]:
        x = self.act(op.inputs[0], dtype)
        w_t = self.g.tensors[op.inputs[1]]
        b_t = self.g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] else None
        if not w_t.is_const or (b_t is not None and not b_t.is_const):
            raise UnsupportedOpError(f"{op.where()} {op.kind}: weights or bias are not constants")
        axis = WEIGHT_AXIS[op.kind]
        if op.kind == "FULLY_CONNECTED" and not self.per_channel_fc:
            axis = None
        in_s = self.tensors[x].quant.s
        bias_dtype = DType.INT64 if dtype is DType.INT16 else DType.INT32
        scales = weight_scales(w_t.data, axis)
        channels = w_t.shape[axis] if axis is not None else w_t.shape[WEIGHT_AXIS[op.kind]]
        if b_t is not None and axis is not None:
            scales = bias_fit_scales(b_t.data, in_s, scales, bias_dtype)
        elif b_t is not None:
            scales = np.array([bias_fit_scales(b_t.data, in_s, np.repeat(scales, channels), bias_dtype).max()],
                              np.float32)
        key = ("weights", w_t.name, axis, scales.tobytes())
        if key not in self._cache:
            wq, wparams = quantize_weights(w_t.data, axis, scales)
            self._cache[key] = self._const(f"{w_t.name}/int8", wq, wparams)
        w_name = self._cache[key]
        if b_t is None:
            return (x, w_name)
        bq, bparams = quantize_bias(b_t.data, in_s, self.tensors[w_name].quant, channels, bias_dtype)
        return (x, w_name, self._const(f"{b_t.name}/{bias_dtype.value}", bq, bparams))

    def finish(self) -> Graph:
        outputs = self.g.outputs
        if self.io == "float":
            for name in outputs:
                self.tensors[name] = self.g.tensors[name]
                self.ops.append(Op("DEQUANTIZE", (self.tensor_map[name],), (name,), name=f"{name}/dequantize"))
        else:
            outputs = tuple(self.tensor_map[n] for n in outputs)
        inputs = self.g.inputs if self.io == "float" else tuple(self.tensor_map[n] for n in self.g.inputs)
        meta = dict(self.g.metadata, quantized_from=self.g.name)
        return verify(self.g.with_ops(self.ops, tensors=self.tensors, inputs=inputs, outputs=outputs,
                                      metadata=meta))


def rewrite(graph: Graph, plan: Plan, io: str = "int8", per_channel_fc: bool = True) -> tuple[Graph, dict[str, str]]:
    """The quantized graph and the float -> quantized tensor name map (see the module docstring)."""
    assert io in ("int8", "float"), io
    b = _Builder(graph, plan, io, per_channel_fc)
    for op in graph.ops:
        b.op(op)
    return b.finish(), dict(b.tensor_map)
