"""Byte links to a board: a serial port (/dev/ttyACM0) or QEMU's UART on a TCP socket.

Both go through pyserial's `serial_for_url`, so one code path serves real and emulated boards. A
transport only moves bytes with explicit timeouts; framing lives in protocol.py.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Protocol

from ..errors import BoardError


class Transport(Protocol):
    """What a session needs from a link. `name` is the port or URL, used in every error message."""

    name: str

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to max_bytes: waits at most `timeout` s for the first byte, then takes what is there."""
        ...

    def close(self) -> None: ...


class SerialTransport:
    """A pyserial port opened with serial_for_url (a device path or socket://host:port)."""

    def __init__(self, port, name: str) -> None:
        self._port = port
        self.name = name

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as e:
            raise BoardError(f"write to {self.name} failed: {e}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        import serial

        sock = getattr(self._port, "_socket", None)
        try:
            if sock is not None:
                # One select + recv: pyserial's socket read() raises on EOF and drops the bytes it
                # already received in that call, which would lose a FAULT line printed just before
                # QEMU exits.
                ready, _, _ = select.select([sock], [], [], max(timeout, 0.0))
                if not ready:
                    return b""
                data = sock.recv(max_bytes)
                if not data:
                    raise BoardError(f"{self.name} closed the connection")
                return data
            self._port.timeout = max(timeout, 0.0)
            first = self._port.read(1)
            if not first:
                return b""
            waiting = min(self._port.in_waiting, max_bytes - 1)
            return first + (self._port.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError) as e:
            raise BoardError(f"read from {self.name} failed: {e}") from None

    def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        sock = getattr(port, "_socket", None)
        if sock is not None:
            # pyserial's socket close() sleeps 0.3 s "for quick reconnects"; QEMU needs no such wait.
            try:
                sock.close()
            except OSError:
                pass
            port._socket = None
            port.is_open = False
            return
        try:
            port.close()
        except Exception:  # closing a port whose device vanished must not mask the real error
            pass


def open_serial(url: str, baudrate: int = 115200, connect_timeout: float = 0.0,
                alive=None) -> SerialTransport:
    """Open `url` (a device path like /dev/ttyACM0, or socket://127.0.0.1:PORT) and flush its input.

    For sockets, connection attempts are retried until `connect_timeout` s have passed (QEMU may not
    be listening yet) as long as `alive()` (if given) is true; TCP_NODELAY is set, since the protocol
    is many small round trips (17 ms instead of 170 ms for three).
    """
    import serial

    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=10)
            break
        except (serial.SerialException, OSError, ValueError) as e:
            still_alive = alive is None or alive()
            if time.monotonic() >= deadline or not still_alive:
                raise BoardError(f"cannot open {url}: {e}") from None
            time.sleep(0.005)
    sock = getattr(port, "_socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        # A board that was already running may have left a partial frame in the OS buffer.
        port.reset_input_buffer()
    return SerialTransport(port, url)
