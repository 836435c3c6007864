"""Compile a generated project with the host C compiler and run it on samples.

The example program reads samples from a binary file (each sample: the raw bytes of every input in
order) and writes the outputs the same way; it also checks guard bytes around the arena.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BoardError
from ..graph import Graph

STRICT_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE_CFLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise BoardError("no host C compiler found (install gcc, or set CC)")
    return cc


def compile_project(project_dir: str | os.PathLike, name: str, opt: str = "-O2", sanitize: bool = False,
                    extra_flags: list[str] | None = None) -> Path:
    """Build <name>_run in project_dir with strict warnings; returns the executable path."""
    project_dir = Path(project_dir)
    exe = project_dir / (f"{name}_run_asan" if sanitize else f"{name}_run")
    cmd = [compiler(), *STRICT_CFLAGS, opt, *(SANITIZE_CFLAGS if sanitize else []), *(extra_flags or []),
           "-I", str(project_dir), str(project_dir / f"{name}.c"), str(project_dir / f"{name}_main.c"),
           "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BoardError(f"host compile of {project_dir / name}.c failed:\n{proc.stderr.strip()[:4000]}")
    return exe


def run_executable(exe: str | os.PathLike, graph: Graph, samples: dict[str, np.ndarray],
                   timeout: float = 600) -> dict[str, np.ndarray]:
    """Feed stacked samples ([n, *shape] per input name) through the example program; returns outputs
    stacked the same way."""
    n = len(next(iter(samples.values())))
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        with open(in_path, "wb") as f:
            for s in range(n):
                for name in graph.inputs:
                    t = graph.tensors[name]
                    f.write(np.ascontiguousarray(samples[name][s], dtype=t.dtype.np).tobytes())
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        proc = subprocess.run([str(exe), str(in_path), str(out_path)], capture_output=True, text=True,
                              timeout=timeout, env=env)
        if proc.returncode != 0 or "runtime error" in proc.stderr or "Sanitizer" in proc.stderr:
            raise BoardError(f"{exe} failed (exit {proc.returncode}): {proc.stderr.strip()[-3000:]}")
        raw = out_path.read_bytes()
    outs = {name: [] for name in graph.outputs}
    pos = 0
    for _ in range(n):
        for name in graph.outputs:
            t = graph.tensors[name]
            outs[name].append(np.frombuffer(raw[pos:pos + t.nbytes], dtype=t.dtype.np).reshape(t.shape))
            pos += t.nbytes
    assert pos == len(raw), (pos, len(raw))
    return {name: np.stack(v) for name, v in outs.items()}
