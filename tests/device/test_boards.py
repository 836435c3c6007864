"""The board registry (boards/*/board.toml -> Board) and `microgen boards`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from microgen.boards import BOARDS_DIR, FEATURES, board_names, get_board, list_boards, load_board
from microgen.cli import cli
from microgen.errors import BoardError, InvalidInputError

EXPECTED = {"qemu-cortex-m4", "qemu-cortex-m7", "qemu-cortex-m55", "qemu-riscv32", "stm32f746", "nucleo-l4r5zi",
            "nrf52840-dk", "esp32c3-devkitm"}


def test_every_board_file_loads():
    assert EXPECTED <= set(board_names())
    for board in list_boards():
        assert board.features <= set(FEATURES)
        assert board.stack_bytes + 1024 < board.ram.size
        assert not (board.flash.origin < board.ram.end and board.ram.origin < board.flash.end), board.name
        assert all(src.is_file() for src in board.sources)
        if board.boot_address is not None:
            assert board.flash.contains(board.boot_address)
        expected_unit = "cycles" if board.kind == "real" else "emulated_instructions"
        assert board.counter.unit == expected_unit and board.counter.scale > 0


@pytest.mark.parametrize("name, dsp, mve, fpu", [
    ("qemu-cortex-m4", True, False, True), ("qemu-cortex-m55", True, True, True),
    ("qemu-riscv32", False, False, False), ("stm32f746", True, False, True), ("esp32c3-devkitm", False, False, False),
])
def test_target_follows_the_board_features(name, dsp, mve, fpu):
    target = get_board(name).target()
    assert (target.name, target.dsp, target.mve, target.fpu) == (name, dsp, mve, fpu)


def test_emulated_boards_say_how_qemu_runs_them():
    for name, machine, scale in [("qemu-cortex-m4", "mps2-an386", 40.0), ("qemu-cortex-m7", "mps2-an500", 40.0),
                                 ("qemu-cortex-m55", "mps3-an547", 31.25), ("qemu-riscv32", "virt", 1.0)]:
        board = get_board(name)
        assert board.flasher.kind == "qemu" and board.flasher.machine == machine
        assert "-icount" in board.flasher.args and "shift=0" in board.flasher.args
        assert board.counter.scale == scale
    assert "-bios" in get_board("qemu-riscv32").flasher.args


def test_real_boards_have_a_flasher_and_a_baud_rate():
    for board in list_boards():
        if board.kind == "real":
            assert board.flasher.commands and board.uart.baud == 115200
            assert any("{elf}" in word or "{bin}" in word or "{hex}" in word
                       for cmd in board.flasher.commands for word in cmd)


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(InvalidInputError, match=r"unknown board 'nope': known boards are .*qemu-cortex-m4.*stm32f746"):
        get_board("nope")
    with pytest.raises(InvalidInputError, match="'host' builds for this machine"):
        get_board("host")


def _write_board(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "board.toml").write_text(text)
    return folder / "board.toml"


TOY = (BOARDS_DIR / "qemu-cortex-m4" / "board.toml").read_text().replace('"qemu-cortex-m4"', '"toy"').replace(
    '"../common/', f'"{BOARDS_DIR}/common/')


def test_a_copied_board_file_loads(tmp_path):
    board = load_board(_write_board(tmp_path, TOY))
    assert board.name == "toy" and board.ram.size == 0x400000


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("clock_hz", "clock"), r"missing key 'clock_hz'"),
    (lambda t: "flash_size = 1\n" + t, r"unknown key\(s\) flash_size"),
    (lambda t: t.replace('features = ["dsp", "fpu"]', 'features = ["neon"]'), r"unknown feature\(s\) \['neon'\]"),
    (lambda t: t.replace("stack_bytes = 16384", 'stack_bytes = "16k"'), r"'stack_bytes' must be int, not str"),
    (lambda t: t.replace('unit = "emulated_instructions"', 'unit = "cycles"'),
     r"counter unit is 'emulated_instructions'"),
    (lambda t: t.replace('name = "toy"', 'name = "other"'), r"must match its folder 'toy'"),
    (lambda t: t.replace("origin = 0x20000000, size", "origin = 0x20000000, bytes"), r"\[ram\]: missing key 'size'"),
])
def test_board_file_mistakes_are_named(tmp_path, edit, message):
    with pytest.raises(BoardError, match=message):
        load_board(_write_board(tmp_path, edit(TOY)))


def test_cli_boards_table():
    out = CliRunner().invoke(cli, ["boards"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["board", "kind", "cpu", "clock", "flash", "ram", "features", "counter"]
    row = next(line for line in lines if line.startswith("stm32f746 "))
    assert row.split()[:4] == ["stm32f746", "real", "cortex-m7", "216"]
    assert "1,024 KiB" in row and "320 KiB" in row and "dsp,fpu" in row and row.endswith("cycles")
    m55 = next(line for line in lines if line.startswith("qemu-cortex-m55 "))
    assert "dsp,fpu,mve" in m55 and "emulated_instructions" in m55


def test_cli_boards_json():
    out = CliRunner().invoke(cli, ["boards", "--json"])
    assert out.exit_code == 0, out.output
    data = {b["name"]: b for b in json.loads(out.output)}
    assert EXPECTED <= set(data)
    m4 = data["qemu-cortex-m4"]
    assert m4["ram"] == {"origin": 0x20000000, "size": 0x400000} and m4["features"] == ["dsp", "fpu"]
    assert m4["counter"]["unit"] == "emulated_instructions" and m4["counter"]["scale"] == 40.0
