"""The emulated boards end to end: firmware built, booted in QEMU, driven over the serial protocol.

validate (device outputs vs the reference executor) on the MLPerf Tiny models, profile determinism
and its JSON schema, and `microgen run --board`. Every test checks that no QEMU is left behind.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from microgen import pipeline, reference
from microgen.device import qemu
from microgen.testing.corpus import require_model, seeded_inputs
from microgen.testing.corpus import require_tools

pytestmark = pytest.mark.qemu

BOARDS = ["qemu-cortex-m4", "qemu-cortex-m7", "qemu-riscv32"]
MODELS = {"kws": "mlperf_tiny/kws_ref_model.tflite", "resnet8": "mlperf_tiny/pretrainedResnet_quant.tflite",
          "ad": "mlperf_tiny/ad01_int8.tflite"}
TOOLS = {"qemu-cortex-m4": ("qemu-system-arm", "arm-none-eabi-gcc"),
         "qemu-cortex-m7": ("qemu-system-arm", "arm-none-eabi-gcc"),
         "qemu-riscv32": ("qemu-system-riscv32", "riscv64-unknown-elf-gcc")}


def need_tools(board):
    require_tools(*TOOLS[board])


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", list(MODELS))
def test_validate_is_bit_exact(board, model, tmp_path, qemu_watch):
    need_tools(board)
    path = require_model(MODELS[model])
    result = pipeline.validate(path, board, samples=2, seed=1, build_dir=tmp_path)
    assert result.ok, result.text()
    assert result.samples == 2 and result.outputs
    assert len(qemu_watch) == 1


@pytest.mark.parametrize("board", BOARDS)
def test_profile_is_deterministic(board, tmp_path, qemu_watch):
    """Two profiles (two QEMU boots, one run each) give identical per-layer figures: -icount, plus the
    harness's phase lock on coarse counters (SysTick ticks every 40 instructions on the mps2 boards)."""
    need_tools(board)
    path = require_model(MODELS["kws"])
    result, brd, fw = pipeline.build_for_board(path, board, tmp_path)
    a = pipeline.profile_firmware(result, brd, fw.elf)
    b = pipeline.profile_firmware(result, brd, fw.elf)
    assert [l.cost for l in a.layers] == [l.cost for l in b.layers]
    assert a.total == b.total
    assert a.unit == "emulated_instructions"
    assert all(l.cost > 0 for l in a.layers)
    # The harness is excluded: what is not in any layer is only the invoke function's own glue.
    assert 0 <= a.total - a.layers_total < 100 * len(a.layers)
    assert len(qemu_watch) == 2


def microgen(*args):
    return subprocess.run([sys.executable, "-m", "microgen.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def qemu_running_from(directory) -> list[int]:
    """Pids of QEMU processes whose command line mentions `directory` (a child's build dir)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in text and str(directory) in text:
            pids.append(int(cmdline.parent.name))
    return pids


def test_profile_json_schema_and_html(tmp_path, qemu_watch):
    need_tools("qemu-cortex-m4")
    path = require_model(MODELS["ad"])
    html_path = tmp_path / "report.html"
    proc = microgen("profile", path, "--board", "qemu-cortex-m4", "--json", "--html", html_path,
                    "--build-dir", tmp_path / "build")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["unit"] == "emulated_instructions" and d["board"] == "qemu-cortex-m4"
    assert isinstance(d["total"], int) and d["total"] > 0
    assert [l["op"] for l in d["layers"]] == ["FULLY_CONNECTED"] * 10
    for layer in d["layers"]:
        assert {"op", "macs", "cost", "share", "cost_per_mac", "input_shapes", "output_shape"} <= set(layer)
        assert isinstance(layer["cost"], int) and layer["cost"] > 0 and layer["macs"] > 0
    assert d["macs"] == 264_192 == sum(l["macs"] for l in d["layers"])
    assert d["layers_total"] <= d["total"]
    page = html_path.read_text()
    assert page.count("<svg") == 2 and "emulated instructions" in page
    assert "src=" not in page and "<link" not in page  # self-contained
    assert not qemu_running_from(tmp_path)


def test_profile_text_names_the_unit(tmp_path, qemu_watch):
    need_tools("qemu-riscv32")
    proc = microgen("profile", require_model(MODELS["ad"]), "--board", "qemu-riscv32", "--repeats", "1",
                    "--build-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "emulated instructions" in proc.stdout and "FULLY_CONNECTED" in proc.stdout
    assert "cycles" in proc.stdout  # the note says QEMU figures are not cycles
    assert not qemu_running_from(tmp_path)


def test_run_board_cli_matches_reference(tmp_path, qemu_watch):
    need_tools("qemu-cortex-m4")
    path = require_model(MODELS["kws"])
    from microgen import importers

    graph = importers.load(path)
    t = graph.input_tensors()[0]
    x = seeded_inputs(t, 3, seed=5)
    np.save(tmp_path / "x.npy", x)
    proc = microgen("run", path, "--board", "qemu-cortex-m4", "--input", tmp_path / "x.npy",
                    "--output", tmp_path / "y.npy", "--build-dir", tmp_path / "build")
    assert proc.returncode == 0, proc.stderr
    want = reference.run_samples(graph, {t.name: x})[graph.outputs[0]]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    assert not qemu_running_from(tmp_path)


def test_validate_cli_exit_codes(tmp_path, qemu_watch, monkeypatch):
    """Exit 0 when every output matches, 1 on a mismatch (here: a reference made to disagree), 2 on a
    user error."""
    from click.testing import CliRunner

    from microgen.cli import cli

    need_tools("qemu-cortex-m4")
    args = ["validate", str(require_model(MODELS["ad"])), "--board", "qemu-cortex-m4", "--samples", "2",
            "--seed", "3", "--build-dir", str(tmp_path)]
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert "0 of 2 sample(s) differ" in ok.output and "OK" in ok.output

    real = reference.run_samples

    def off_by_one(graph, samples):
        out = real(graph, samples)
        first = out[graph.outputs[0]]
        first[1].flat[0] = first[1].flat[0] + 1 if first[1].flat[0] < 127 else 0
        return out

    monkeypatch.setattr(reference, "run_samples", off_by_one)
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 1, bad.output
    assert "1 of 2 sample(s) differ" in bad.output and "MISMATCH" in bad.output
    assert len(qemu_watch) == 2

    user = microgen("validate", require_model(MODELS["ad"]), "--board", "no-such-board")
    assert user.returncode == 2 and "unknown board 'no-such-board'" in user.stderr


def test_real_board_path_over_a_serial_port(tmp_path, qemu_watch):
    """The real-board code path without a board: QEMU plays the chip, a pty plays its USB serial port
    (bytes bridged to QEMU's socket), and a no-op flasher "programs" it. The banner is flushed away
    when the port opens, so this also covers the resync-by-PING start used for real boards."""
    import dataclasses
    import os
    import select
    import socket
    import threading
    import tty

    from microgen.boards import Flasher
    from microgen.device import connect, runner

    need_tools("qemu-cortex-m4")
    path = require_model(MODELS["ad"])
    result, emulated, fw = pipeline.build_for_board(path, "qemu-cortex-m4", tmp_path)
    real = dataclasses.replace(emulated, name="fake-real-board", kind="real",
                               flasher=Flasher(kind="openocd", commands=(("true", "{elf}"),)))
    master, slave = os.openpty()
    tty.setraw(slave)
    machine, extra = connect.qemu_options(emulated)
    port = qemu.free_port()
    proc = qemu.QemuProcess(qemu.qemu_argv(emulated.flasher.program, machine, extra, fw.elf, port), "chip", port)
    stop = threading.Event()

    def bridge():
        for _ in range(500):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                stop.wait(0.01)
        with sock:
            while not stop.is_set():
                ready, _, _ = select.select([sock, master], [], [], 0.05)
                for r in ready:
                    data = sock.recv(4096) if r is sock else os.read(master, 4096)
                    if not data:
                        return
                    (os.write(master, data) if r is sock else sock.sendall(data))

    thread = threading.Thread(target=bridge, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the chip boots and prints its banner before the host opens the port
        with connect.open_board(real, fw.elf, port=os.ttyname(slave), timeout=3.0) as session:
            assert session.link.name.startswith("/dev/pts/")
            runner.check_firmware(session, result.graph, result.project.name)
            x = seeded_inputs(result.graph.input_tensors()[0], 2, seed=2)
            got = runner.run_samples(session, result.graph, {result.graph.inputs[0]: x}, timeout=5.0)
            session.exit()
        want = reference.run_samples(result.graph, {result.graph.inputs[0]: x})
        np.testing.assert_array_equal(got[result.graph.outputs[0]], want[result.graph.outputs[0]])
    finally:
        stop.set()
        thread.join(2)
        proc.stop()
        os.close(master)
        os.close(slave)


def test_real_board_needs_a_port_and_its_flasher(tmp_path):
    from microgen.boards import get_board
    from microgen.device import connect
    from microgen.errors import BoardError

    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(BoardError, match=r"stm32f746 is a real board: give its serial port with --port"):
        connect.open_board(get_board("stm32f746"), elf)
    if shutil.which("st-flash") is None:
        with pytest.raises(BoardError, match=r"flashing stm32f746 needs st-flash, which is not installed"):
            connect.open_board(get_board("stm32f746"), elf, port="/dev/ttyACM0")
