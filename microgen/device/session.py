"""A conversation with the measurement firmware over one link: sync, then commands with timeouts.

    with Session(link, board="qemu-cortex-m4") as s:
        s.wait_boot(timeout=5.0)
        info = s.info()
        s.load_input(0, data); result = s.run(); y = s.read_output(0, nbytes)

Every command waits for the reply with its own seq and at most its timeout. Failures raise
MicrogenError subclasses naming the link, the board and the timeout: DeviceTimeoutError when nothing
(valid) came back, BoardError for a reported HardFault, a corrupted frame, an error frame or an
unexpected reboot. The session never exits the process and never leaves the link open.
"""

from __future__ import annotations

import time
from typing import Callable

from ..errors import BoardError, DeviceTimeoutError
from . import protocol as P
from .transport import Transport

CHUNK = P.MAX_PAYLOAD - 8       # LOAD_INPUT data bytes per frame (header: index u16, offset u32)
PROFILE_CHUNK = P.MAX_PAYLOAD // 8


class Session:
    """Owns `link` (closed by close()); `on_close` runs after it (e.g. to stop QEMU)."""

    def __init__(self, link: Transport, board: str, timeout: float = 5.0,
                 on_close: Callable[[], None] | None = None, exited: Callable[[], str | None] | None = None,
                 arch: str = "arm"):
        self.link = link
        self.board = board
        self.arch = arch               # how to read a FAULT line: "arm" or "riscv"
        self.timeout = timeout
        self._on_close = on_close
        self._exited = exited          # returns a description once the board's process has ended
        self._decoder = P.FrameDecoder()
        self._frames: list[P.Frame] = []
        self._seq = 0
        self._bad: P.BadFrame | None = None
        self.info_cache: P.Info | None = None

    # ---- plumbing ----

    def where(self) -> str:
        return f"{self.link.name} ({self.board})"

    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1
        return self._seq

    def _pump(self, deadline: float, what: str, own) -> None:
        """Read once (until data or the deadline) and turn what arrived into frames. Raises on a FAULT
        line, on a corrupted frame whose intact header says it is the awaited reply (`own(type, seq)`),
        and on a board whose process has ended. Other broken frames (noise that looked like a start
        marker) are remembered in self._bad and reported only if no valid reply comes."""
        left = deadline - time.monotonic()
        try:
            data = self.link.read(4096, min(max(left, 0.0), 0.05)) if left > 0 else b""
        except BoardError:
            # The link broke: if the board's process ended, its exit says more than the socket.
            gone = self._gone(wait=1.0)
            if gone:
                raise BoardError(f"{self.board} stopped {what}: {gone}") from None
            raise
        events = self._decoder.feed(data) if data else []
        if not data and time.monotonic() >= deadline:
            events = self._decoder.abandon_partial()
        for ev in events:
            if isinstance(ev, P.Fault):
                raise BoardError(f"{P.describe_fault(ev, self.arch)} on {self.where()} {what}")
            if isinstance(ev, P.BadFrame):
                self._bad = ev
                if own is not None and len(ev.raw) >= P.HEADER and own(ev.raw[3], ev.raw[4]):
                    raise BoardError(f"corrupted frame from {self.where()} {what}: {ev.reason}")
                continue
            self._frames.append(ev)
        if not data:
            gone = self._gone()
            if gone:
                raise BoardError(f"{self.board} stopped {what}: {gone}")

    def _gone(self, wait: float = 0.0) -> str | None:
        """A description of how the board's process ended, or None while it runs (or is not ours)."""
        if self._exited is None:
            return None
        end = time.monotonic() + wait
        while True:
            gone = self._exited()
            if gone or time.monotonic() >= end:
                return gone
            time.sleep(0.01)

    def _wait_for(self, match: Callable[[P.Frame], bool], timeout: float, what: str,
                  own: Callable[[int, int], bool] | None = None) -> P.Frame:
        """The first frame `match` accepts, within `timeout` s. With `own` (a reply's type and seq),
        broken frames count: one that is ours fails at once, and if only broken ones came, the error
        says "corrupted frame" rather than "no answer"."""
        deadline = time.monotonic() + timeout
        self._bad = None
        while True:
            for i, frame in enumerate(self._frames):
                if match(frame):
                    del self._frames[:i + 1]
                    return frame
            self._frames.clear()
            if time.monotonic() >= deadline:
                if own is not None and self._bad is not None:
                    raise BoardError(f"corrupted frame from {self.where()} {what}: {self._bad.reason}")
                raise DeviceTimeoutError(f"no answer on {self.where()} after {timeout:.1f} s {what}"
                                         + self._heard())
            self._pump(deadline, what, own)

    def command(self, type_: P.Type, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one command and return its reply payload."""
        timeout = self.timeout if timeout is None else timeout
        seq = self._next_seq()
        what = f"(waiting for the {type_.name} reply)"
        self.link.write(P.encode(type_, seq, payload))

        def ours(type_of: int, seq_of: int) -> bool:
            return seq_of == seq and type_of in (type_ | P.REPLY, P.Type.ERROR)

        def mine(f: P.Frame) -> bool:
            if f.type == P.Type.BOOT:
                raise BoardError(f"{self.board} rebooted during {type_.name} on {self.link.name}")
            return ours(f.type, f.seq)

        frame = self._wait_for(mine, timeout, what, own=ours)
        if frame.type == P.Type.ERROR:
            raise BoardError(f"{self.where()} rejected {type_.name}: {P.parse_error(frame.payload)}")
        return frame.payload

    # ---- boot and sync ----

    def wait_boot(self, timeout: float | None = None, banner_wait: float | None = None) -> None:
        """Wait for the BOOT banner, or (after `banner_wait` s, for boards that booted before we
        listened) resynchronise with zero bytes and a PING. Noise and broken frames before the board
        is up are ignored; a FAULT line is not."""
        timeout = self.timeout if timeout is None else timeout
        banner_wait = timeout if banner_wait is None else min(banner_wait, timeout)
        start = time.monotonic()
        what = "(waiting for the boot banner)"
        try:
            self._wait_for(lambda f: f.type == P.Type.BOOT, banner_wait, what)
            return
        except DeviceTimeoutError:
            if banner_wait >= timeout:
                raise
        self.resync(timeout - (time.monotonic() - start))

    def resync(self, timeout: float | None = None) -> None:
        """Complete any partial frame the board is waiting on (zero bytes), then PING until it answers."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + max(timeout, 0.0)
        self.link.write(bytes(P.MAX_FRAME))
        token = bytes([0x4D, 0x47, self._seq])
        while True:
            seq = self._next_seq()
            self.link.write(P.encode(P.Type.PING, seq, token))
            try:
                self._wait_for(lambda f: f.seq == seq and f.type == P.Type.PING | P.REPLY and f.payload == token,
                               min(0.5, max(deadline - time.monotonic(), 0.0)), "(resync)")
                return
            except DeviceTimeoutError:
                if time.monotonic() >= deadline:
                    raise DeviceTimeoutError(f"no answer on {self.where()} after {timeout:.1f} s (resync)"
                                             + self._heard()) from None

    def _heard(self) -> str:
        noise = self._decoder.noise[-80:]
        return f"; it sent only {noise!r}" if noise else ""

    # ---- commands ----

    def ping(self, payload: bytes = b"ping") -> bytes:
        return self.command(P.Type.PING, payload)

    def info(self) -> P.Info:
        payload = self.command(P.Type.INFO)
        try:
            self.info_cache = P.parse_info(payload)
        except ValueError as e:
            raise BoardError(f"corrupted frame from {self.where()}: INFO reply: {e}") from None
        if self.info_cache.version != P.VERSION:
            raise BoardError(f"{self.where()} speaks protocol {self.info_cache.version}, microgen "
                             f"{P.VERSION}: rebuild the firmware")
        return self.info_cache

    def load_input(self, index: int, data: bytes) -> None:
        for offset in range(0, len(data), CHUNK):
            self.command(P.Type.LOAD_INPUT, P.load_input(index, offset, data[offset:offset + CHUNK]))

    def run(self, timeout: float | None = None) -> P.RunResult:
        payload = self.command(P.Type.RUN, timeout=timeout)
        try:
            return P.parse_run(payload)
        except ValueError as e:
            raise BoardError(f"corrupted frame from {self.where()}: {e}") from None

    def read_output(self, index: int, nbytes: int) -> bytes:
        out = bytearray()
        while len(out) < nbytes:
            n = min(P.MAX_PAYLOAD, nbytes - len(out))
            chunk = self.command(P.Type.READ_OUTPUT, P.read_output(index, len(out), n))
            if len(chunk) != n:
                raise BoardError(f"corrupted frame from {self.where()}: READ_OUTPUT gave {len(chunk)} B "
                                 f"instead of {n} B")
            out += chunk
        return bytes(out)

    def read_profile(self, num_layers: int) -> list[int]:
        costs: list[int] = []
        while len(costs) < num_layers:
            n = min(PROFILE_CHUNK, num_layers - len(costs))
            payload = self.command(P.Type.READ_PROFILE, P.read_profile(len(costs), n))
            try:
                costs += P.parse_profile(payload, n)
            except ValueError as e:
                raise BoardError(f"corrupted frame from {self.where()}: {e}") from None
        return costs

    def exit(self, code: int = 0) -> None:
        self.command(P.Type.EXIT, bytes([code & 0xFF]))

    # ---- lifetime ----

    def close(self) -> None:
        try:
            self.link.close()
        finally:
            if self._on_close is not None:
                cb, self._on_close = self._on_close, None
                cb()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
