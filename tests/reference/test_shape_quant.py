"""Reference kernels for data movement and (de)quantization: hand-worked cases, then per-layer exactness
against the TFLM interpreter on real models (each op fed the oracle's own input tensors) and TFLM's golden
CSVs for the SEANet int16 layers."""

import numpy as np
import pytest

from microgen import reference
from microgen.errors import UnsupportedOpError
from microgen.graph import DType, Graph, Op, QuantParams, Tensor
from microgen.reference.registry import KERNELS
from microgen.testing.corpus import require_model, seeded_inputs
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


def test_split_sizes_and_negative_axis():
    x = np.array([[1, 2, 3, 4, 5, 6]], dtype=np.float32)
    a, b, c = run_op("SPLIT", [x], [((1, 1), "float32", None), ((1, 2), "float32", None),
                                    ((1, 3), "float32", None)], {"axis": -1, "sizes": (1, 2, 3)})
    np.testing.assert_array_equal(a, [[1]])
    np.testing.assert_array_equal(b, [[2, 3]])
    np.testing.assert_array_equal(c, [[4, 5, 6]])


def test_split_bad_sizes():
    x = np.zeros((1, 6), np.int8)
    with pytest.raises(UnsupportedOpError, match=r'op #0 "t" SPLIT: sizes \[2, 2\] do not cut axis 1 of length 6'):
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
    out = run_op("SLICE", [x], [((2, 4), "int16", None)], {"begin": (1, 2), "end": (2, 0), "strides": (1, -1)})
    np.testing.assert_array_equal(out, [[20, 21, 22, 23], [16, 17, 18, 19]])


def test_pad_constant_raw_value():
    x = np.array([[1, 2], [3, 4]], dtype=np.int8)
    out = run_op("PAD", [x], [((3, 4), "int8", None)], {"pads": ((1, 0), (0, 2)), "value": -5})
    np.testing.assert_array_equal(out, [[-5, -5, -5, -5], [1, 2, -5, -5], [3, 4, -5, -5]])
    f = run_op("PAD", [x.astype(np.float32)], [((2, 3), "float32", None)], {"pads": ((0, 0), (1, 0)), "value": 0.5})
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
    out = run_op("RESIZE_NEAREST_NEIGHBOR", [x], [((1, 1, 2, 1), "float32", None)], {"half_pixel_centers": half})
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
    out = run_op("CONCATENATION", [x], [((1, 5), "int8", q)], {"axis": 1, "activation": "RELU6"}, in_quants=[q])
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
    np.testing.assert_array_equal(run_op("QUANTIZE", [x], [((4,), "uint8", pt(0.5, 128))]), [255, 0, 128, 130])
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
    with pytest.raises(UnsupportedOpError, match=r"DEQUANTIZE: the input 'in0' \(int8\[2\]\) is not a quantized"):
        run_op("DEQUANTIZE", [np.zeros(2, np.int8)], [((2,), "float32", None)])
    with pytest.raises(UnsupportedOpError, match=r"QUANTIZE: unknown rounding 'up'"):
        run_op("QUANTIZE", [np.zeros(2, F32)], [((2,), "int8", pt(1.0))], {"rounding": "up"})
