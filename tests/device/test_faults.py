"""Failure paths of the device layer: every one ends in a one-line MicrogenError within its timeout, and
leaves no QEMU behind.

A fake transport plays the firmware for the protocol-level cases (fast, no QEMU); the QEMU cases use
firmware built with MG_HARNESS_TEST (runtime_c/mg_harness.c): 1 = RUN faults on a bad address,
2 = silent after the boot banner, 3 = silent from reset.
"""

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microgen import pipeline
from microgen.boards import get_board
from microgen.device import connect, qemu
from microgen.device import protocol as P
from microgen.device.session import Session
from microgen.errors import BoardError, DeviceTimeoutError, MicrogenError
from microgen.testing.corpus import require_tools

REPO = Path(__file__).resolve().parents[2]


class FakeBoard:
    """A Transport that answers like the firmware, with a failure `mode` to inject."""

    name = "fake://board"

    def __init__(self, mode: str = "ok", boot: bool = True):
        self.mode = mode
        self.decoder = P.FrameDecoder()
        self.out = bytearray(P.encode(P.Type.BOOT, 0, b"\x01fake") if boot else b"")
        self.closed = False
        self.commands = []

    def write(self, data: bytes) -> None:
        for ev in self.decoder.feed(data):
            if isinstance(ev, P.Frame):
                self.commands.append(ev.type)
                self.out += self.respond(ev)

    def respond(self, f: P.Frame) -> bytes:
        if self.mode == "silent" or (self.mode == "silent-after-ping" and f.type != P.Type.PING):
            return b""
        if self.mode == "fault" and f.type == P.Type.RUN:
            return b"FAULT pc=0x00001234 lr=0xfffffff9 cfsr=0x00008200 hfsr=0x40000000\n"
        if self.mode == "error":
            return P.encode(P.Type.ERROR, f.seq, bytes([5, f.type]) + b"out of bounds")
        payload = f.payload
        if f.type == P.Type.INFO:
            payload = struct.pack("<BBHIIIIIIIIII", 1, 0, 256, 1, 1, 64, 1, 1, 2, 128, 1, 10, 20)
            payload += struct.pack("<II", 4, 4) + b"\x04fake"
        elif f.type == P.Type.RUN:
            payload = struct.pack("<iQI", 0, 1000, 2)
        reply = P.encode(f.type | P.REPLY, f.seq, payload)
        if self.mode == "corrupt":
            reply = reply[:-3] + bytes([reply[-3] ^ 0x40]) + reply[-2:]
        if self.mode == "noisy":
            stale = P.encode(f.type | P.REPLY, (f.seq + 100) % 256, b"stale")
            reply = b"\x00garbage\xa5" + stale + P.encode(f.type, f.seq, b"x")[:5] + reply
        return reply

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if not self.out:
            time.sleep(min(timeout, 0.01))
            return b""
        chunk = bytes(self.out[:max_bytes])
        del self.out[:max_bytes]
        return chunk

    def close(self) -> None:
        self.closed = True


def fake_session(mode, boot=True, timeout=0.5):
    link = FakeBoard(mode, boot)
    s = Session(link, "fake-board", timeout=timeout)
    return s, link


def test_fake_board_happy_path_and_noise():
    for mode in ("ok", "noisy"):
        s, link = fake_session(mode)
        with s:
            s.wait_boot()
            info = s.info()
            assert info.model_name == "fake" and info.counter_unit == "cycles"
            assert s.ping(b"abc") == b"abc"
            assert s.run().total == 1000
        assert link.closed


def test_corrupted_frame_is_an_error_naming_the_link():
    s, _ = fake_session("corrupt")
    with s, pytest.raises(BoardError, match=r"corrupted frame from fake://board \(fake-board\).*bad CRC"):
        s.wait_boot()
        s.info()


def test_silent_board_times_out_within_its_timeout():
    s, _ = fake_session("silent", boot=False, timeout=0.4)
    t0 = time.monotonic()
    with s, pytest.raises(DeviceTimeoutError, match=r"no answer on fake://board \(fake-board\) after 0\.4 s"):
        s.wait_boot()
    assert time.monotonic() - t0 < 1.5


def test_missed_banner_is_recovered_by_resync():
    """A real board may boot before the port is open: no banner, but it answers PING after the zero
    bytes that complete any partial frame."""
    s, link = fake_session("ok", boot=False)
    with s:
        s.wait_boot(timeout=2.0, banner_wait=0.1)
        assert P.Type.PING in link.commands
        assert s.info().model_name == "fake"


def test_command_timeout_and_error_frames():
    s, _ = fake_session("silent-after-ping", timeout=0.3)
    with s:
        s.wait_boot()
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeoutError, match=r"after 0\.3 s \(waiting for the INFO reply\)"):
            s.info()
        assert time.monotonic() - t0 < 1.0
    s, _ = fake_session("error")
    with s, pytest.raises(BoardError, match=r"rejected LOAD_INPUT: bad argument for LOAD_INPUT: out of bounds"):
        s.wait_boot()
        s.load_input(0, b"1234")


def test_fault_line_becomes_a_hardfault_error():
    s, _ = fake_session("fault")
    with s, pytest.raises(BoardError, match=r"board reported a HardFault at pc=0x00001234 \(cfsr=0x00008200"):
        s.wait_boot()
        s.run()


# ---- on QEMU ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """The project's own demo model (examples/make_demo_model.py): no third-party files needed."""
    path = tmp_path_factory.mktemp("demo") / "demo_kws.tflite"
    subprocess.run([sys.executable, str(REPO / "examples" / "make_demo_model.py"), str(path)], check=True,
                   capture_output=True, timeout=120)
    return path


def firmware(model, board, tmp_path, test_mode):
    tools = {"arm": ("qemu-system-arm", "arm-none-eabi-gcc"),
             "riscv": ("qemu-system-riscv32", "riscv64-unknown-elf-gcc")}
    b = get_board(board)
    require_tools(*tools[b.arch])
    _, b, fw = pipeline.build_for_board(model, board, tmp_path, extra_cflags=(f"-DMG_HARNESS_TEST={test_mode}",))
    return b, fw.elf


def one_line(e: MicrogenError) -> str:
    text = str(e)
    assert "\n" not in text, text
    return text


@pytest.mark.qemu
def test_firmware_that_never_answers(demo_model, tmp_path, qemu_watch):
    board, elf = firmware(demo_model, "qemu-cortex-m4", tmp_path, 2)
    session = connect.open_board(board, elf, timeout=1.0)   # the banner arrives
    t0 = time.monotonic()
    with session, pytest.raises(DeviceTimeoutError) as err:
        session.info()
    assert time.monotonic() - t0 < 2.5
    assert "no answer on socket://127.0.0.1:" in one_line(err.value)
    assert "(qemu-cortex-m4) after 1.0 s" in str(err.value)
    assert len(qemu_watch) == 1


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["qemu-cortex-m4", "qemu-riscv32"])
def test_board_that_never_boots(board, demo_model, tmp_path, qemu_watch):
    b, elf = firmware(demo_model, board, tmp_path, 3)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeoutError) as err:
        connect.open_board(b, elf, timeout=1.0)
    assert time.monotonic() - t0 < 3.0
    assert f"({board}) after 1.0 s (waiting for the boot banner)" in one_line(err.value)


@pytest.mark.qemu
def test_wrong_image_names_qemus_complaint(tmp_path, qemu_watch):
    require_tools("qemu-system-arm")
    not_elf = tmp_path / "firmware.elf"
    not_elf.write_bytes(b"\x00" * 64)      # not an ELF: QEMU loads it raw and the core locks up
    t0 = time.monotonic()
    with pytest.raises(BoardError) as err:
        connect.open_board(get_board("qemu-cortex-m4"), not_elf, timeout=3.0)
    assert time.monotonic() - t0 < 5.0
    msg = one_line(err.value)
    assert "qemu-cortex-m4" in msg and ("Lockup" in msg or "exited" in msg or "no answer" in msg), msg


@pytest.mark.qemu
def test_missing_firmware_file():
    with pytest.raises(BoardError, match="not found"):
        connect.open_board(get_board("qemu-cortex-m4"), "/nonexistent/fw.elf", timeout=1.0)


class Corrupting:
    """Wraps a real link and, after `arm()`, flips one bit of the 10th byte that arrives (inside the
    next reply's payload): a transmission error."""

    def __init__(self, link):
        self.link, self.name, self.countdown = link, link.name, None

    def arm(self):
        self.countdown = 10

    def write(self, data):
        self.link.write(data)

    def read(self, max_bytes, timeout):
        data = bytearray(self.link.read(max_bytes, timeout))
        if self.countdown is not None and data:
            if self.countdown <= len(data):
                data[self.countdown - 1] ^= 0x01
                self.countdown = None
            else:
                self.countdown -= len(data)
        return bytes(data)

    def close(self):
        self.link.close()


@pytest.mark.qemu
def test_corrupted_frame_from_qemu(demo_model, tmp_path, qemu_watch):
    board, elf = firmware(demo_model, "qemu-cortex-m4", tmp_path, 0)
    session = connect.open_board(board, elf, timeout=2.0)
    session.link = Corrupting(session.link)
    with session:
        assert session.info().model_name == "demo_kws"
        session.link.arm()
        with pytest.raises(BoardError) as err:
            session.info()
        assert "corrupted frame from socket://127.0.0.1:" in one_line(err.value)
        assert "(qemu-cortex-m4)" in str(err.value) and "bad CRC" in str(err.value)
    assert len(qemu_watch) == 1


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["qemu-cortex-m4", "qemu-riscv32"])
def test_hardfault_is_reported(board, demo_model, tmp_path, qemu_watch):
    b, elf = firmware(demo_model, board, tmp_path, 1)
    t0 = time.monotonic()
    with connect.open_board(b, elf, timeout=2.0) as session:
        session.load_input(0, bytes(490))
        with pytest.raises(BoardError) as err:
            session.run()
    assert time.monotonic() - t0 < 5.0
    msg = one_line(err.value)
    if board == "qemu-riscv32":  # the bad load is a load access fault; mtval is the address
        assert msg.startswith("board reported a trap (load access fault) at pc=0x"), msg
        assert "mcause=0x00000005" in msg and "mtval=0xfffffff0" in msg
    else:
        assert msg.startswith("board reported a HardFault at pc=0x") and "cfsr=0x" in msg, msg
    assert f"({board})" in msg


def frames_until(link, decoder, want_seq, timeout=2.0):
    """Frames read from `link` until one with seq `want_seq` (returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in decoder.feed(link.read(4096, 0.05)):
            if isinstance(ev, P.Frame) and ev.seq == want_seq:
                return ev
    raise AssertionError(f"no frame with seq {want_seq}")


@pytest.mark.qemu
def test_firmware_survives_garbage_bad_frames_and_partial_frames(demo_model, tmp_path, qemu_watch):
    """The firmware side of the protocol: garbage is skipped, every malformed frame gets an error
    frame with its seq, and a partial frame is cleared by the host's resync."""
    board, elf = firmware(demo_model, "qemu-cortex-m4", tmp_path, 0)
    with connect.open_board(board, elf, timeout=2.0) as s:
        link, d = s.link, P.FrameDecoder()
        bad_crc = bytearray(P.encode(P.Type.PING, 71, b"abc"))
        bad_crc[-1] ^= 1
        cases = [
            (71, b"\x00\xff\xa5 garbage \x5a\xa5\xa5" + bytes(bad_crc), 1),                      # bad CRC
            (72, P.SYNC + struct.pack("<BBBH", P.VERSION, P.Type.PING, 72, 0x1000), 2),   # oversize
            (73, P.encode(P.Type.PING, 73, b"", version=2), 3),                            # version
            (74, P.encode(0x33, 74), 4),                                                    # unknown
            (75, P.encode(P.Type.READ_OUTPUT, 75, P.read_output(9, 0, 4)), 5),              # bad index
        ]
        for seq, data, code in cases:
            link.write(data)
            frame = frames_until(link, d, seq)
            assert frame.type == P.Type.ERROR and frame.payload[0] == code, (seq, frame)
        assert s.ping(b"still here") == b"still here"

        link.write(P.encode(P.Type.PING, 80, b"x" * 100)[:50])   # the board now waits for 50 more bytes
        with pytest.raises(DeviceTimeoutError):
            s.ping(b"swallowed")                                   # ... and takes this frame as payload
        s.resync(timeout=2.0)
        assert s.info().model_name == "demo_kws"
