"""Firmware projects: every board cross-compiles the KWS model cleanly and passes check_elf; models that
do not fit raise DoesNotFitError naming the region and the excess; the emulated boards boot the stub
firmware (tests/device/stub_main.c) under QEMU, print over a TCP serial link, run KWS once and exit."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from microgen import pipeline, reference
from microgen.boards import Region, get_board, list_boards
from microgen.device.firmware import HEADROOM_BYTES, build_firmware, check_elf, emit_firmware
from microgen.errors import BoardError, DoesNotFitError
from microgen.testing.corpus import require_model
from microgen.testing.corpus import require_tools

STUB = Path(__file__).with_name("stub_main.c")
KWS = "mlperf_tiny/kws_ref_model.tflite"
BOARDS = [b.name for b in list_boards()]
QEMU_BOARDS = [b.name for b in list_boards() if b.kind == "emulated"]


def _toolchain(board) -> None:
    require_tools(board.compiler)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("board-objects")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A model library per (model, code-generation features), built once per module: boards with the
    same dsp/mve/fpu features share it, as the generated C depends on nothing else."""
    built = {}

    def get(rel: str, board):
        target = board.target()
        key = (rel, target.dsp, target.mve, target.fpu)
        if key not in built:
            out = tmp_path_factory.mktemp(Path(rel).stem)
            built[key] = pipeline.build(require_model(rel), out, target=target)
        return built[key]
    return get


@pytest.fixture(scope="module")
def kws_firmware(tmp_path_factory, cache_dir, library):
    """KWS + stub firmware for a board, built once per module; returns (build result, firmware)."""
    built = {}

    def get(name: str):
        if name not in built:
            board = get_board(name)
            _toolchain(board)
            result = library(KWS, board)
            fw = build_firmware(result, board, tmp_path_factory.mktemp(name), harness=STUB, cache_dir=cache_dir,
                                extra_cflags=("-DMG_STUB_PATTERN",))
            built[name] = (result, fw)
        return built[name]
    return get


@pytest.mark.parametrize("name", BOARDS)
def test_kws_cross_compiles_cleanly_and_passes_check_elf(kws_firmware, name):
    board = get_board(name)
    result, fw = kws_firmware(name)
    assert fw.warnings == ""
    assert fw.elf.is_file() and fw.arena >= result.plan.arena_size and fw.stack == board.stack_bytes
    report = check_elf(fw.elf, board, arena_bytes=result.plan.arena_size)
    assert board.ram.contains(report.arena_start, report.arena_size)
    assert report.stack_start + report.stack_size == board.ram.end
    if board.arch == "arm":
        assert report.sections[0].name == ".isr_vector" and report.sections[0].vma == board.boot_address
    # What the project says is what was built: the Makefile names the board's compiler and flags.
    makefile = (fw.project_dir / "Makefile").read_text()
    assert board.compiler in makefile and " ".join(board.cflags) in makefile


def test_rebuild_compiles_only_the_model(kws_firmware, cache_dir):
    result, fw = kws_firmware("qemu-cortex-m4")
    again = build_firmware(result, get_board("qemu-cortex-m4"), fw.project_dir, harness=STUB,
                           cache_dir=cache_dir, extra_cflags=("-DMG_STUB_PATTERN",))
    assert sorted(Path(s).name for s in again.compiled) == ["kws_ref_model.c", "mg_model_glue.c"]
    assert again.text == fw.text and again.arena == fw.arena


def test_makefile_builds_the_same_firmware(kws_firmware):
    result, fw = kws_firmware("stm32f746")
    proc = subprocess.run(["make", "-C", str(fw.project_dir), "clean", "all"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr.lower()
    check_elf(fw.elf, get_board("stm32f746"), arena_bytes=result.plan.arena_size)


def test_tiny_regions_name_the_region_and_the_excess(kws_firmware, tmp_path):
    result, _ = kws_firmware("qemu-cortex-m4")
    board = get_board("qemu-cortex-m4")
    tiny_ram = dataclasses.replace(board, ram=Region(board.ram.origin, 8192))
    need = result.plan.arena_size + board.stack_bytes + HEADROOM_BYTES
    with pytest.raises(DoesNotFitError, match=rf"RAM needs {need:,} B .* has 8,192 B: {need - 8192:,} B over"):
        emit_firmware(result, tiny_ram, tmp_path / "ram", harness=STUB)
    tiny_flash = dataclasses.replace(board, flash=Region(board.flash.origin, 16384))
    with pytest.raises(DoesNotFitError, match=r"flash needs [\d,]+ B \(weights 31,280 .* B over") as e:
        emit_firmware(result, tiny_flash, tmp_path / "flash", harness=STUB)
    assert "RAM" not in str(e.value)


def test_exact_fit_check_counts_code(kws_firmware, tmp_path, cache_dir):
    """Weights alone fit, code and weights together do not: caught after compiling, before linking."""
    result, fw = kws_firmware("qemu-cortex-m4")
    board = get_board("qemu-cortex-m4")
    flash = fw.text - 1024      # the image minus 1 KiB: weights + headroom fit, the whole does not
    small = dataclasses.replace(board, flash=Region(board.flash.origin, flash))
    with pytest.raises(DoesNotFitError, match=r"flash needs [\d,]+ B \(code [\d,]+ \+ constants"):
        build_firmware(result, small, tmp_path / "fw", harness=STUB, cache_dir=cache_dir)


def test_check_elf_reports_a_wrong_board(kws_firmware):
    _, fw = kws_firmware("qemu-cortex-m4")
    other = get_board("qemu-cortex-m4")
    moved = dataclasses.replace(other, ram=Region(0x20000000, 0x00200000))
    with pytest.raises(BoardError, match=r"initial SP 0x20400000 is not the top of RAM 0x20200000"):
        check_elf(fw.elf, moved)
    with pytest.raises(BoardError, match=r"not a Thumb|vector table"):
        check_elf(fw.elf, dataclasses.replace(other, flash=Region(0x08000000, 0x100000), boot_address=0x08000000))


def test_missing_harness_is_a_board_error(kws_firmware, tmp_path):
    result, _ = kws_firmware("qemu-cortex-m4")
    with pytest.raises(BoardError, match="harness .*nope.c not found"):
        emit_firmware(result, get_board("qemu-cortex-m4"), tmp_path, harness=tmp_path / "nope.c")


# ---- booting the emulated boards -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reap(proc: subprocess.Popen) -> None:
    """Wait, then SIGTERM, then SIGKILL, the whole session QEMU runs in."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
        try:
            proc.wait(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_in_qemu(board, elf: Path, timeout: float = 30.0, until: str = "stub: done") -> tuple[list[str], int]:
    """Start QEMU with the board UART on a loopback TCP socket, read lines until one starts with
    `until`; returns them and QEMU's exit status."""
    import serial

    f = board.flasher
    for _ in range(5):     # another process may take the port between probe and bind: retry
        port = _free_port()
        cmd = [f.program, "-M", f.machine, *(["-cpu", f.cpu] if f.cpu else []), "-kernel", str(elf), *f.args,
               "-chardev", f"socket,id=ser0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
               "-serial", "chardev:ser0", "-monitor", "none"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            link = None
            deadline = time.monotonic() + 10
            while link is None and proc.poll() is None and time.monotonic() < deadline:
                try:
                    link = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=timeout)
                except serial.SerialException:
                    time.sleep(0.02)
            if link is None:
                err = proc.stderr.read().decode() if proc.poll() is not None else ""
                if "Address already in use" in err:
                    continue
                raise AssertionError(f"{board.name}: no serial link on port {port}: {err}")
            lines = []
            with link:
                while not lines or not lines[-1].startswith(until):
                    raw = link.readline()
                    assert raw.endswith(b"\n"), f"{board.name}: timed out after {lines}"
                    lines.append(raw.decode().strip())
            return lines, proc.wait(timeout=timeout)
        finally:
            _reap(proc)
    raise AssertionError(f"{board.name}: no free port after 5 tries")


@pytest.mark.qemu
@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_stub_boots_and_runs_kws_in_qemu(kws_firmware, name):
    board = get_board(name)
    if not shutil.which(board.flasher.program):
        pytest.skip(f"{board.flasher.program} not installed")
    result, fw = kws_firmware(name)
    lines, rc = _run_in_qemu(board, fw.elf)
    assert lines[0] == f"stub: boot {name} kws_ref_model arena {result.plan.arena_size}"
    status = re.fullmatch(r"stub: rc=(\d+) layers=(\d+)/(\d+) count=(\d+)", lines[1])
    assert status, lines
    assert status.group(1) == "0" and status.group(2) == status.group(3) != "0"
    assert int(status.group(4)) > 0
    assert rc == 0

    # Same input as the stub (byte j = 7 j + 3): the reference executor is the oracle.
    graph = result.graph
    samples = {}
    for tname in graph.inputs:
        t = graph.tensors[tname]
        raw = (np.arange(t.nbytes, dtype=np.uint32) * 7 + 3).astype(np.uint8)
        samples[tname] = raw.view(t.dtype.np).reshape((1, *t.shape))
    expected = b"".join(np.ascontiguousarray(v[0]).tobytes() for v in reference.run_samples(graph, samples).values())
    assert lines[2] == "stub: out=" + expected.hex()


@pytest.mark.qemu
@pytest.mark.parametrize("name, cause", [
    ("qemu-cortex-m4", r"cfsr=0x0000[0-9a-f]{2}00 hfsr=0x40000000"),   # precise BusFault, forced to HardFault
    ("qemu-cortex-m55", r"cfsr=0x0000[0-9a-f]{2}00 hfsr=0x40000000"),
    ("qemu-riscv32", r"cfsr=0x00000005 hfsr=0xf0000000"),                # load access fault; mtval = address
], ids=["m4", "m55", "riscv32"])
def test_a_fault_prints_the_fault_line_and_exits(library, tmp_path, cache_dir, name, cause):
    board = get_board(name)
    if not shutil.which(board.flasher.program):
        pytest.skip(f"{board.flasher.program} not installed")
    _toolchain(board)
    result = library("tflm/hello_world_int8.tflite", board)
    fw = build_firmware(result, board, tmp_path / "fw", harness=STUB, cache_dir=cache_dir,
                        extra_cflags=("-DMG_STUB_FAULT=0xF0000000u",))
    lines, rc = _run_in_qemu(board, fw.elf, until="FAULT")
    assert re.fullmatch(r"FAULT pc=0x[0-9a-f]{8} lr=0x[0-9a-f]{8} " + cause, lines[-1]), lines
    pc = int(lines[-1].split()[1].split("=")[1], 16)
    assert board.flash.contains(pc & ~1)
    assert rc == (3 if board.arch == "riscv" else 0)   # Cortex-M exits through SYSRESETREQ: QEMU says 0


def _microgen(*args):
    return subprocess.run([sys.executable, "-m", "microgen.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_build_for_a_board_emits_the_firmware_project(tmp_path):
    model = require_model(KWS)
    proc = _microgen("build", model, "--board", "nrf52840-dk", "-o", tmp_path)
    assert proc.returncode == 0, proc.stderr
    fw = tmp_path / "firmware"
    for name in ("Makefile", "link.ld", "mg_board_config.h", "mg_model_glue.c", "runtime/mg_board.h",
                 "runtime/mg_model.h", "runtime/mg_harness.c", "boards/nrf52840-dk/board.c"):
        assert (fw / name).is_file(), name
    assert "ORIGIN = 0x20000000, LENGTH = 0x00040000" in (fw / "link.ld").read_text()
    assert "nrfjprog -f nrf52 --program $(HEX)" in (fw / "Makefile").read_text()


def test_cli_build_names_the_region_a_model_overflows(tmp_path):
    proc = _microgen("build", require_model("mlperf_tiny/vww_96_float.tflite"), "--board", "esp32c3-devkitm",
                     "-o", tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.fullmatch(r"error: vww_96_float does not fit board esp32c3-devkitm: RAM needs [\d,]+ B \(.*\) "
                        r"but has 313,104 B: [\d,]+ B over", proc.stderr.strip()), proc.stderr
