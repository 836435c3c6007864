"""Bringing a board up with a firmware and returning a synced Session: QEMU for emulated boards, the
flasher and a serial port for real ones. The same Session serves both afterwards."""

from __future__ import annotations

import os
from typing import Sequence

from ..errors import BoardError
from . import qemu
from .flashers import check_tools, flash, flash_commands
from .session import Session
from .transport import open_serial


def qemu_options(board) -> tuple[str, list[str]]:
    """(machine, options) for `board`'s QEMU: -cpu if the board file gives one, then its args
    (qemu.qemu_argv adds what every run needs)."""
    fl = board.flasher
    return fl.machine, (["-cpu", fl.cpu] if fl.cpu else []) + list(fl.args)


def open_board(board, elf: str | os.PathLike, port: str | None = None, timeout: float = 5.0,
               baudrate: int | None = None) -> Session:
    """Boot `elf` on `board` and return a Session that has seen the board come up.

    Emulated boards: QEMU is started here and stopped when the session closes. Real boards: `port`
    (e.g. /dev/ttyACM0) is opened at the board's baud rate first, so the boot banner is not missed,
    then the flasher runs; a board whose banner we missed anyway is resynchronised with a PING.
    """
    if board.kind == "emulated":
        return _open_qemu(board, elf, timeout)
    if not port:
        raise BoardError(f"{board.name} is a real board: give its serial port with --port "
                         f"(e.g. /dev/ttyACM0); its UART is {board.uart.name}")
    # Fail on a missing flasher before touching the port.
    check_tools(board, flash_commands(board, elf, port))
    link = open_serial(port, baudrate or board.uart.baud)
    session = Session(link, board.name, timeout, arch=board.arch)
    try:
        flash(board, elf, port)
        session.wait_boot(timeout, banner_wait=min(2.0, timeout))
    except BaseException:
        session.close()
        raise
    return session


def _open_qemu(board, elf, timeout: float) -> Session:
    machine, extra = qemu_options(board)
    proc, link = qemu.launch(board.flasher.program, machine, extra, elf, board.name, connect_timeout=timeout)
    session = Session(link, board.name, timeout, on_close=proc.stop,
                      exited=lambda: None if proc.alive() else proc.describe_exit(), arch=board.arch)
    try:
        session.wait_boot(timeout)
    except BaseException:
        session.close()
        raise
    return session


def qemu_command(board, elf: str | os.PathLike, port: int) -> Sequence[str]:
    """The full QEMU command line (for messages and docs)."""
    machine, extra = qemu_options(board)
    return qemu.qemu_argv(board.flasher.program, machine, extra, elf, port)
