"""Putting firmware on a real board: the flasher command lines from its board file.

A board file's [flasher] lists argv lists (openocd, pyocd, st-flash, nrfjprog, esptool, and the
objcopy step that some of them need) with placeholders:

    {elf}   the firmware ELF            {bin}  a raw binary beside it (objcopy -O binary)
    {hex}   an Intel HEX beside it      {port} the board's serial port (esptool writes through it)

Each command runs in order with a timeout; a missing tool or a failing command raises BoardError
naming the board, the tool and, for failures, the tool's own last words.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import BoardError

INSTALL_HINTS = {
    "openocd": "apt-get install openocd",
    "pyocd": "pip install pyocd",
    "st-flash": "apt-get install stlink-tools",
    "nrfjprog": "Nordic's nRF Command Line Tools",
    "esptool.py": "pip install esptool",
    "esptool": "pip install esptool",
}


def flash_commands(board, elf: str | os.PathLike, port: str | None) -> list[list[str]]:
    """The argv lists that flash `elf` onto `board`, placeholders filled in."""
    elf = Path(elf)
    values = {"elf": str(elf), "bin": str(elf.with_suffix(".bin")), "hex": str(elf.with_suffix(".hex")),
              "port": port or ""}
    commands = []
    for argv in board.flasher.commands:
        if any("{port}" in a for a in argv) and not port:
            raise BoardError(f"flashing {board.name} with {argv[0]} needs the serial port: give --port "
                             f"(e.g. /dev/ttyUSB0)")
        try:
            commands.append([a.format(**values) for a in argv])
        except (KeyError, IndexError, ValueError) as e:
            raise BoardError(f"board {board.name}: flasher command {' '.join(argv)!r} has an unknown "
                             f"placeholder ({e}); known: {', '.join('{' + k + '}' for k in values)}") from None
    if not commands:
        raise BoardError(f"board {board.name} has no flasher commands in {board.directory / 'board.toml'}")
    return commands


def check_tools(board, commands: list[list[str]]) -> None:
    """BoardError naming the first tool of `commands` that is not installed."""
    for argv in commands:
        if shutil.which(argv[0]) is None:
            hint = INSTALL_HINTS.get(Path(argv[0]).name)
            raise BoardError(f"flashing {board.name} needs {argv[0]}, which is not installed"
                             + (f" ({hint})" if hint else ""))


def flash(board, elf: str | os.PathLike, port: str | None = None, timeout: float = 120.0) -> None:
    """Run the board's flasher commands for `elf`. Returns once the board has been programmed (and,
    for flashers that reset it, restarted)."""
    if not Path(elf).is_file():
        raise BoardError(f"firmware {elf} not found (board {board.name})")
    commands = flash_commands(board, elf, port)
    check_tools(board, commands)
    for argv in commands:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BoardError(f"flashing {board.name}: {argv[0]} did not finish within {timeout:.0f} s "
                             f"(is the board connected and powered?)") from None
        if proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).split())[-400:]
            raise BoardError(f"flashing {board.name}: {argv[0]} failed with status {proc.returncode}: {tail}")
