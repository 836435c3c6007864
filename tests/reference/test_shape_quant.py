"""Reference kernels for data movement and (de)quantization.

- Hand-worked cases for every kernel and mode (ties, saturation, negative strides, pad modes, resize flags).
- Per layer against the TFLM interpreter on corpus models: each op is fed TFLM's own input tensors and
  must reproduce TFLM's output tensor exactly on 20 seeded inputs, both for single-op graphs built here
  straight from the flatbuffer and for the ops as microgen's TFLite importer produces them.
- TFLM's golden CSVs for the SEANet int16 PAD / STRIDED_SLICE / QUANTIZE layers.
- Synthetic models written here for what the corpus lacks (float QUANTIZE ties, DEQUANTIZE, int8/int16
  requantization, PADV2, PAD's int8 zero point, resize with every flag combination), run through TFLM.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from microgen import reference
from microgen.errors import UnsupportedOpError
from microgen.graph import DType, Graph, Op, QuantParams, Tensor
from microgen.reference.registry import KERNELS
from microgen.testing.corpus import model_path, require_model, seeded_inputs
from microgen.testing.oracles import tflm_run

N_SAMPLES = 20
F32 = np.float32


# -- helpers ---------------------------------------------------------------------------------------
def run_op(kind, inputs, out_specs, attrs=None, in_quants=None):
    """Run one kernel on a graph holding just that op.

    inputs: arrays; out_specs: (shape, dtype, quant) per output; in_quants: QuantParams per input.
    Returns the list of output arrays (one array if there is a single output).
    """
    tensors, in_names = {}, []
    for i, x in enumerate(inputs):
        x = np.asarray(x)
        q = in_quants[i] if in_quants else None
        tensors[f"in{i}"] = Tensor(f"in{i}", tuple(x.shape), DType.from_numpy(x.dtype), q)
        in_names.append(f"in{i}")
    out_names = []
    for i, (shape, dtype, q) in enumerate(out_specs):
        tensors[f"out{i}"] = Tensor(f"out{i}", tuple(shape), DType(dtype), q)
        out_names.append(f"out{i}")
    op = Op(kind, tuple(in_names), tuple(out_names), dict(attrs or {}), name="t", index=0)
    graph = Graph("t", tensors, (op,), tuple(in_names), tuple(out_names))
    values = reference.run(graph, {n: np.asarray(x) for n, x in zip(in_names, inputs)})
    outs = [values[n] for n in out_names]
    return outs[0] if len(outs) == 1 else outs


def pt(scale, zp=0):
    return QuantParams.per_tensor(scale, zp)


def test_kernels_registered():
    for kind in ("RESHAPE", "TRANSPOSE", "SPLIT", "SLICE", "PAD", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION",
                 "QUANTIZE", "DEQUANTIZE"):
        assert kind in KERNELS, kind


# -- data movement ---------------------------------------------------------------------------------
def test_reshape_row_major():
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    out = run_op("RESHAPE", [x], [((3, 2), "int8", None)])
    np.testing.assert_array_equal(out, [[0, 1], [2, 3], [4, 5]])


def test_transpose():
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)
    np.testing.assert_array_equal(run_op("TRANSPOSE", [x], [((3, 2), "int16", None)], {"perm": (1, 0)}),
                                  [[1, 4], [2, 5], [3, 6]])
    y = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = run_op("TRANSPOSE", [y], [((4, 2, 3), "uint8", None)], {"perm": (2, 0, 1)})
    assert out[3, 1, 2] == y[1, 2, 3] == 23 and out[1, 0, 2] == y[0, 2, 1] == 9


def test_transpose_bad_perm():
    with pytest.raises(UnsupportedOpError, match=r"TRANSPOSE: perm \[0, 3, 1\] is not a permutation of the 3"):
        run_op("TRANSPOSE", [np.zeros((1, 2, 3), np.int8)], [((1, 3, 2), "int8", None)], {"perm": (0, 3, 1)})


def test_split_sizes_and_negative_axis():
    x = np.array([[1, 2, 3, 4, 5, 6]], dtype=np.float32)
    a, b, c = run_op("SPLIT", [x], [((1, 1), "float32", None), ((1, 2), "float32", None),
                                    ((1, 3), "float32", None)], {"axis": -1, "sizes": (1, 2, 3)})
    np.testing.assert_array_equal(a, [[1]])
    np.testing.assert_array_equal(b, [[2, 3]])
    np.testing.assert_array_equal(c, [[4, 5, 6]])


def test_split_bad_sizes():
    x = np.zeros((1, 6), np.int8)
    msg = r'op #0 "t" SPLIT: sizes \[2, 2\] do not cut axis 1 of length 6 into 2 parts'
    with pytest.raises(UnsupportedOpError, match=msg):
        run_op("SPLIT", [x], [((1, 2), "int8", None)] * 2, {"axis": 1, "sizes": (2, 2)})


def test_slice_positive_and_negative_strides():
    x = np.arange(10, dtype=np.int8)
    out = run_op("SLICE", [x], [((3,), "int8", None)], {"begin": (8,), "end": (None,), "strides": (-3,)})
    np.testing.assert_array_equal(out, [8, 5, 2])
    out = run_op("SLICE", [x], [((10,), "int8", None)], {"begin": (None,), "end": (None,), "strides": (-1,)})
    np.testing.assert_array_equal(out, np.arange(9, -1, -1))
    np.testing.assert_array_equal(run_op("SLICE", [x], [((2,), "int8", None)],
                                         {"begin": (-4,), "end": (10,), "strides": (2,)}), [6, 8])


def test_slice_shrunk_axis_and_partial_spec():
    x = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    # x[1, 2:0:-1, :] with axis 0 shrunk away; axis 2 not given is taken whole.
    attrs = {"begin": (1, 2), "end": (2, 0), "strides": (1, -1)}
    out = run_op("SLICE", [x], [((2, 4), "int16", None)], attrs)
    np.testing.assert_array_equal(out, [[20, 21, 22, 23], [16, 17, 18, 19]])


def test_pad_constant_raw_value():
    x = np.array([[1, 2], [3, 4]], dtype=np.int8)
    out = run_op("PAD", [x], [((3, 4), "int8", None)], {"pads": ((1, 0), (0, 2)), "value": -5})
    np.testing.assert_array_equal(out, [[-5, -5, -5, -5], [1, 2, -5, -5], [3, 4, -5, -5]])
    f = run_op("PAD", [x.astype(np.float32)], [((2, 3), "float32", None)],
               {"pads": ((0, 0), (1, 0)), "value": 0.5})
    np.testing.assert_array_equal(f, [[0.5, 1, 2], [0.5, 3, 4]])


@pytest.mark.parametrize("mode,want", [
    ("reflect", [3, 2, 1, 2, 3, 2, 1]),
    ("edge", [1, 1, 1, 2, 3, 3, 3]),
    ("wrap", [2, 3, 1, 2, 3, 1, 2]),
])
def test_pad_modes(mode, want):
    x = np.array([1, 2, 3], dtype=np.int16)
    out = run_op("PAD", [x], [((7,), "int16", None)], {"pads": ((2, 2),), "mode": mode})
    np.testing.assert_array_equal(out, want)


def test_pad_errors():
    x = np.zeros((2,), np.int8)
    with pytest.raises(UnsupportedOpError, match=r"PAD: unknown mode 'symmetric'"):
        run_op("PAD", [x], [((4,), "int8", None)], {"pads": ((1, 1),), "mode": "symmetric"})
    with pytest.raises(UnsupportedOpError, match=r"PAD: negative pads \(\(-1, 1\),\) are not supported"):
        run_op("PAD", [x], [((2,), "int8", None)], {"pads": ((-1, 1),)})


@pytest.mark.parametrize("align,half,cols", [
    (False, False, [0, 0, 1, 1, 2]),   # floor(o * 3/5)
    (True, False, [0, 1, 1, 2, 2]),    # round(o * 2/4), 0.5 and 1.5 away from zero
    (False, True, [0, 0, 1, 2, 2]),    # floor((o + 0.5) * 3/5)
    (True, True, [0, 1, 1, 2, 2]),     # round((o + 0.5) * 2/4)
])
def test_resize_nearest_upsample(align, half, cols):
    x = np.array([10, 20, 30], dtype=np.int8).reshape(1, 1, 3, 1)
    out = run_op("RESIZE_NEAREST_NEIGHBOR", [x], [((1, 2, 5, 1), "int8", None)],
                 {"align_corners": align, "half_pixel_centers": half})
    want = np.array([10, 20, 30])[cols]
    np.testing.assert_array_equal(out[0, :, :, 0], [want, want])


@pytest.mark.parametrize("half,cols", [(False, [0, 2]), (True, [1, 3])])
def test_resize_nearest_downsample(half, cols):
    x = np.arange(5, dtype=np.float32).reshape(1, 1, 5, 1)
    out = run_op("RESIZE_NEAREST_NEIGHBOR", [x], [((1, 1, 2, 1), "float32", None)],
                 {"half_pixel_centers": half})
    np.testing.assert_array_equal(out.ravel(), cols)


def test_concat_same_params_is_a_copy():
    q = pt(0.1, 3)
    a = np.array([[-128, 5]], np.int8)
    b = np.array([[127]], np.int8)
    out = run_op("CONCATENATION", [a, b], [((1, 3), "int8", q)], {"axis": 1}, in_quants=[q, q])
    np.testing.assert_array_equal(out, [[-128, 5, 127]])


def test_concat_requantizes_with_ties_away_from_zero():
    # in scale 0.5 -> out scale 1.0: x * 0.5 rounds half away (1 -> 1, -1 -> -1, 3 -> 2), + out zp 3.
    a = np.array([[1, -1, 3, -3, 0]], np.int8)
    b = np.array([[100, -100]], np.int8)  # scale 4 -> 400 and -400: saturate
    out = run_op("CONCATENATION", [a, b], [((1, 7), "int8", pt(1.0, 3))], {"axis": -1},
                 in_quants=[pt(0.5, 0), pt(4.0, 0)])
    np.testing.assert_array_equal(out, [[4, 2, 5, 1, 3, 127, -128]])
    # An input zero point: (x - 2) * 0.5 computed as x * 0.5 + (-2 * 0.5).
    out = run_op("CONCATENATION", [np.array([[3, 1]], np.int8)], [((1, 2), "int8", pt(1.0, 0))], {"axis": 1},
                 in_quants=[pt(0.5, 2)])
    np.testing.assert_array_equal(out, [[1, -1]])


def test_concat_fused_activation():
    q = pt(0.5, -10)
    x = np.array([[-128, -11, -10, 0, 20]], np.int8)
    out = run_op("CONCATENATION", [x], [((1, 5), "int8", q)], {"axis": 1, "activation": "RELU6"},
                 in_quants=[q])
    np.testing.assert_array_equal(out, [[-10, -10, -10, 0, 2]])   # [zp, zp + 6 / 0.5]
    f = run_op("CONCATENATION", [np.array([-1.0, 7.0], F32), np.array([0.5], F32)], [((3,), "float32", None)],
               {"axis": 0, "activation": "RELU6"})
    np.testing.assert_array_equal(f, [0, 6, 0.5])


# -- quantize / dequantize -------------------------------------------------------------------------
def test_quantize_ties_half_away_vs_half_even():
    x = np.array([0.25, 0.75, -0.25, -0.75, 1.25, 0.0], F32)   # / 0.5 = 0.5, 1.5, -0.5, -1.5, 2.5, 0
    away = run_op("QUANTIZE", [x], [((6,), "int8", pt(0.5))], {"rounding": "half_away"})
    even = run_op("QUANTIZE", [x], [((6,), "int8", pt(0.5))], {"rounding": "half_even"})
    np.testing.assert_array_equal(away, [1, 2, -1, -2, 3, 0])
    np.testing.assert_array_equal(even, [0, 2, 0, -2, 2, 0])


def test_quantize_divides_in_float32():
    # float32(0.25) / float32(0.1) is exactly 2.5 in float32 (2.49999996 in float64); 0.35 / 0.1 -> 3.5.
    x = np.array([0.25, 0.35], F32)
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((2,), "int8", pt(F32(0.1)))]), [3, 4])
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((2,), "int8", pt(F32(0.1)))],
                                         {"rounding": "half_even"}), [2, 4])


def test_quantize_round_is_exact_just_below_half():
    # floor(x + 0.5) would give 1 here: float32 0.49999997 + 0.5 rounds up to 1.0.
    x = np.array([np.nextafter(F32(0.5), F32(0)), -np.nextafter(F32(0.5), F32(0))], F32)
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((2,), "int16", pt(1.0))]), [0, 0])


def test_quantize_saturates_and_zero_points():
    x = np.array([1000.0, -1000.0, 0.0, 1.0], F32)
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((4,), "int8", pt(0.5, -3))]), [127, -128, -3, -1])
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((4,), "uint8", pt(0.5, 128))]),
                                  [255, 0, 128, 130])
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((4,), "int16", pt(0.01))],
                                         {"rounding": "half_even"}), [32767, -32768, 0, 100])


def test_quantize_per_axis():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], F32)
    q = QuantParams((1.0, 0.5), (0, 10), axis=0)
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((2, 3), "int8", q)], {"rounding": "half_even"}),
                                  [[1, 2, 3], [12, 14, 16]])


def test_requantize_int8_to_uint8_is_a_128_shift():
    x = np.array([-128, -1, 0, 127], np.int8)
    out = run_op("QUANTIZE", [x], [((4,), "uint8", pt(0.25, 127))], in_quants=[pt(0.25, -1)])
    np.testing.assert_array_equal(out, (x.view(np.uint8) ^ 0x80))
    back = run_op("QUANTIZE", [out], [((4,), "int8", pt(0.25, -1))], in_quants=[pt(0.25, 127)])
    np.testing.assert_array_equal(back, x)


def test_requantize_tflm_rounding_vs_half_even():
    # Ratio 0.5: TFLM's double rounding takes -1.5 to -1 and -0.5 to 0 (SRDHM's nudge), 0.5 to 1, 1.5 to 2.
    x = np.array([-3, -1, 1, 3, 127], np.int8)
    tflm = run_op("QUANTIZE", [x], [((5,), "int8", pt(2.0))], in_quants=[pt(1.0)])
    np.testing.assert_array_equal(tflm, [-1, 0, 1, 2, 64])
    onnx = run_op("QUANTIZE", [x], [((5,), "int8", pt(2.0))], {"rounding": "half_even"}, in_quants=[pt(1.0)])
    np.testing.assert_array_equal(onnx, [-2, 0, 0, 2, 64])


def test_requantize_int32_to_int16_and_widening():
    x = np.array([1 << 20, -(1 << 20), 3 << 24, 0], np.int32)
    out = run_op("QUANTIZE", [x], [((4,), "int16", pt(2.0 ** -8))], in_quants=[pt(2.0 ** -16)])
    np.testing.assert_array_equal(out, [4096, -4096, 32767, 0])
    # Ratio 2^-16 (multiplier 2^30, shift -15): the final RoundingDivideByPOT rounds ties away from zero.
    ties = np.array([-3 << 15, 3 << 15, -(1 << 15), 1 << 15], np.int32)
    out = run_op("QUANTIZE", [ties], [((4,), "int16", pt(1.0))], in_quants=[pt(2.0 ** -16)])
    np.testing.assert_array_equal(out, [-2, 2, -1, 1])
    y = np.array([-128, 5, 127], np.int8)
    wide = run_op("QUANTIZE", [y], [((3,), "int16", pt(0.5 / 64))], in_quants=[pt(0.5, 3)])
    np.testing.assert_array_equal(wide, (y.astype(np.int64) - 3) * 64)


def test_dequantize():
    q = np.array([-128, 0, 127], np.int8)
    out = run_op("DEQUANTIZE", [q], [((3,), "float32", None)], in_quants=[pt(0.5, -1)])
    np.testing.assert_array_equal(out, np.array([-63.5, 0.5, 64.0], F32))
    assert out.dtype == np.float32
    s = F32(0.1)
    out = run_op("DEQUANTIZE", [np.array([3, -7], np.int16)], [((2,), "float32", None)], in_quants=[pt(s)])
    np.testing.assert_array_equal(out, [s * F32(3), s * F32(-7)])   # float32 product, no float64 detour


def test_dequantize_per_axis():
    q = np.array([[1, 2], [1, 2], [1, 2]], np.uint8)
    quant = QuantParams((0.5, 2.0), (1, 0), axis=1)
    out = run_op("DEQUANTIZE", [q], [((3, 2), "float32", None)], in_quants=[quant])
    np.testing.assert_array_equal(out, [[0.0, 4.0]] * 3)


def test_quant_errors():
    msg = r"DEQUANTIZE: the input 'in0' \(int8\[2\]\) is not a quantized integer tensor"
    with pytest.raises(UnsupportedOpError, match=msg):
        run_op("DEQUANTIZE", [np.zeros(2, np.int8)], [((2,), "float32", None)])
    with pytest.raises(UnsupportedOpError, match=r"QUANTIZE: unknown rounding 'up'"):
        run_op("QUANTIZE", [np.zeros(2, F32)], [((2,), "int8", pt(1.0))], {"rounding": "up"})


# -- per layer against TFLM ------------------------------------------------------------------------
# model -> op kinds whose every instance is checked
LAYER_MODELS = {
    "extra/split_slice_transpose_conv1d_int8.tflite": {"SPLIT", "SLICE", "TRANSPOSE", "CONCATENATION",
                                                       "RESHAPE"},
    "extra/add_mul_concat_int8.tflite": {"CONCATENATION"},
    "extra/activations_fc_int8.tflite": {"CONCATENATION"},
    "extra/conv_dw_fc_uint8_io.tflite": {"QUANTIZE", "RESHAPE"},
    "extra/pad_conv_mean_fc_int8.tflite": {"PAD"},
    "extra/transpose_conv_upsample_int8.tflite": {"RESIZE_NEAREST_NEIGHBOR"},
    "tflm/seanet_int16/pad0.tflite": {"PAD"},
    "tflm/seanet_int16/strided_slice0.tflite": {"SLICE"},
    "tflm/seanet_int16/quantize0.tflite": {"QUANTIZE"},
}
_TFL_DTYPES = {0: DType.FLOAT32, 2: DType.INT32, 3: DType.UINT8, 7: DType.INT16, 9: DType.INT8}
_TFL_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def _ids(models):
    return [m.split("/")[-1].removesuffix(".tflite") for m in models]


def _hand_built_layers(path, kinds):
    """One single-op Graph per op of `kinds` in the .tflite file, built straight from the flatbuffer
    (independent of the importer), with tensors named t<tflite index>. Returns [(graph, {name: index})]."""
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}

    def tensor(i):
        t, q = sg.Tensors(i), sg.Tensors(i).Quantization()
        quant = None
        if q is not None and q.ScaleLength():
            scales = tuple(float(s) for s in q.ScaleAsNumpy())
            zps = tuple(int(z) for z in q.ZeroPointAsNumpy())
            quant = QuantParams(scales, zps, q.QuantizedDimension() if len(scales) > 1 else None)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        return Tensor(f"t{i}", shape, _TFL_DTYPES[t.Type()], quant)

    def const(i):
        t = tensor(i)
        raw = model.Buffers(sg.Tensors(i).Buffer()).DataAsNumpy().tobytes()
        return np.frombuffer(raw, t.dtype.np).reshape(t.shape)

    def options(op, cls):
        o, table = cls(), op.BuiltinOptions()
        o.Init(table.Bytes, table.Pos)
        return o

    layers = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins, outs = [int(i) for i in op.InputsAsNumpy()], [int(i) for i in op.OutputsAsNumpy()]
        kind, data, attrs = name, [ins[0]], {}
        if name == "TRANSPOSE":
            attrs["perm"] = tuple(int(p) for p in const(ins[1]))
        elif name == "SPLIT":
            data = [ins[1]]
            axis = int(const(ins[0]))
            attrs = {"axis": axis, "sizes": (tensor(ins[1]).shape[axis] // len(outs),) * len(outs)}
        elif name == "STRIDED_SLICE":
            from tflite.StridedSliceOptions import StridedSliceOptions
            o = options(op, StridedSliceOptions)
            assert o.EllipsisMask() == o.NewAxisMask() == o.ShrinkAxisMask() == 0
            kind = "SLICE"
            begin, end, strides = (const(i) for i in ins[1:4])
            attrs = {"begin": tuple(None if o.BeginMask() >> d & 1 else int(b) for d, b in enumerate(begin)),
                     "end": tuple(None if o.EndMask() >> d & 1 else int(e) for d, e in enumerate(end)),
                     "strides": tuple(int(s) for s in strides)}
        elif name == "CONCATENATION":
            from tflite.ConcatenationOptions import ConcatenationOptions
            o = options(op, ConcatenationOptions)
            data = ins
            attrs = {"axis": o.Axis(), "activation": _TFL_ACTIVATIONS[o.FusedActivationFunction()]}
        elif name in ("PAD", "PADV2"):
            kind = "PAD"
            out_t = tensor(outs[0])
            value = (const(ins[2]).item() if name == "PADV2"
                     else out_t.quant.zp if out_t.dtype is DType.INT8 else 0)   # what TFLM pads with
            pads = tuple(tuple(int(v) for v in p) for p in const(ins[1]).reshape(-1, 2))
            attrs = {"pads": pads, "value": value}
        elif name == "RESIZE_NEAREST_NEIGHBOR":
            from tflite.ResizeNearestNeighborOptions import ResizeNearestNeighborOptions
            o = options(op, ResizeNearestNeighborOptions)
            attrs = {"align_corners": bool(o.AlignCorners()),
                     "half_pixel_centers": bool(o.HalfPixelCenters())}
        if kind not in kinds:
            continue
        tensors = {t.name: t for t in map(tensor, data + outs)}
        in_names, out_names = tuple(f"t{i}" for i in data), tuple(f"t{i}" for i in outs)
        ir_op = Op(kind, in_names, out_names, attrs, name=name, index=k)
        graph = Graph(path.stem, tensors, (ir_op,), in_names, out_names)
        layers.append((graph, {f"t{i}": i for i in data + outs}))
    return layers


def _imported_layers(path, kinds):
    """The same from microgen's TFLite importer: each op of `kinds` as a one-op graph."""
    from microgen import importers

    graph = importers.load(path)
    index = graph.metadata["tflite_tensor_index"]
    layers = []
    for op in graph.ops:
        if op.kind in kinds:
            data = tuple(n for n in op.inputs if n and not graph.tensors[n].is_const)
            layers.append((graph.with_ops([op], inputs=data, outputs=op.outputs), index))
    return layers


def _importer_available():
    try:
        from microgen.importers.from_tflite import load_tflite  # noqa: F401
    except ImportError:
        return False
    return True


def _model_inputs(path):
    """N_SAMPLES seeded inputs per model input, stacked [samples, *shape]."""
    import tflite

    sg = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    inputs = []
    for k, i in enumerate(sg.InputsAsNumpy()):
        t = sg.Tensors(int(i))
        q = t.Quantization()
        zp = int(q.ZeroPointAsNumpy()[0]) if q is not None and q.ZeroPointLength() else 0
        spec = Tensor("x", tuple(int(d) for d in t.ShapeAsNumpy()), _TFL_DTYPES[t.Type()], pt(1.0, zp))
        x = seeded_inputs(spec, N_SAMPLES, seed=4321 + k)
        if spec.dtype is DType.INT32:
            # int32 accumulators (quantize0): spread them so requantization sees real magnitudes.
            x = x.astype(np.int64) * 4099
        inputs.append(x.astype(spec.dtype.np))
    return inputs


def _parallel(fn, items):
    """fn over items in threads: each TFLM run is a child process, so they overlap."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(items, pool.map(fn, items)))


@pytest.fixture(scope="module")
def model_oracles():
    """rel -> TFLM result with every tensor, for each corpus model that is present."""
    present = [rel for rel in LAYER_MODELS if model_path(rel).exists()]
    return _parallel(lambda rel: tflm_run(str(model_path(rel)), _model_inputs(model_path(rel)),
                                          preserve_all=True), present)


def _check_layers(rel, oracle, layers):
    assert layers, f"{rel}: no layers of {sorted(LAYER_MODELS[rel])} found"
    found = set()
    for graph, index in layers:
        op = graph.ops[0]
        found.add(op.kind)
        for s in range(N_SAMPLES):
            feeds = {n: oracle.tensors[index[n]][s].reshape(graph.tensors[n].shape) for n in graph.inputs}
            got = reference.run(graph, feeds)
            for n in op.outputs:
                want = oracle.tensors[index[n]][s].reshape(graph.tensors[n].shape)
                bad = np.count_nonzero(got[n] != want)
                assert bad == 0, f"{rel} sample {s}: {op.where()} {op.kind} {n!r}: {bad}/{want.size} differ"
    assert found == LAYER_MODELS[rel], (rel, found)


@pytest.mark.parametrize("rel", list(LAYER_MODELS), ids=_ids(LAYER_MODELS))
def test_layers_bit_exact_with_tflm_hand_built(rel, model_oracles):
    path = require_model(rel)
    _check_layers(rel, model_oracles[rel], _hand_built_layers(path, LAYER_MODELS[rel]))


@pytest.mark.parametrize("rel", list(LAYER_MODELS), ids=_ids(LAYER_MODELS))
def test_layers_bit_exact_with_tflm_imported(rel, model_oracles):
    path = require_model(rel)
    if not _importer_available():
        pytest.skip("the TFLite importer (microgen/importers/from_tflite) is not there yet")
    _check_layers(rel, model_oracles[rel], _imported_layers(path, LAYER_MODELS[rel]))


@pytest.mark.parametrize("name", ["pad0", "strided_slice0", "quantize0"])
def test_seanet_golden_csv(name):
    """TFLM's own golden outputs for the int16 SEANet PAD, STRIDED_SLICE and QUANTIZE layers."""
    path = require_model(f"tflm/seanet_int16/{name}.tflite")
    (graph, _), = _hand_built_layers(path, {"PAD", "SLICE", "QUANTIZE"})
    (csv_in,) = sorted(path.parent.glob(f"{name}_input*_*.csv"))
    t_in, t_out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    x = np.loadtxt(csv_in, delimiter=",", dtype=np.int64).astype(t_in.dtype.np).reshape(t_in.shape)
    want = np.loadtxt(path.parent / f"{name}_golden_int16.csv", delimiter=",", dtype=np.int64)
    got = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_array_equal(got, want.reshape(t_out.shape))


# -- synthetic models: the cases the corpus lacks, checked against TFLM -------------------------
def _vector(b, values, dtype):
    return b.CreateNumpyVector(np.asarray(values, dtype))


def _offsets(b, offs):
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _tflite_model(tensors, ops):
    """A minimal .tflite file. tensors: dicts with shape, type (TFLite TensorType), optional scale/zp
    and data (a constant). ops: (BuiltinOperator code, inputs, outputs, options) with options None or
    (BuiltinOptions type, [(slot, "bool" | "int32", value)]). The graph inputs are the non-constant op
    inputs, the graph outputs every op output. Field slots follow the TFLite schema (checked against the
    `tflite` package's readers)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)
    buffers, t_buffer = [], []
    blobs = [np.ascontiguousarray(t["data"]).tobytes() for t in tensors if t.get("data") is not None]
    for blob in [b""] + blobs:
        if blob:
            b.StartVector(1, len(blob), 16)   # 16-byte aligned constant data
            b.head -= len(blob)
            b.Bytes[b.head:b.head + len(blob)] = blob
            vec = b.EndVector()
        b.StartObject(3)
        if blob:
            b.PrependUOffsetTRelativeSlot(0, vec, 0)
        buffers.append(b.EndObject())
    for t in tensors:
        t_buffer.append(max(t_buffer, default=0) + 1 if t.get("data") is not None else 0)
    t_offs = []
    for i, t in enumerate(tensors):
        name, shape, quant = b.CreateString(f"t{i}"), _vector(b, t["shape"], np.int32), None
        if "scale" in t:
            scale, zp = _vector(b, [t["scale"]], np.float32), _vector(b, [t["zp"]], np.int64)
            b.StartObject(7)
            b.PrependUOffsetTRelativeSlot(2, scale, 0)
            b.PrependUOffsetTRelativeSlot(3, zp, 0)
            quant = b.EndObject()
        b.StartObject(10)
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, t["type"], 0)
        b.PrependUint32Slot(2, t_buffer[i], 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        if quant is not None:
            b.PrependUOffsetTRelativeSlot(4, quant, 0)
        t_offs.append(b.EndObject())
    codes = sorted({op[0] for op in ops})
    op_offs = []
    for code, op_in, op_out, options in ops:
        if options:
            b.StartObject(2)
            for slot, kind, value in options[1]:
                (b.PrependBoolSlot if kind == "bool" else b.PrependInt32Slot)(slot, value, 0)
            opts = b.EndObject()
        ins, outs = _vector(b, op_in, np.int32), _vector(b, op_out, np.int32)
        b.StartObject(14)
        b.PrependUint32Slot(0, codes.index(code), 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        if options:
            b.PrependUint8Slot(3, options[0], 0)
            b.PrependUOffsetTRelativeSlot(4, opts, 0)
        op_offs.append(b.EndObject())
    tensors_v = _offsets(b, t_offs)
    g_in = _vector(b, [i for op in ops for i in op[1] if tensors[i].get("data") is None], np.int32)
    g_out = _vector(b, [i for op in ops for i in op[2]], np.int32)
    ops_v = _offsets(b, op_offs)
    b.StartObject(6)
    for slot, off in enumerate((tensors_v, g_in, g_out, ops_v)):
        b.PrependUOffsetTRelativeSlot(slot, off, 0)
    subgraph = b.EndObject()
    code_offs = []
    for code in codes:
        b.StartObject(4)
        b.PrependInt8Slot(0, min(code, 127), 0)
        b.PrependInt32Slot(2, 1, 0)
        b.PrependInt32Slot(3, code, 0)
        code_offs.append(b.EndObject())
    codes_v, subgraphs_v, buffers_v = _offsets(b, code_offs), _offsets(b, [subgraph]), _offsets(b, buffers)
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_v, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_v, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_v, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


# TFLite codes: TensorType, BuiltinOperator, BuiltinOptions
FLOAT32, INT32, INT16, INT8 = 0, 2, 7, 9
OP_CONCATENATION, OP_DEQUANTIZE, OP_PAD, OP_PADV2, OP_RESIZE_NN, OP_QUANTIZE = 2, 6, 34, 60, 97, 114
OPT_CONCATENATION, OPT_RESIZE_NN = 10, 74


def _float_ties(scale, n, rng):
    """float32 inputs around the rounding ties of x / scale (and their float32 neighbours), plus noise."""
    ties = ((np.arange(-n, n) + 0.5) * np.float64(scale)).astype(F32)
    near = np.concatenate([ties, np.nextafter(ties, F32(np.inf)), np.nextafter(ties, F32(-np.inf))])
    noise = rng.normal(0, 200 * scale, 3 * n).astype(F32)
    # Saturating values stay within int32 after the division: past it TFLM's float->int32 cast is undefined
    # (x86 gives INT32_MIN, so -1e10 ends as 127 after the zero point wraps); microgen saturates.
    return np.concatenate([near, noise, [F32(1e5), F32(-1e5)]]).astype(F32)


def _t(shape, dtype, scale=None, zp=0, data=None):
    """A tensor spec for _tflite_model."""
    t = dict(shape=list(shape), type=dtype, data=data)
    if scale is not None:
        t.update(scale=float(F32(scale)), zp=zp)
    return t


def _synthetic_cases():
    """case name -> (op code, tensors, op inputs, op outputs, options, input array)."""
    rng = np.random.default_rng(77)
    cases = {}
    for name, dtype, scale, zp, n in (("int8", INT8, 0.1, -3, 160), ("int16", INT16, 0.0003, 0, 400)):
        x = _float_ties(float(F32(scale)), n, rng)
        tensors = [_t([1, x.size], FLOAT32), _t([1, x.size], dtype, scale, zp)]
        cases[f"quantize_f32_{name}"] = (OP_QUANTIZE, tensors, [0], [1], None, x)
    q8 = np.arange(-128, 128, dtype=np.int8)
    q16 = rng.integers(-32768, 32768, 512).astype(np.int16)
    cases["dequantize_int8"] = (OP_DEQUANTIZE, [_t([1, 256], INT8, 0.0123, 5), _t([1, 256], FLOAT32)],
                                [0], [1], None, q8)
    cases["dequantize_int16"] = (OP_DEQUANTIZE, [_t([1, 512], INT16, 3.1e-4), _t([1, 512], FLOAT32)],
                                 [0], [1], None, q16)
    for name, x, (in_type, s_in, zp_in), (out_type, s_out, zp_out) in (
            ("int8_int8", q8, (INT8, 0.02, 7), (INT8, 0.04, -9)),
            ("int8_int16", q8, (INT8, 0.0173, -20), (INT16, 0.00021, 0)),
            ("int16_int8", q16, (INT16, 0.0007, 0), (INT8, 0.09, 11))):
        cases[f"requantize_{name}"] = (OP_QUANTIZE, [_t(x.shape, in_type, s_in, zp_in),
                                                     _t(x.shape, out_type, s_out, zp_out)], [0], [1], None, x)
    img = rng.integers(-128, 128, (1, 5, 7, 3)).astype(np.int8)
    pads = _t([4, 2], INT32, data=np.array([[0, 0], [1, 2], [3, 0], [0, 1]], np.int32))
    x_t, out_t = _t(img.shape, INT8, 0.1, -3), _t([1, 8, 10, 4], INT8, 0.1, -3)
    cases["padv2_int8"] = (OP_PADV2, [x_t, pads, _t([1], INT8, 0.1, -3, np.array([7], np.int8)), out_t],
                           [0, 1, 2], [3], None, img)
    cases["pad_int8_zero_point"] = (OP_PAD, [x_t, pads, out_t], [0, 1], [2], None, img)
    # 5x7 -> 8x3 grows H and shrinks W; 13x17 grows both by non-integer ratios.
    for ac, hp, out_hw in [(False, False, (8, 3)), (True, False, (8, 3)), (False, True, (8, 3)),
                           (True, True, (8, 3)), (True, False, (13, 17)), (False, True, (13, 17))]:
        size = _t([2], INT32, data=np.array(out_hw, np.int32))
        cases[f"resize_{out_hw[0]}x{out_hw[1]}_ac{int(ac)}_hp{int(hp)}"] = (
            OP_RESIZE_NN, [_t(img.shape, INT8, 0.1), size, _t([1, *out_hw, 3], INT8, 0.1)],
            [0, 1], [2], (OPT_RESIZE_NN, [(0, "bool", ac), (1, "bool", hp)]), img)
    return cases


SYNTHETIC = _synthetic_cases()


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory):
    """All SYNTHETIC cases as independent ops of one model (one TFLM run): (path, {case: TFLM output})."""
    tensors, ops, inputs = [], [], []
    for op_code, case_tensors, op_in, op_out, options, x in SYNTHETIC.values():
        base = len(tensors)
        tensors += case_tensors
        ops.append((op_code, [base + i for i in op_in], [base + i for i in op_out], options))
        inputs.append(x.reshape(1, *case_tensors[0]["shape"]))
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.tflite"
    path.write_bytes(_tflite_model(tensors, ops))
    outputs = tflm_run(str(path), inputs).outputs
    return path, {case: out[0] for case, out in zip(SYNTHETIC, outputs)}


@pytest.mark.parametrize("case", list(SYNTHETIC))
def test_synthetic_op_bit_exact_with_tflm(case, synthetic_model):
    path, wants = synthetic_model
    layers = _hand_built_layers(path, {"QUANTIZE", "DEQUANTIZE", "PAD", "RESIZE_NEAREST_NEIGHBOR"})
    graph, _ = layers[list(SYNTHETIC).index(case)]
    x, shape = SYNTHETIC[case][-1], SYNTHETIC[case][1][0]["shape"]
    got = reference.run(graph, {graph.inputs[0]: x.reshape(shape)})[graph.outputs[0]]
    assert got.dtype == wants[case].dtype
    np.testing.assert_array_equal(got, wants[case].reshape(got.shape))


def test_tflm_concatenation_with_different_params(tmp_path):
    """Documents the TFLM facts behind CONCATENATION's docstring: TFLM refuses int8 inputs whose params
    differ from the output's and copies int16 raw values whatever their scales; the reference kernel
    requantizes both (converters never emit such models)."""
    from microgen.testing.oracles import OracleError

    for dtype, code in ((np.int8, INT8), (np.int16, INT16)):
        a = np.array([[10, -20, 31]], dtype)
        zp = 4 if dtype == np.int8 else 0
        tensors = [_t([1, 3], code, 0.5), _t([1, 3], code, 0.25, zp), _t([1, 6], code, 1.0)]
        path = tmp_path / f"concat_{code}.tflite"
        path.write_bytes(_tflite_model(tensors, [(OP_CONCATENATION, [0, 1], [2],
                                                  (OPT_CONCATENATION, [(0, "int32", 1)]))]))
        if dtype == np.int8:
            with pytest.raises(OracleError, match=r"concatenation\.cc.*params\.scale"):
                tflm_run(str(path), [a[None], a[None]])
        else:
            tflm = tflm_run(str(path), [a[None], a[None]]).outputs[0][0]
            np.testing.assert_array_equal(tflm, [[10, -20, 31, 10, -20, 31]])
        (graph, _), = _hand_built_layers(path, {"CONCATENATION"})
        got = reference.run(graph, dict(zip(graph.inputs, (a, a))))[graph.outputs[0]]
        # 31 * 0.5 = 15.5 -> 16 (ties away from zero); (31 - zp) * 0.25
        want = [[5, -10, 16, 2, -6, 7]] if dtype == np.int8 else [[5, -10, 16, 3, -5, 8]]
        np.testing.assert_array_equal(got, want)
