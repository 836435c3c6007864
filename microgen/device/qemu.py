"""Launching an emulated board: QEMU with the firmware as -kernel and its UART on a loopback socket.

QEMU runs with `-icount shift=0` (virtual time = executed instructions, so counters are
deterministic) and `wait=on` (the guest starts only once we connect, so the boot banner is not lost).
Every QEMU runs in its own session and is always reaped: `stop()` waits for it to exit (the firmware
ends it on EXIT), then SIGTERM, then SIGKILL, waiting after each.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import BoardError
from .transport import SerialTransport, open_serial

_LIVE: set["QemuProcess"] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (QEMU may still lose it to a race: retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Options every run needs, added when the board file's args do not already give them: virtual time
# = executed instructions, no display, monitor or default devices, and exit instead of reset.
REQUIRED = (("-icount", "shift=0"), ("-display", "none"), ("-monitor", "none"), ("-nodefaults",),
            ("-no-reboot",))


def qemu_argv(binary: str, machine: str, extra: Sequence[str], elf: str | os.PathLike, port: int) -> list[str]:
    """The QEMU command line for one run (`extra`: board options such as -cpu, -bios none)."""
    argv = [binary, "-M", machine, *extra]
    for opt in REQUIRED:
        if opt[0] not in argv:
            argv += opt
    return argv + ["-kernel", str(elf),
                   "-chardev", f"socket,id=ser0,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
                   "-serial", "chardev:ser0"]


class QemuProcess:
    """One running QEMU. Use as a context manager, or call stop(); both always reap the process."""

    def __init__(self, argv: list[str], board: str, port: int) -> None:
        self.board = board
        self.port = port
        self.url = f"socket://127.0.0.1:{port}"
        self.argv = argv
        fd, log = tempfile.mkstemp(prefix="microgen-qemu-", suffix=".log")
        self._log_path = Path(log)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        except OSError as e:
            self._log_path.unlink(missing_ok=True)
            raise BoardError(f"cannot start {argv[0]} for {board}: {e}") from None
        finally:
            os.close(fd)
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, limit: int = 2000) -> str:
        """The tail of what QEMU printed (errors such as 'qemu: fatal: Lockup')."""
        try:
            return self._log_path.read_text(errors="replace")[-limit:].strip()
        except OSError:
            return ""

    def describe_exit(self) -> str:
        """'QEMU for B exited with status N: <its own complaint>' (its 'qemu...:' lines when there are
        any, such as 'qemu: fatal: Lockup'; else the tail of what it printed)."""
        rc = self.proc.poll()
        text = self.output(20000)
        said = [line.strip() for line in text.splitlines()
                if line.startswith("qemu") and ": info:" not in line and ": warning:" not in line]
        out = " / ".join(said)[:400] if said else " ".join(text[-300:].split())
        how = f"died of {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exited with status {rc}"
        return f"QEMU for {self.board} {how}" + (f": {out}" if out else "")

    def stop(self, grace: float = 1.0) -> int | None:
        """End QEMU and reap it: wait `grace` s for it to exit by itself, then SIGTERM, then SIGKILL."""
        if self in _LIVE:
            _LIVE.discard(self)
            for sig, wait in ((None, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
                if sig is not None and self.proc.poll() is None:
                    try:
                        os.killpg(self.proc.pid, sig)  # its own session: QEMU and nothing else
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self._log_path.unlink(missing_ok=True)
        return self.proc.returncode

    def __enter__(self) -> "QemuProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop(grace=0.2)


def live_processes() -> list[QemuProcess]:
    """QEMU processes started here and not yet reaped (tests check this is empty)."""
    return list(_LIVE)


@atexit.register
def _reap_all() -> None:
    for q in list(_LIVE):
        q.stop(grace=0.0)


def launch(binary: str, machine: str, extra: Sequence[str], elf: str | os.PathLike, board: str,
           connect_timeout: float = 5.0, attempts: int = 5) -> tuple[QemuProcess, SerialTransport]:
    """Start QEMU for `elf` and connect to its UART. Retries with a new port when QEMU reports the port
    taken; raises BoardError naming the board and QEMU's own message when QEMU fails to start."""
    if not Path(elf).is_file():
        raise BoardError(f"firmware {elf} not found (board {board})")
    from shutil import which

    if which(binary) is None:
        raise BoardError(f"{binary} not found: board {board} needs it (Debian: apt-get install "
                         f"{'qemu-system-misc' if 'riscv' in binary else 'qemu-system-arm'})")
    last = ""
    for _ in range(attempts):
        port = free_port()
        qemu = QemuProcess(qemu_argv(binary, machine, extra, elf, port), board, port)
        try:
            link = open_serial(qemu.url, connect_timeout=connect_timeout, alive=qemu.alive)
            return qemu, link
        except BoardError as e:
            qemu.stop(grace=0.0)
            last = qemu.describe_exit() if qemu.proc.returncode not in (None, -signal.SIGTERM) else str(e)
            if "Address already in use" in last or "Failed to bind" in last:
                continue
            raise BoardError(f"{board}: {last}") from None
        except BaseException:
            qemu.stop(grace=0.0)
            raise
    raise BoardError(f"{board}: no free TCP port for QEMU after {attempts} attempts ({last})")
