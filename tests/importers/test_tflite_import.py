"""The TFLite importer: real corpus models, unsupported models, corrupt files, index arithmetic (padding,
strided slices), hybrid dequantization, and small hand-built models for the individual converters."""

import importlib
import pickle
import random
import subprocess
import sys
import textwrap
import time
from collections import Counter

import flatbuffers
import numpy as np
import pytest
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

from microgen import importers
from microgen.errors import MicrogenError, ModelFormatError, UnsupportedDTypeError, UnsupportedOpError
from microgen.graph import DType, QuantParams, Tensor
from microgen.importers.from_tflite import geometry, load_tflite
from microgen.importers.from_tflite.geometry import SAME, VALID
from microgen.importers.from_tflite.tensors import dequantize
from microgen.testing.corpus import require_model

# -- corpus ---------------------------------------------------------------------------------------------
MLPERF = {"ad01_fp32": {"FULLY_CONNECTED": 10}, "ad01_int8": {"FULLY_CONNECTED": 10}}
HEAD = {"AVERAGE_POOL": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}  # pool, flatten, dense, softmax
KWS = {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, **HEAD}
RESNET = {"CONV_2D": 9, "ADD": 3, **HEAD}
VWW = {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, **HEAD}
CNN = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "MAX_POOL": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
CONV_DW_FC = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "AVERAGE_POOL": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1}
EXPECTED_OPS = {
    "mlperf_tiny/ad01_fp32.tflite": {"FULLY_CONNECTED": 10},
    "mlperf_tiny/ad01_int8.tflite": {"FULLY_CONNECTED": 10},
    "mlperf_tiny/kws_ref_model.tflite": KWS,
    "mlperf_tiny/kws_ref_model_float32.tflite": KWS,
    "mlperf_tiny/pretrainedResnet.tflite": RESNET,
    "mlperf_tiny/pretrainedResnet_quant.tflite": RESNET,
    "mlperf_tiny/vww_96_float.tflite": VWW,
    "mlperf_tiny/vww_96_int8.tflite": VWW,
    "tflm/hello_world_float.tflite": {"FULLY_CONNECTED": 3},
    "tflm/hello_world_int8.tflite": {"FULLY_CONNECTED": 3},
    "tflm/micro_speech_quantized.tflite": {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1,
                                           "SOFTMAX": 1},
    "tflm/simple_add_model.tflite": {"ADD": 1},
    "tflm/seanet_int16/add0.tflite": {"ADD": 1},
    "tflm/seanet_int16/conv0.tflite": {"CONV_2D": 1},
    "tflm/seanet_int16/leaky_relu0.tflite": {"LEAKY_RELU": 1},
    "tflm/seanet_int16/pad0.tflite": {"PAD": 1},
    "tflm/seanet_int16/quantize0.tflite": {"QUANTIZE": 1},
    "tflm/seanet_int16/strided_slice0.tflite": {"SLICE": 1},
    "tflm/seanet_int16/sub0.tflite": {"SUB": 1},
    "tflm/seanet_int16/transpose_conv4.tflite": {"TRANSPOSE_CONV": 1},
    "extra/activations_fc_int8.tflite": {"FULLY_CONNECTED": 1, "LOGISTIC": 1, "TANH": 1, "SUB": 1,
                                         "HARD_SWISH": 1, "CONCATENATION": 1},
    "extra/add_mul_concat_int8.tflite": {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "ADD": 1, "MUL": 1,
                                         "CONCATENATION": 1, "MAX_POOL": 1},
    "extra/conv_dw_fc_int16x8.tflite": CONV_DW_FC,
    "extra/conv_dw_fc_per_tensor_int8.tflite": CONV_DW_FC,
    "extra/conv_dw_fc_uint8_io.tflite": {**CONV_DW_FC, "QUANTIZE": 2},
    "extra/pad_conv_mean_fc_int8.tflite": {"PAD": 1, "CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1,
                                           "SOFTMAX": 1},
    "extra/split_slice_transpose_conv1d_int8.tflite": {"RESHAPE": 4, "CONV_2D": 1, "SPLIT": 1, "SLICE": 1,
                                                       "TRANSPOSE": 1, "CONCATENATION": 1,
                                                       "FULLY_CONNECTED": 1},
    "extra/transpose_conv_upsample_int8.tflite": {"TRANSPOSE_CONV": 1, "LEAKY_RELU": 1, "CONV_2D": 1,
                                                  "RESIZE_NEAREST_NEIGHBOR": 1},
    "digits/digits_cnn_float.tflite": CNN,
    "digits/digits_cnn_int8_tfliteconv.tflite": CNN,
    "digits/digits_mlp_float.tflite": {"FULLY_CONNECTED": 2, "SOFTMAX": 1},
    "digits/digits_mlp_int8_tfliteconv.tflite": {"FULLY_CONNECTED": 2, "SOFTMAX": 1},
}
MODELS = sorted(EXPECTED_OPS)
HYBRID = "mlperf_tiny/kws_ref_model_float32.tflite"  # TFLM refuses it: compared with the flatbuffer only
TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if isinstance(v, int)}


def _ids(models):
    return [m.split("/")[-1].removesuffix(".tflite") for m in models]


def flatbuffer_io(path):
    """(inputs, outputs) of subgraph 0 read with the plain tflite package: one (index, shape, type name,
    scales, zero points) record per tensor -- an independent reading path from the importer's."""
    model = tflite.Model.GetRootAs(path.read_bytes(), 0)
    sg = model.Subgraphs(0)

    def record(i):
        t = sg.Tensors(i)
        q = t.Quantization()
        scales = [float(s) for s in q.ScaleAsNumpy()] if q is not None and not q.ScaleIsNone() else []
        zps = [int(z) for z in q.ZeroPointAsNumpy()] if q is not None and not q.ZeroPointIsNone() else []
        return i, tuple(int(d) for d in t.ShapeAsNumpy()), TYPE_NAMES[t.Type()].lower(), scales, zps

    return ([record(int(i)) for i in sg.InputsAsNumpy()], [record(int(i)) for i in sg.OutputsAsNumpy()])


@pytest.mark.parametrize("rel", MODELS, ids=_ids(MODELS))
def test_corpus_model_imports(rel):
    path = require_model(rel)
    graph = importers.load(path)  # runs graph.verify
    assert graph.source_format == "tflite"
    assert graph.name == path.stem
    assert Counter(op.kind for op in graph.ops) == Counter(EXPECTED_OPS[rel])
    assert all(op.index >= 0 and op.name for op in graph.ops)
    index = graph.metadata["tflite_tensor_index"]
    for names, records in zip((graph.inputs, graph.outputs), flatbuffer_io(path)):
        assert len(names) == len(records)
        for name, (i, shape, dtype, scales, zps) in zip(names, records):
            t = graph.tensors[name]
            assert index[name] == i
            assert (t.shape, t.dtype.value) == (shape, dtype)
            if dtype == "float32":
                assert t.quant is None
            elif scales:
                assert t.quant == QuantParams(tuple(scales), tuple(zps or [0]), None)
            else:
                assert t.quant is None


_TFLM_DETAILS = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    import tflite
    from tflite_micro.python.tflite_micro import runtime
    out = {}
    for path in sys.argv[2:]:
        sg = tflite.Model.GetRootAs(open(path, "rb").read(), 0).Subgraphs(0)
        it = runtime.Interpreter.from_file(path, arena_size=1 << 22)
        out[path] = ([it.get_input_details(i) for i in range(sg.InputsLength())],
                     [it.get_output_details(i) for i in range(sg.OutputsLength())])
    pickle.dump(out, open(sys.argv[1], "wb"))
""")


def test_io_matches_tflm_interpreter(tmp_path):
    """Input/output shapes, dtypes and quant params equal what the TFLM interpreter reports."""
    paths = [str(require_model(rel)) for rel in MODELS if rel != HYBRID]
    result = tmp_path / "details.pkl"
    proc = subprocess.run([sys.executable, "-c", _TFLM_DETAILS, str(result), *paths], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    details = pickle.loads(result.read_bytes())
    for path in paths:
        graph = importers.load(path)
        for names, infos in zip((graph.inputs, graph.outputs), details[path]):
            assert len(names) == len(infos), path
            for name, info in zip(names, infos):
                t = graph.tensors[name]
                assert t.shape == tuple(int(d) for d in info["shape"]), (path, name)
                assert t.dtype.np == np.dtype(info["dtype"]), (path, name)
                q = info["quantization_parameters"]
                if t.quant is None:
                    assert len(q["scales"]) == 0 or t.dtype.is_float, (path, name)
                else:
                    assert list(t.quant.scale) == [float(s) for s in q["scales"]], (path, name)
                    assert list(t.quant.zero_point) == [int(z) for z in q["zero_points"]], (path, name)


def test_kws_constants_and_per_axis_quant():
    """Constants are the buffer bytes; conv filters are per-axis along 0, depthwise along 3, biases
    along 0."""
    path = require_model("mlperf_tiny/kws_ref_model.tflite")
    graph = importers.load(path)
    model = tflite.Model.GetRootAs(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    index = graph.metadata["tflite_tensor_index"]
    consts = [t for t in graph.tensors.values() if t.is_const]
    assert len(consts) == 20  # 10 MAC ops with filter + bias; RESHAPE's shape operand is dropped
    for t in consts:
        raw = model.Buffers(sg.Tensors(index[t.name]).Buffer()).DataAsNumpy().tobytes()
        assert t.data.tobytes() == raw and not t.data.flags.writeable
    for op in graph.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            axis = 0 if op.kind == "CONV_2D" else 3
            assert w.quant.axis == axis and len(w.quant.scale) == w.shape[axis]
            assert b.dtype is DType.INT32 and b.quant.axis == 0 and len(b.quant.scale) == b.shape[0]
    first = graph.ops[0]
    assert first.attrs == dict(strides=(2, 2), dilations=(1, 1), pads=(4, 1, 5, 1), activation="RELU",
                               rounding="tflm")


# -- unsupported models ------------------------------------------------------------------------------------
UNSUPPORTED = ["tflm/dtln_noise_suppression.tflite", "tflm/trained_lstm.tflite",
               "tflm/trained_lstm_int8.tflite", "tflm/keyword_scrambled.tflite",
               "tflm/keyword_scrambled_8bit.tflite",
               "tflm/audio_preprocessor_float.tflite", "tflm/audio_preprocessor_int8.tflite"]
SUPPORTED_LIST = ("ADD, AVERAGE_POOL_2D, BATCH_MATMUL, CONCATENATION, CONV_2D, DEPTHWISE_CONV_2D, "
                  "DEQUANTIZE, EXPAND_DIMS, FULLY_CONNECTED, HARD_SWISH, LEAKY_RELU, LOGISTIC, MAX_POOL_2D, "
                  "MEAN, MUL, PAD, PADV2, QUANTIZE, RELU, RELU6, RELU_N1_TO_1, RESHAPE, "
                  "RESIZE_NEAREST_NEIGHBOR, SLICE, SOFTMAX, SPLIT, SPLIT_V, SQUEEZE, STRIDED_SLICE, SUB, TANH, "
                  "TRANSPOSE, TRANSPOSE_CONV")


@pytest.mark.parametrize("rel", UNSUPPORTED, ids=_ids(UNSUPPORTED))
def test_unsupported_models_name_every_op(rel):
    path = require_model(rel)
    model = tflite.Model.GetRootAs(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    expected: dict[str, list[int]] = {}
    for i in range(sg.OperatorsLength()):
        oc = model.OperatorCodes(sg.Operators(i).OpcodeIndex())
        name = BUILTIN_OPCODE2NAME[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        name = f"CUSTOM:{oc.CustomCode().decode()}" if name == "CUSTOM" else name
        if name not in SUPPORTED_LIST.split(", "):
            expected.setdefault(name, []).append(i)
    with pytest.raises(UnsupportedOpError) as e:
        importers.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: unsupported operators: ")
    assert msg.endswith(f"microgen supports: {SUPPORTED_LIST}")
    assert "\n" not in msg
    for name, ops in expected.items():
        assert f"{name} (op{'s' if len(ops) > 1 else ''} #{ops[0]} " in msg
        for i in ops:
            assert f"#{i} " in msg
    assert any(k in msg for k in ("LSTM", "SVDF", "CUSTOM:Signal"))


def test_unsupported_message_exact():
    path = require_model("tflm/keyword_scrambled.tflite")
    with pytest.raises(UnsupportedOpError) as e:
        importers.load(path)
    assert str(e.value) == (f'{path}: unsupported operators: SVDF (ops #1 "t5", #3 "t13", #5 "t21", #7 "t29", '
                            f'#9 "t37", #10 "t42", #11 "t47"); microgen supports: {SUPPORTED_LIST}')


# -- corrupt files -------------------------------------------------------------------------------------
def _load_bytes(tmp_path, data, suffix=".tflite"):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(data)
    return importers.load(path), path


def _expect_format_error(tmp_path, data):
    with pytest.raises(ModelFormatError) as e:
        _load_bytes(tmp_path, data)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "model.tflite") + ": ") and "\n" not in msg
    return msg


@pytest.mark.parametrize("cut", [1, 4, 7, 8, 12, 20, 64, 1000, 0.25, 0.5, 0.9, -16, -1])
def test_truncated_file(tmp_path, cut):
    data = require_model("mlperf_tiny/kws_ref_model.tflite").read_bytes()
    n = int(cut * len(data)) if isinstance(cut, float) else cut % len(data)
    msg = _expect_format_error(tmp_path, data[:n])
    if n >= 8:
        assert "corrupt or truncated TFLite file" in msg


def test_flipped_bytes_and_splices_only_raise_microgen_errors(tmp_path):
    """Seeded flips/splices over the whole file: a graph or a MicrogenError, never another exception."""
    data = require_model("extra/add_mul_concat_int8.tflite").read_bytes()
    rng = random.Random(2024)
    outcomes = Counter()
    for _ in range(300):
        buf = bytearray(data)
        pos = rng.randrange(len(buf))
        if rng.random() < 0.5:
            buf[pos] ^= rng.randint(1, 255)
        else:
            buf[pos:pos + 4] = rng.getrandbits(32).to_bytes(4, "little")
        start = time.perf_counter()
        try:
            _load_bytes(tmp_path, bytes(buf))
            outcomes["loaded"] += 1
        except MicrogenError as e:
            assert "\n" not in str(e)
            outcomes[type(e).__name__] += 1
        assert time.perf_counter() - start < 1.0
    assert outcomes["ModelFormatError"] > 100


def test_negative_vtable_offset_is_caught(tmp_path):
    """A root table whose vtable offset points before the file start (Python would read from the end)."""
    data = bytearray(require_model("tflm/hello_world_int8.tflite").read_bytes())
    root = int.from_bytes(data[0:4], "little")
    data[root:root + 4] = (root + 1000).to_bytes(4, "little", signed=True)
    msg = _expect_format_error(tmp_path, bytes(data))
    assert msg.endswith(f"(model: table at offset {root} has its vtable outside the file)")


def test_random_bytes(tmp_path):
    rng = np.random.default_rng(7)
    for n in (8, 100, 5000):
        body = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        msg = _expect_format_error(tmp_path, body[:4] + b"TFL3" + body[8:])
        assert "corrupt or truncated TFLite file" in msg
        # no identifier (and a leading 0 byte does not look like ONNX)
        msg = _expect_format_error(tmp_path, b"\x00" + body[1:])
        assert msg.endswith("not a TFLite model (no 'TFL3' FlatBuffer identifier)")


def test_empty_file_and_renamed_onnx(tmp_path):
    assert _expect_format_error(tmp_path, b"").endswith(": the file is empty")
    onnx_bytes = require_model("onnx/mnist-8.onnx").read_bytes()
    assert _expect_format_error(tmp_path, onnx_bytes).endswith(
        "not a TFLite model (no 'TFL3' FlatBuffer identifier); it looks like an ONNX file, rename it to .onnx")


def test_load_tflite_directly_rejects_garbage():
    with pytest.raises(ModelFormatError, match=r"^x\.tflite: corrupt or truncated TFLite file \(file header: "):
        load_tflite(b"garbage!" * 3, name="x", path="x.tflite")
    with pytest.raises(ModelFormatError, match=r"\(model: table at offset 0 has a malformed vtable \(length 0"):
        load_tflite(b"\0\0\0\0TFL3", name="x", path="x.tflite")


# -- padding and slicing arithmetic ----------------------------------------------------------------------
@pytest.mark.parametrize("padding, n, k, s, d, out, pads", [
    (SAME, 5, 3, 1, 1, 5, (1, 1)),
    (SAME, 49, 10, 2, 1, 25, (4, 5)),     # KWS first conv: odd total 9, the extra cell at the end
    (SAME, 4, 2, 1, 1, 4, (0, 1)),
    (SAME, 10, 3, 1, 2, 10, (2, 2)),      # dilation 2: effective kernel 5
    (SAME, 5, 1, 2, 1, 3, (0, 0)),
    (SAME, 7, 3, 2, 1, 4, (1, 1)),
    (SAME, 8, 3, 2, 1, 4, (0, 1)),
    (VALID, 10, 3, 1, 1, 8, (0, 0)),
    (VALID, 9, 3, 2, 2, 3, (0, 0)),
])
def test_window_pads(padding, n, k, s, d, out, pads):
    got = geometry.window_pads(padding, (n, 6), (k, 1), (s, 1), (d, 1), (out, 6))
    assert got == (pads[0], 0, pads[1], 0)


def test_window_pads_reject_wrong_output_size():
    assert geometry.window_pads(SAME, (10,), (3,), (2,), (1,), (4,)) is None
    assert geometry.window_pads(VALID, (10,), (3,), (1,), (1,), (10,)) is None


@pytest.mark.parametrize("padding, n, k, s, out, pads", [
    (SAME, 8, 3, 2, 16, (0, 1)),    # extra/transpose_conv_upsample: full result 17, last cell cropped
    (VALID, 80, 4, 2, 162, (0, 0)),  # SEANet transpose_conv4 width
    (SAME, 4, 4, 2, 8, (1, 1)),
    (SAME, 4, 1, 2, 8, (0, -1)),     # k < s: the output is one longer than the full result
])
def test_transpose_conv_pads(padding, n, k, s, out, pads):
    assert geometry.transpose_conv_pads(padding, (n,), (k,), (s,), (out,)) == pads


def _apply_slice(x, begin, end, strides):
    return x[tuple(slice(b, e, s) for b, e, s in zip(begin, end, strides))]


@pytest.mark.parametrize("begin, end, strides, bmask, emask, shrink, offset, want", [
    ([2], [7], [2], 0, 0, 0, False, [2, 4, 6]),
    ([-3], [100], [1], 0, 0, 0, False, [7, 8, 9]),
    ([3], [5], [1], 1, 0, 0, False, [0, 1, 2, 3, 4]),        # begin_mask
    ([-1], [0], [-1], 0, 1, 0, False, list(range(9, -1, -1))),  # end_mask with a negative stride: through 0
    ([8], [-20], [-2], 0, 0, 0, False, [8, 6, 4, 2, 0]),      # clamped to -1: through index 0
    ([-20], [0], [-1], 0, 0, 0, False, []),                   # start clamped to -1: nothing
    ([3], [0], [1], 0, 0, 1, False, [3]),                      # shrink_axis ignores end
    ([-2], [0], [1], 0, 0, 1, False, [8]),
    ([2], [3], [1], 0, 0, 0, True, [2, 3, 4]),                 # offset: end is relative to begin
])
def test_strided_slice_1d(begin, end, strides, bmask, emask, shrink, offset, want):
    b, e, s, sizes = geometry.strided_slice((10,), begin, end, strides, bmask, emask, shrink, offset)
    got = _apply_slice(np.arange(10), b, e, s)
    assert got.tolist() == want and sizes == [len(want)]
    if len(want) > 1:  # canonical bounds: the first index, one step past the last one
        past = want[-1] + (1 if strides[0] > 0 else -1)
        assert (b[0], e[0], s[0]) == (want[0], None if past == -1 else past, strides[0])


def test_strided_slice_pads_missing_leading_axes():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    b, e, s, sizes = geometry.strided_slice(x.shape, [1, 0], [3, 4], [1, 3], 0, 0, 1, False)
    assert sizes == [2, 1, 2]
    assert (b, e, s) == ([0, 1, 0], [2, 2, 4], [1, 1, 3])  # canonical: first index, one step past the last
    np.testing.assert_array_equal(_apply_slice(x, b, e, s).reshape(2, 2), x[:, 1, ::3])


# -- hybrid dequantization ----------------------------------------------------------------------------------
def test_dequantize_per_tensor_and_per_axis():
    q = np.array([[-128, 0, 5], [127, -3, 1]], dtype=np.int8)
    t = Tensor("w", (2, 3), DType.INT8, QuantParams.per_tensor(0.5, -3), q)
    d = dequantize(t, "w")
    assert d.dtype is DType.FLOAT32 and d.quant is None and d.name == "w"
    np.testing.assert_array_equal(d.data, np.array([[-62.5, 1.5, 4.0], [65.0, 0.0, 2.0]], np.float32))
    t = Tensor("w", (2, 3), DType.INT8, QuantParams((0.25, 2.0, 0.1), (0, 1, 0), axis=1), q)
    want = np.array([[-32.0, -2.0, np.float32(0.1) * 5], [31.75, -8.0, np.float32(0.1) * 1]], np.float32)
    np.testing.assert_array_equal(dequantize(t, "w2").data, want)


def test_hybrid_kws_float32_is_a_float_graph():
    path = require_model(HYBRID)
    graph = importers.load(path)
    assert all(t.dtype is DType.FLOAT32 for t in graph.tensors.values())
    model = tflite.Model.GetRootAs(path.read_bytes(), 0)
    sg = model.Subgraphs(0)
    index = graph.metadata["tflite_tensor_index"]
    convs = [op for op in graph.ops if op.kind == "CONV_2D"]
    assert len(convs) == 5
    for op in convs:
        w = graph.tensors[op.inputs[1]]
        raw = sg.Tensors(index[w.name])
        assert raw.Type() == tflite.TensorType.INT8
        q = raw.Quantization()
        ints = model.Buffers(raw.Buffer()).DataAsNumpy().view(np.int8).reshape(w.shape)
        want = ((ints.astype(np.float64) - q.ZeroPoint(0)) * np.float64(q.Scale(0))).astype(np.float32)
        np.testing.assert_array_equal(w.data, want)


# -- hand-built models ----------------------------------------------------------------------------------
def _mod(name):
    return importlib.import_module(f"tflite.{name}")


def _table(b, cls, fields):
    """Build a table of schema class `cls` (e.g. "Conv2DOptions") with scalar/offset fields."""
    mod = _mod(cls)
    getattr(mod, f"{cls}Start")(b)
    for key, value in fields.items():
        getattr(mod, f"{cls}Add{key}")(b, value)
    return getattr(mod, f"{cls}End")(b)


def _offsets(b, offsets):
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def build_model(tensors, ops, inputs, outputs):
    """A one-subgraph .tflite file.

    tensors: dicts with name, shape, type (TensorType name, default INT8), optional data (numpy array,
      stored little-endian), scale / zp / qdim.
    ops: (op name or "CUSTOM:Name", inputs, outputs, options class name or None, options fields).
    """
    b = flatbuffers.Builder(1024)
    codes = sorted({op[0] for op in ops}, key=[op[0] for op in ops].index)
    buffers = [_table(b, "Buffer", {})]
    tensor_offsets = []
    for t in tensors:
        buffer_index = 0
        if t.get("data") is not None:
            raw = np.ascontiguousarray(t["data"]).tobytes()
            data = b.CreateNumpyVector(np.frombuffer(raw, np.uint8))
            buffers.append(_table(b, "Buffer", {"Data": data}))
            buffer_index = len(buffers) - 1
        fields = {"Name": b.CreateString(t["name"]),
                  "Shape": b.CreateNumpyVector(np.array(t["shape"], np.int32)),
                  "Type": getattr(tflite.TensorType, t.get("type", "INT8")), "Buffer": buffer_index}
        if "scale" in t:
            fields["Quantization"] = _table(b, "QuantizationParameters", {
                "Scale": b.CreateNumpyVector(np.array(t["scale"], np.float32)),
                "ZeroPoint": b.CreateNumpyVector(np.array(t.get("zp", [0] * len(t["scale"])), np.int64)),
                "QuantizedDimension": t.get("qdim", 0)})
        tensor_offsets.append(_table(b, "Tensor", fields))
    op_offsets = []
    for name, ins, outs, opt_cls, opt_fields in ops:
        fields = {"OpcodeIndex": codes.index(name), "Inputs": b.CreateNumpyVector(np.array(ins, np.int32)),
                  "Outputs": b.CreateNumpyVector(np.array(outs, np.int32))}
        if opt_cls:
            fields["BuiltinOptionsType"] = getattr(tflite.BuiltinOptions, opt_cls)
            fields["BuiltinOptions"] = _table(b, opt_cls, opt_fields)
        op_offsets.append(_table(b, "Operator", fields))
    code_offsets = []
    for name in codes:
        builtin = "CUSTOM" if name.startswith("CUSTOM:") else name
        fields = {"BuiltinCode": getattr(tflite.BuiltinOperator, builtin),
                  "DeprecatedBuiltinCode": min(getattr(tflite.BuiltinOperator, builtin), 127), "Version": 1}
        if builtin == "CUSTOM":
            fields["CustomCode"] = b.CreateString(name.split(":", 1)[1])
        code_offsets.append(_table(b, "OperatorCode", fields))
    subgraph = _table(b, "SubGraph", {
        "Tensors": _offsets(b, tensor_offsets), "Operators": _offsets(b, op_offsets),
        "Inputs": b.CreateNumpyVector(np.array(inputs, np.int32)),
        "Outputs": b.CreateNumpyVector(np.array(outputs, np.int32))})
    model = _table(b, "Model", {"Version": 3, "OperatorCodes": _offsets(b, code_offsets),
                                "Subgraphs": _offsets(b, [subgraph]), "Buffers": _offsets(b, buffers)})
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def q8(name, shape, scale=0.5, zp=0, **extra):
    return dict(name=name, shape=shape, scale=[scale], zp=[zp], **extra)


def f32(name, shape, data=None):
    return dict(name=name, shape=shape, type="FLOAT32", data=data)


def i32(name, values):
    values = np.array(values, np.int32)
    return dict(name=name, shape=list(values.shape), type="INT32", data=values)


def load_built(tmp_path, *args, **kwargs):
    return _load_bytes(tmp_path, build_model(*args, **kwargs))[0]


def test_built_conv_with_names_quirks(tmp_path):
    """Duplicate names get a suffix, empty ones t<index>; a 1-D per-axis bias with quantized_dimension 3
    (person_detect) is per-axis along 0; SAME padding with stride 2 and dilation resolved."""
    w = np.arange(2 * 3 * 3 * 4, dtype=np.int8).reshape(2, 3, 3, 4)
    tensors = [q8("x", [1, 9, 9, 4]),
               dict(name="x", shape=[2, 3, 3, 4], data=w, scale=[0.1, 0.2], zp=[0, 0], qdim=0),
               dict(name="", shape=[2], type="INT32", data=np.array([7, -7], np.int32), scale=[0.05, 0.1],
                    zp=[0, 0], qdim=3),
               q8("y", [1, 5, 5, 2], zp=-128)]
    conv = dict(Padding=tflite.Padding.SAME, StrideW=2, StrideH=2, FusedActivationFunction=3,
                DilationWFactor=1, DilationHFactor=2)
    g = load_built(tmp_path, tensors, [("CONV_2D", [0, 1, 2], [3], "Conv2DOptions", conv)], [0], [3])
    assert sorted(g.tensors) == ["t2", "x", "x_1", "y"]
    (op,) = g.ops
    assert (op.kind, op.inputs, op.outputs, op.index, op.name) == ("CONV_2D", ("x", "x_1", "t2"), ("y",), 0,
                                                                   "y")
    # H: eff 5, out 5 -> total (5-1)*2 + 5 - 9 = 4; W: eff 3 -> total 2
    assert op.attrs == dict(strides=(2, 2), dilations=(2, 1), pads=(2, 1, 2, 1), activation="RELU6",
                            rounding="tflm")
    assert g.tensors["t2"].quant == QuantParams((0.05000000074505806, 0.10000000149011612), (0, 0), 0)
    assert g.tensors["x_1"].quant.axis == 0
    assert g.metadata["tflite_tensor_index"] == {"x": 0, "x_1": 1, "t2": 2, "y": 3}


def test_built_unsupported_dtype_and_variants(tmp_path):
    tensors = [dict(name="c", shape=[4], type="COMPLEX64"), dict(name="d", shape=[4], type="COMPLEX64")]
    with pytest.raises(UnsupportedDTypeError) as e:
        load_built(tmp_path, tensors, [("RELU", [0], [1], None, {})], [0], [1])
    assert str(e.value).startswith(f"{tmp_path / 'model.tflite'}: unsupported tensor types: 'c' (COMPLEX64), "
                                   f"'d' (COMPLEX64); microgen supports int8, ")
    tensors = [q8("a", [1, 4]), q8("b", [1, 4]), q8("c", [1, 4]), q8("d", [1, 4])]
    ops = [("ADD", [0, 1], [2], "AddOptions", dict(FusedActivationFunction=4)),
           ("MUL", [2, 1], [3], "MulOptions", dict(FusedActivationFunction=5))]
    with pytest.raises(UnsupportedOpError) as e:
        load_built(tmp_path, tensors, ops, [0, 1], [3])
    assert str(e.value) == (f'{tmp_path / "model.tflite"}: unsupported operator variants: op #0 ADD "c": '
                            f'fused activation TANH is not supported; op #1 MUL "d": fused activation '
                            f'SIGN_BIT is not supported')


def test_built_unsupported_custom_op(tmp_path):
    tensors = [q8("a", [4]), q8("b", [4]), q8("c", [4])]
    ops = [("CUSTOM:SignalWindow", [0], [1], None, {}), ("SVDF", [1], [2], None, {}),
           ("CUSTOM:SignalWindow", [2], [1], None, {})]
    with pytest.raises(UnsupportedOpError) as e:
        load_built(tmp_path, tensors, ops, [0], [2])
    assert str(e.value).startswith(f'{tmp_path / "model.tflite"}: unsupported operators: CUSTOM:SignalWindow '
                                   f'(ops #0 "b", #2 "b"), SVDF (op #1 "c"); microgen supports: ADD, ')


def test_built_shape_ops(tmp_path):
    """Constant operands become attributes: perm, axes (normalised), paddings, slice bounds, split sizes."""
    tensors = [q8("x", [1, 4, 6], zp=3),                  # 0
               i32("perm", [0, -1, 1]), q8("t", [1, 6, 4], zp=3),            # 1, 2
               i32("pads", [[0, 0], [1, 2], [0, 1]]), q8("p", [1, 9, 5], zp=3),  # 3, 4
               i32("axes", [-1]), q8("m", [1, 9], zp=3),                      # 5, 6
               i32("begin", [0, -1]), i32("end", [0, 0]), i32("strides", [1, -2]),  # 7, 8, 9
               q8("s", [1, 5], zp=3),                                          # 10
               i32("sizes", [2, -1]), i32("axis", [-1]),                      # 11, 12
               q8("v1", [1, 2], zp=3), q8("v2", [1, 3], zp=3),                # 13, 14
               i32("shape", [5]), q8("r", [5], zp=3),                         # 15, 16
               q8("cat", [1, 5], zp=3)]                                        # 17
    ops = [("TRANSPOSE", [0, 1], [2], None, {}),
           ("PAD", [2, 3], [4], None, {}),
           ("MEAN", [4, 5], [6], "ReducerOptions", dict(KeepDims=False)),
           # m[:, -1::-2] (begin_mask on axis 0, end_mask on both): 9 columns -> 5
           ("STRIDED_SLICE", [6, 7, 8, 9], [10], "StridedSliceOptions", dict(BeginMask=1, EndMask=3,
                                                                             ShrinkAxisMask=0)),
           ("SPLIT_V", [10, 11, 12], [13, 14], "SplitVOptions", dict(NumSplits=2)),
           ("CONCATENATION", [13, 14], [17], "ConcatenationOptions", dict(Axis=-1)),
           ("RESHAPE", [17, 15], [16], None, {})]
    g = load_built(tmp_path, tensors, ops, [0], [6, 16, 10])
    attrs = {op.kind: op.attrs for op in g.ops}
    assert all(len([n for n in op.inputs if n]) == (2 if op.kind == "CONCATENATION" else 1) for op in g.ops)
    assert attrs["TRANSPOSE"] == dict(perm=(0, 2, 1))
    assert attrs["PAD"] == dict(pads=((0, 0), (1, 2), (0, 1)), mode="constant", value=3)
    assert attrs["MEAN"] == dict(axes=(2,), keepdims=False)
    assert attrs["SLICE"] == dict(begin=(0, 8), end=(1, None), strides=(1, -2))
    assert attrs["SPLIT"] == dict(axis=1, sizes=(2, 3))
    assert attrs["CONCATENATION"] == dict(axis=1, activation="NONE")
    assert attrs["RESHAPE"] == {}
    assert "perm" not in g.tensors and "pads" not in g.tensors


def test_built_padv2_value_and_pad_defaults(tmp_path):
    tensors = [dict(name="x", shape=[1, 2], type="INT16", scale=[0.01], zp=[0]),
               i32("pads", [[0, 0], [1, 1]]),
               dict(name="v", shape=[], type="INT16", data=np.array(-5, np.int16)),
               dict(name="y", shape=[1, 4], type="INT16", scale=[0.01], zp=[0]),
               dict(name="z", shape=[1, 6], type="INT16", scale=[0.01], zp=[0]),
               f32("f", [1, 2]), f32("g", [1, 4])]
    ops = [("PADV2", [0, 1, 2], [3], None, {}), ("PAD", [3, 1], [4], None, {}),
           ("PAD", [5, 1], [6], None, {})]
    g = load_built(tmp_path, tensors, ops, [0, 5], [4, 6])
    assert [op.attrs["value"] for op in g.ops] == [-5, 0, 0.0]
    assert g.ops[0].inputs == ("x",)


def test_built_hybrid_fc_per_channel_and_folded_dequantize(tmp_path):
    """Float input + int8 per-channel constant weights -> float32 weights scale * (q - zp); DEQUANTIZE of a
    float16 constant is folded into a float32 constant."""
    w = np.array([[1, -2, 3], [-128, 127, 0]], np.int8)
    b16 = np.array([0.5, -1.25], np.float16)
    tensors = [f32("x", [1, 3]), dict(name="w", shape=[2, 3], data=w, scale=[0.5, 0.25], zp=[0, 0], qdim=0),
               dict(name="b16", shape=[2], type="FLOAT16", data=b16), f32("b", [2]), f32("y", [1, 2])]
    ops = [("DEQUANTIZE", [2], [3], None, {}),
           ("FULLY_CONNECTED", [0, 1, 3], [4], "FullyConnectedOptions", dict(FusedActivationFunction=1))]
    g = load_built(tmp_path, tensors, ops, [0], [4])
    (op,) = g.ops
    assert (op.kind, op.inputs, op.attrs) == ("FULLY_CONNECTED", ("x", "w", "b"),
                                              dict(activation="RELU", rounding="tflm"))
    want = np.array([[0.5, -1.0, 1.5], [-32.0, 31.75, 0.0]], np.float32)
    np.testing.assert_array_equal(g.tensors["w"].data, want)
    assert g.tensors["w"].dtype is DType.FLOAT32 and g.tensors["w"].quant is None
    np.testing.assert_array_equal(g.tensors["b"].data, np.array([0.5, -1.25], np.float32))


def test_built_int16_bias_widened_to_int64(tmp_path):
    """16x8 MAC ops take an int64 bias in the IR: an int32 one is widened (same values, same name)."""
    tensors = [dict(name="x", shape=[1, 3], type="INT16", scale=[0.01]),
               dict(name="w", shape=[2, 3], data=np.ones((2, 3), np.int8), scale=[0.1]),
               dict(name="b", shape=[2], type="INT32", data=np.array([-70000, 5], np.int32), scale=[0.001]),
               dict(name="y", shape=[1, 2], type="INT16", scale=[0.02])]
    g = load_built(tmp_path, tensors, [("FULLY_CONNECTED", [0, 1, 2], [3], "FullyConnectedOptions", {})],
                   [0], [3])
    b = g.tensors[g.ops[0].inputs[2]]
    assert (b.name, b.dtype, b.data.tolist(), b.quant) == ("b", DType.INT64, [-70000, 5],
                                                           QuantParams.per_tensor(np.float32(0.001)))


def test_built_batch_matmul(tmp_path):
    tensors = [q8("a", [2, 3, 4]), q8("b", [4, 5]), q8("y", [2, 3, 5])]
    g = load_built(tmp_path, tensors, [("BATCH_MATMUL", [0, 1], [2], "BatchMatMulOptions", {})], [0, 1], [2])
    (op,) = g.ops
    assert (op.kind, op.inputs, op.attrs) == ("BATCH_MATMUL", ("a", "b"), dict(rounding="tflm"))
    with pytest.raises(UnsupportedOpError, match=r'op #0 BATCH_MATMUL "y": adj_x / adj_y .* not supported$'):
        load_built(tmp_path, tensors, [("BATCH_MATMUL", [0, 1], [2], "BatchMatMulOptions", dict(AdjX=True))],
                   [0, 1], [2])


def test_built_inconsistent_models(tmp_path):
    path = tmp_path / "model.tflite"
    # a constant whose buffer does not match its shape
    tensors = [q8("x", [1, 4]), dict(name="w", shape=[3, 4], data=np.zeros(10, np.int8), scale=[1.0]),
               q8("y", [1, 3])]
    ops = [("FULLY_CONNECTED", [0, 1], [2], "FullyConnectedOptions", {})]
    with pytest.raises(ModelFormatError) as e:
        load_built(tmp_path, tensors, ops, [0], [2])
    assert str(e.value) == f"{path}: tensor 'w' (#1) is int8[3, 4] (12 bytes) but its buffer holds 10 bytes"
    # ops out of execution order
    tensors = [q8("a", [4]), q8("b", [4]), q8("c", [4])]
    ops = [("RELU", [1], [2], None, {}), ("RELU", [0], [1], None, {})]
    with pytest.raises(ModelFormatError) as e:
        load_built(tmp_path, tensors, ops, [0], [2])
    assert str(e.value) == (f'{path}: op #0 "c" CLIP reads \'b\' before any op computes it (ops are not in '
                            f'execution order)')
    # an output size that SAME padding cannot give
    tensors = [q8("x", [1, 8, 8, 1]), q8("y", [1, 3, 4, 1])]
    pool = dict(Padding=tflite.Padding.SAME, StrideW=2, StrideH=2, FilterWidth=2, FilterHeight=2)
    with pytest.raises(ModelFormatError) as e:
        load_built(tmp_path, tensors, [("MAX_POOL_2D", [0], [1], "Pool2DOptions", pool)], [0], [1])
    assert str(e.value) == (f'{path}: op #0 MAX_POOL_2D "y": output spatial size [3, 4] is not the [4, 4] that '
                            f'SAME padding gives')
    # an op index pointing past the tensor list
    with pytest.raises(ModelFormatError) as e:
        load_built(tmp_path, tensors, [("RELU", [0], [7], None, {})], [0], [1])
    assert str(e.value) == (f"{path}: corrupt or truncated TFLite file (op #0 (RELU): output tensor index 7 "
                            f"is out of range (0..1))")


@pytest.mark.slow
def test_mutation_sweep_kws():
    """2000 seeded truncations / flips / splices of kws_ref_model: only MicrogenError, each load < 1 s."""
    data = require_model("mlperf_tiny/kws_ref_model.tflite").read_bytes()
    rng = random.Random(0)
    worst = 0.0
    for _ in range(2000):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            if not buf:
                break
            pos, kind = rng.randrange(len(buf)), rng.choice("tfs")
            if kind == "t":
                buf = buf[:pos]
            elif kind == "f":
                buf[pos] ^= rng.randint(1, 255)
            else:
                buf[pos:pos + 4] = rng.getrandbits(32).to_bytes(4, "little")
        start = time.perf_counter()
        try:
            load_tflite(bytes(buf), name="kws", path="kws.tflite")
        except MicrogenError as e:
            assert "\n" not in str(e)
        worst = max(worst, time.perf_counter() - start)
    assert worst < 1.0
