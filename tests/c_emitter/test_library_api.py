"""The generated library as a firmware engineer uses it: two models in one program, the guard bytes
around the caller's arena, the status codes."""

import subprocess

import pytest

from microgen import pipeline, reference
from microgen.device import host
from microgen.errors import BoardError
from microgen.testing.corpus import require_model, seeded_inputs

STRICT = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all"]


def test_two_models_link_into_one_program(tmp_path):
    kws = pipeline.build(require_model("mlperf_tiny/kws_ref_model.tflite"), tmp_path / "kws", name="kws")
    ad = pipeline.build(require_model("mlperf_tiny/ad01_int8.tflite"), tmp_path / "ad", name="ad")
    xk = seeded_inputs(kws.graph.input_tensors()[0], 1, seed=3)[0]
    xa = seeded_inputs(ad.graph.input_tensors()[0], 1, seed=4)[0]
    main = tmp_path / "main.c"
    main.write_text(f"""
#include <stdio.h>
#include <string.h>
#include "kws.h"
#include "ad.h"
static uint64_t kws_mem[(KWS_ARENA_SIZE + 7) / 8];
static uint64_t ad_mem[(AD_ARENA_SIZE + 7) / 8];
static const int8_t kws_in[] = {{ {", ".join(map(str, xk.ravel()))} }};
static const int8_t ad_in[] = {{ {", ".join(map(str, xa.ravel()))} }};
int main(void)
{{
    uint8_t *ka = (uint8_t *)kws_mem, *aa = (uint8_t *)ad_mem;
    uint32_t i;
    memcpy(kws_input0(ka), kws_in, KWS_INPUT0_BYTES);
    memcpy(ad_input0(aa), ad_in, AD_INPUT0_BYTES);
    if (kws_invoke(ka) != KWS_OK || ad_invoke(aa) != AD_OK) return 1;
    if (kws_invoke((uint8_t *)0) != KWS_ERROR_NULL_ARENA) return 2;
    if (ad_invoke(aa + 1) != AD_ERROR_ARENA_ALIGNMENT) return 3;
    for (i = 0; i < KWS_OUTPUT0_SIZE; ++i) printf("%d ", kws_output0(ka)[i]);
    printf("\\n");
    for (i = 0; i < AD_OUTPUT0_SIZE; ++i) printf("%d ", ad_output0(aa)[i]);
    printf("\\n");
    return 0;
}}
""")
    exe = tmp_path / "both"
    subprocess.run([*STRICT, "-I", str(tmp_path / "kws"), "-I", str(tmp_path / "ad"), str(main),
                    str(tmp_path / "kws" / "kws.c"), str(tmp_path / "ad" / "ad.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    want_k = reference.run(kws.graph, {kws.graph.inputs[0]: xk})[kws.graph.outputs[0]]
    want_a = reference.run(ad.graph, {ad.graph.inputs[0]: xa})[ad.graph.outputs[0]]
    assert [int(v) for v in out[0].split()] == want_k.ravel().tolist()
    assert [int(v) for v in out[1].split()] == want_a.ravel().tolist()


def test_arena_guard_catches_an_overrun(tmp_path):
    """The example program's guard bytes work: shrink the arena the program allocates below what the
    kernels use, and the run fails with 'arena overrun' (the real build never does: every host test
    runs through these guards)."""
    result = pipeline.build(require_model("mlperf_tiny/ad01_int8.tflite"), tmp_path / "ad", name="ad")
    header = tmp_path / "ad" / "ad.h"
    size = result.plan.arena_size
    text = header.read_text()
    assert f"#define AD_ARENA_SIZE {size}u" in text
    header.write_text(text.replace(f"#define AD_ARENA_SIZE {size}u", f"#define AD_ARENA_SIZE {size - 64}u"))
    exe = host.compile_project(tmp_path / "ad", "ad")
    x = seeded_inputs(result.graph.input_tensors()[0], 1, seed=0)
    with pytest.raises(BoardError, match="arena overrun"):
        host.run_executable(exe, result.graph, {result.graph.inputs[0]: x})
