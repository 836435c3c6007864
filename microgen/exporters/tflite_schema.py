"""The parts of the TFLite FlatBuffer schema (schema.fbs, version 3) the writer needs, and small helpers
that write tables and vectors with the `flatbuffers` package's Builder.

Enum values (builtin op codes, options union tags, tensor types, activations, padding) come from the
`tflite` package's generated enums. Field slots are listed here: a table's fields are numbered in
declaration order in schema.fbs (slot n lives at vtable offset 4 + 2n, the `Offset(...)` numbers in the
`tflite` reader classes), and each table is written with `StartObject(number of fields)`.
"""

from __future__ import annotations

from typing import Sequence

import flatbuffers
import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from ..graph import DType

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"

# Buffer data is aligned like the TFLite converter does it, so int32/int64/float data can be read in
# place (TFLM reads weights straight out of the flatbuffer).
BUFFER_ALIGNMENT = 16

TENSOR_TYPES: dict[DType, int] = {
    DType.FLOAT32: TensorType.FLOAT32, DType.FLOAT16: TensorType.FLOAT16, DType.FLOAT64: TensorType.FLOAT64,
    DType.INT8: TensorType.INT8, DType.UINT8: TensorType.UINT8, DType.INT16: TensorType.INT16,
    DType.UINT16: TensorType.UINT16, DType.INT32: TensorType.INT32, DType.UINT32: TensorType.UINT32,
    DType.INT64: TensorType.INT64, DType.UINT64: TensorType.UINT64, DType.BOOL: TensorType.BOOL,
}

ACTIVATION_CODES = {
    "NONE": ActivationFunctionType.NONE, "RELU": ActivationFunctionType.RELU,
    "RELU6": ActivationFunctionType.RELU6, "RELU_N1_TO_1": ActivationFunctionType.RELU_N1_TO_1,
}

PADDING_CODES = {"SAME": Padding.SAME, "VALID": Padding.VALID}


def builtin_code(name: str) -> int:
    """The BuiltinOperator value of an op name such as 'CONV_2D'."""
    return int(getattr(BuiltinOperator, name))


# -- table layouts: table -> (number of fields, {field: slot}) --------------------------------------
MODEL = (8, dict(version=0, operator_codes=1, subgraphs=2, description=3, buffers=4))
SUBGRAPH = (6, dict(tensors=0, inputs=1, outputs=2, operators=3, name=4))
TENSOR = (10, dict(shape=0, type=1, buffer=2, name=3, quantization=4))
QUANTIZATION = (7, dict(scale=2, zero_point=3, quantized_dimension=6))
BUFFER = (3, dict(data=0))
OPERATOR = (14, dict(opcode_index=0, inputs=1, outputs=2, builtin_options_type=3, builtin_options=4))
OPERATOR_CODE = (4, dict(deprecated_builtin_code=0, version=2, builtin_code=3))

# Options tables: name -> (union tag, number of fields, {field: (slot, kind, schema default)}).
# kind: "i8" / "i32" / "f32" / "bool" scalars, "vi32" an int32 vector.
_CONV = dict(padding=(0, "i8", 0), stride_w=(1, "i32", 0), stride_h=(2, "i32", 0),
             fused_activation_function=(3, "i8", 0), dilation_w_factor=(4, "i32", 1),
             dilation_h_factor=(5, "i32", 1))
OPTIONS: dict[str, tuple[int, int, dict[str, tuple[int, str, object]]]] = {
    "Conv2DOptions": (BuiltinOptions.Conv2DOptions, 7, _CONV),
    "DepthwiseConv2DOptions": (BuiltinOptions.DepthwiseConv2DOptions, 7, dict(
        padding=(0, "i8", 0), stride_w=(1, "i32", 0), stride_h=(2, "i32", 0), depth_multiplier=(3, "i32", 0),
        fused_activation_function=(4, "i8", 0), dilation_w_factor=(5, "i32", 1),
        dilation_h_factor=(6, "i32", 1))),
    "TransposeConvOptions": (BuiltinOptions.TransposeConvOptions, 5, dict(
        padding=(0, "i8", 0), stride_w=(1, "i32", 0), stride_h=(2, "i32", 0),
        fused_activation_function=(3, "i8", 0))),
    "FullyConnectedOptions": (BuiltinOptions.FullyConnectedOptions, 5, dict(
        fused_activation_function=(0, "i8", 0), weights_format=(1, "i8", 0), keep_num_dims=(2, "bool", False),
        asymmetric_quantize_inputs=(3, "bool", False))),
    "Pool2DOptions": (BuiltinOptions.Pool2DOptions, 6, dict(
        padding=(0, "i8", 0), stride_w=(1, "i32", 0), stride_h=(2, "i32", 0), filter_width=(3, "i32", 0),
        filter_height=(4, "i32", 0), fused_activation_function=(5, "i8", 0))),
    "AddOptions": (BuiltinOptions.AddOptions, 2, dict(
        fused_activation_function=(0, "i8", 0), pot_scale_int16=(1, "bool", True))),
    "SubOptions": (BuiltinOptions.SubOptions, 2, dict(
        fused_activation_function=(0, "i8", 0), pot_scale_int16=(1, "bool", True))),
    "MulOptions": (BuiltinOptions.MulOptions, 1, dict(fused_activation_function=(0, "i8", 0))),
    "SoftmaxOptions": (BuiltinOptions.SoftmaxOptions, 1, dict(beta=(0, "f32", 0.0))),
    "ConcatenationOptions": (BuiltinOptions.ConcatenationOptions, 2, dict(
        axis=(0, "i32", 0), fused_activation_function=(1, "i8", 0))),
    "ReducerOptions": (BuiltinOptions.ReducerOptions, 1, dict(keep_dims=(0, "bool", False))),
    "LeakyReluOptions": (BuiltinOptions.LeakyReluOptions, 1, dict(alpha=(0, "f32", 0.0))),
    "StridedSliceOptions": (BuiltinOptions.StridedSliceOptions, 6, dict(
        begin_mask=(0, "i32", 0), end_mask=(1, "i32", 0), ellipsis_mask=(2, "i32", 0),
        new_axis_mask=(3, "i32", 0), shrink_axis_mask=(4, "i32", 0), offset=(5, "bool", False))),
    "SplitOptions": (BuiltinOptions.SplitOptions, 1, dict(num_splits=(0, "i32", 0))),
    "SplitVOptions": (BuiltinOptions.SplitVOptions, 1, dict(num_splits=(0, "i32", 0))),
    "ResizeNearestNeighborOptions": (BuiltinOptions.ResizeNearestNeighborOptions, 2, dict(
        align_corners=(0, "bool", False), half_pixel_centers=(1, "bool", False))),
    "BatchMatMulOptions": (BuiltinOptions.BatchMatMulOptions, 3, dict(
        adj_x=(0, "bool", False), adj_y=(1, "bool", False), asymmetric_quantize_inputs=(2, "bool", False))),
    # Tables without fields: converters write them, so the writer does too.
    "PadOptions": (BuiltinOptions.PadOptions, 0, {}),
    "PadV2Options": (BuiltinOptions.PadV2Options, 0, {}),
    "TransposeOptions": (BuiltinOptions.TransposeOptions, 0, {}),
    "HardSwishOptions": (BuiltinOptions.HardSwishOptions, 0, {}),
    "DequantizeOptions": (BuiltinOptions.DequantizeOptions, 0, {}),
    "QuantizeOptions": (BuiltinOptions.QuantizeOptions, 0, {}),
}

_PREPEND = {
    "i8": flatbuffers.Builder.PrependInt8Slot,
    "i32": flatbuffers.Builder.PrependInt32Slot,
    "u32": flatbuffers.Builder.PrependUint32Slot,
    "u8": flatbuffers.Builder.PrependUint8Slot,
    "f32": flatbuffers.Builder.PrependFloat32Slot,
    "bool": flatbuffers.Builder.PrependBoolSlot,
}


# -- builder helpers -------------------------------------------------------------------------------
def numpy_vector(b: flatbuffers.Builder, values: np.ndarray) -> int:
    """A vector of scalars (little-endian, aligned to the element size)."""
    return b.CreateNumpyVector(np.ascontiguousarray(values).reshape(-1))


def int32_vector(b: flatbuffers.Builder, values: Sequence[int]) -> int:
    return numpy_vector(b, np.asarray(list(values), dtype=np.int32))


def bytes_vector(b: flatbuffers.Builder, data: bytes, alignment: int = BUFFER_ALIGNMENT) -> int:
    """A [ubyte] vector whose first byte is aligned to `alignment` in the finished buffer."""
    b.StartVector(1, len(data), alignment)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    b.vectorNumElems = len(data)
    return b.EndVector()


def offset_vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    """A vector of table or string offsets."""
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def table(b: flatbuffers.Builder, layout: tuple[int, dict[str, int]], scalars: dict[str, tuple[str, object]],
          offsets: dict[str, int | None]) -> int:
    """Write one table. scalars: field -> (kind, value), written unless equal to 0/False (every scalar
    default of the main tables is 0); offsets: field -> offset of an already written object (None: absent).
    """
    numfields, slots = layout
    b.StartObject(numfields)
    for field, off in offsets.items():
        if off is not None:
            b.PrependUOffsetTRelativeSlot(slots[field], off, 0)
    for field, (kind, value) in scalars.items():
        _PREPEND[kind](b, slots[field], value, 0)
    return b.EndObject()


def options_table(b: flatbuffers.Builder, name: str, values: dict[str, object]) -> tuple[int, int]:
    """Write an options table; returns (union tag, offset). Fields left out take their schema default;
    int32-vector fields must be written before (pass their offset)."""
    tag, numfields, fields = OPTIONS[name]
    unknown = set(values) - set(fields)
    assert not unknown, (name, unknown)
    b.StartObject(numfields)
    for field, value in values.items():
        slot, kind, default = fields[field]
        if kind == "f32":
            value = float(np.float32(value))
        elif kind == "bool":
            value = bool(value)
        else:
            value = int(value)
        # Written even when equal to the default, as the converter does for the fields it sets.
        _PREPEND[kind](b, slot, value, None)
    return int(tag), b.EndObject()
