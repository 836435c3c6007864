"""The portable C of every intrinsic in runtime_c/mg_intrinsics.h computes exactly its Python model
(microgen/tir/intrinsics.py), on hypothesis-drawn and edge-case operands. (The Arm instructions behind the
same names are checked by the kernels' bit-exact runs on the emulated boards.)"""

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microgen.c_emitter.project import RUNTIME_DIR
from microgen.tir.intrinsics import INTRINSICS

TESTED = [n for n in INTRINSICS if n not in ("mg_read_u32", "mg_ssat")]
EDGES = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF7FFF, 0x80008000, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x017F80FF]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """A host program: reads lines 'name a b c', prints the intrinsic's result as a signed/unsigned int."""
    d = tmp_path_factory.mktemp("intrin")
    cases = "\n".join(
        f'        if (strcmp(name, "{n}") == 0) printf("%lld\\n", (long long){n}({", ".join(_cast(t, i) for i, t in enumerate(INTRINSICS[n].args))}));'
        for n in TESTED)
    src = f"""
#include <stdio.h>
#include <string.h>
#include "mg_intrinsics.h"
int main(void)
{{
    char name[64];
    long long a[3];
    while (scanf("%63s %lld %lld %lld", name, &a[0], &a[1], &a[2]) == 4) {{
{cases}
        if (strcmp(name, "mg_ssat") == 0) printf("%lld\\n", (long long)mg_ssat((int32_t)a[0], 8));
    }}
    return 0;
}}
"""
    (d / "t.c").write_text(src)
    exe = d / "t"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(RUNTIME_DIR), str(d / "t.c"), "-o", str(exe)], check=True)
    return exe


def _cast(dtype, i):
    return f"(int32_t)a[{i}]" if dtype.value == "int32" else f"(uint32_t)a[{i}]"


def run_cases(exe, cases):
    text = "".join(f"{n} {' '.join(str(v) for v in (list(args) + [0, 0, 0])[:3])}\n" for n, args in cases)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout.split()
    return [int(v) for v in out]


def _operand(dtype, v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if dtype.value == "int32" and v & 0x80000000 else v


def expected(name, args):
    spec = INTRINSICS[name]
    return spec.model(*args)


def test_edge_cases(harness):
    cases = []
    for name in TESTED:
        spec = INTRINSICS[name]
        for a in EDGES:
            for b in EDGES:
                args = [_operand(t, v) for t, v in zip(spec.args, (a, b, a ^ b))]
                cases.append((name, args))
    cases += [("mg_ssat", [_operand(INTRINSICS["mg_ssat"].args[0], v)]) for v in EDGES + [127, 128, -129 & 0xFFFFFFFF]]
    got = run_cases(harness, cases)
    for (name, args), g in zip(cases, got):
        want = expected(name, args + [8]) if name == "mg_ssat" else expected(name, args)
        assert g == _as_result(name, want), (name, args, g)


def _as_result(name, v):
    return v & 0xFFFFFFFF if INTRINSICS[name].result.value == "uint32" else v


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TESTED), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                          st.integers(0, 2**32 - 1)), min_size=1, max_size=50))
def test_random_operands(harness, draws):
    cases = []
    for name, a, b, c in draws:
        spec = INTRINSICS[name]
        cases.append((name, [_operand(t, v) for t, v in zip(spec.args, (a, b, c))]))
    got = run_cases(harness, cases)
    for (name, args), g in zip(cases, got):
        assert g == _as_result(name, expected(name, args)), (name, args, g)


def test_ssat_model():
    model = INTRINSICS["mg_ssat"].model
    assert [model(v, 8) for v in (-129, -128, 0, 127, 128)] == [-128, -128, 0, 127, 127]
    assert [model(v, 16) for v in (-40000, 40000)] == [-32768, 32767]
