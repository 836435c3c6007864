"""The serial protocol spoken with the measurement firmware (runtime_c/mg_harness.c is the other half).

A frame on the wire::

    A5 5A | version u8 | type u8 | seq u8 | len u16 | payload[len] | crc u16

Integers are little-endian. The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), computed over
version..payload. Payloads hold at most MAX_PAYLOAD bytes. The host sends commands with seq 1..255;
the board answers each with exactly one frame of the same seq, typed `command | REPLY` on success or
ERROR. The board's first frame is BOOT (seq 0). If the board faults, its fault handler prints a text
line ``FAULT pc=0x... lr=0x... cfsr=0x... hfsr=0x...`` instead of a frame.

`FrameDecoder` parses a byte stream strictly: bytes outside frames are kept as noise (and scanned for
the FAULT line), a header with a length above MAX_PAYLOAD or a CRC mismatch is reported as a
`BadFrame`, and parsing resumes one byte after the false start marker, so garbage never hides a good
frame that follows it.
"""

from __future__ import annotations

import binascii
import enum
import re
import struct
from dataclasses import dataclass

SYNC = b"\xa5\x5a"
VERSION = 1
MAX_PAYLOAD = 256
HEADER = 7
MAX_FRAME = HEADER + MAX_PAYLOAD + 2
REPLY = 0x80


class Type(enum.IntEnum):
    """Frame types: commands (host -> board), and the board's own BOOT and ERROR frames."""

    PING = 0x01
    INFO = 0x02
    LOAD_INPUT = 0x03
    RUN = 0x04
    READ_OUTPUT = 0x05
    READ_PROFILE = 0x06
    EXIT = 0x07
    BOOT = 0x40
    ERROR = 0x7F


ERROR_CODES = {1: "bad CRC", 2: "length above the maximum payload", 3: "protocol version mismatch",
               4: "unknown command", 5: "bad argument"}

# Counter units reported by INFO (MG_COUNTER_UNIT in the firmware).
COUNTER_UNITS = {0: "cycles", 1: "emulated_instructions"}



def harness_defines(counter_unit: str, counter_scale: float) -> tuple[str, ...]:
    """The -D flags that tell the harness what its board's counter counts (a board file's [counter]):
    MG_COUNTER_UNIT (the COUNTER_UNITS key) and the scale as an exact fraction (31.25 -> 125/4)."""
    from fractions import Fraction

    units = {name: key for key, name in COUNTER_UNITS.items()}
    if counter_unit not in units:
        raise ValueError(f"counter unit {counter_unit!r} is not one of {sorted(units)}")
    scale = Fraction(counter_scale).limit_denominator(1000)
    return (f"-DMG_COUNTER_UNIT={units[counter_unit]}", f"-DMG_COUNTER_SCALE_NUM={scale.numerator}u",
            f"-DMG_COUNTER_SCALE_DEN={scale.denominator}u")


FAULT_RE = re.compile(rb"FAULT pc=0x([0-9a-fA-F]{8}) lr=0x([0-9a-fA-F]{8}) "
                      rb"cfsr=0x([0-9a-fA-F]{8}) hfsr=0x([0-9a-fA-F]{8})\r?\n")


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE; crc16(b"123456789") == 0x29B1."""
    return binascii.crc_hqx(data, crc)


def encode(type_: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """One frame, ready to write."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} B is above the {MAX_PAYLOAD} B maximum")
    if not 0 <= seq <= 255 or not 0 <= type_ <= 255:
        raise ValueError(f"type {type_} / seq {seq} out of range")
    body = struct.pack("<BBBH", version, type_, seq, len(payload)) + bytes(payload)
    return SYNC + body + struct.pack("<H", crc16(body))


@dataclass(frozen=True)
class Frame:
    """A frame whose length and CRC checked out."""

    type: int
    seq: int
    payload: bytes
    version: int = VERSION

    def describe(self) -> str:
        try:
            name = Type(self.type & ~REPLY).name + (" reply" if self.type & REPLY else "")
        except ValueError:
            name = f"type 0x{self.type:02x}"
        return f"{name} (seq {self.seq}, {len(self.payload)} B)"


@dataclass(frozen=True)
class BadFrame:
    """Something that started like a frame but failed a check: `reason` says which."""

    reason: str
    raw: bytes


@dataclass(frozen=True)
class Fault:
    """The FAULT line a board's fault handler prints (on RISC-V cfsr = mcause, hfsr = mtval)."""

    pc: int
    lr: int
    cfsr: int
    hfsr: int


RISCV_CAUSES = {0: "instruction address misaligned", 1: "instruction access fault", 2: "illegal instruction",
                3: "breakpoint", 4: "load address misaligned", 5: "load access fault",
                6: "store address misaligned", 7: "store access fault", 11: "environment call"}


def describe_fault(f: Fault, arch: str) -> str:
    """One line for a FAULT report: Cortex-M's fault status registers, or RISC-V's mcause/mtval."""
    if arch == "riscv":
        cause = RISCV_CAUSES.get(f.cfsr, "exception")
        return (f"board reported a trap ({cause}) at pc=0x{f.pc:08x} (mcause=0x{f.cfsr:08x}, "
                f"mtval=0x{f.hfsr:08x}, ra=0x{f.lr:08x})")
    return (f"board reported a HardFault at pc=0x{f.pc:08x} (cfsr=0x{f.cfsr:08x}, hfsr=0x{f.hfsr:08x}, "
            f"lr=0x{f.lr:08x})")


class FrameDecoder:
    """Incremental, strict frame parser. feed() bytes, get back Frame / BadFrame / Fault events."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._noise = bytearray()   # recent bytes outside frames (for the FAULT line and diagnostics)

    @property
    def pending(self) -> bool:
        """True while a frame has started but not all of its bytes have arrived."""
        return self._buf.startswith(SYNC)

    @property
    def noise(self) -> bytes:
        return bytes(self._noise)

    def feed(self, data: bytes) -> list[Frame | BadFrame | Fault]:
        self._buf += data
        return self._parse()

    def abandon_partial(self) -> list[Frame | BadFrame | Fault]:
        """Give up on a frame that started but never completed (its start may have been garbage):
        report it as a BadFrame and parse the bytes after its start marker again."""
        if not self.pending:
            return []
        raw = bytes(self._buf)
        del self._buf[:1]
        return [BadFrame(f"truncated frame ({len(raw)} of at least {HEADER + 2} B)", raw), *self._parse()]

    def _parse(self) -> list[Frame | BadFrame | Fault]:
        events: list[Frame | BadFrame | Fault] = []
        buf = self._buf
        while buf:
            start = buf.find(SYNC)
            if start < 0:
                # Keep a trailing A5: it may be the first half of a start marker.
                keep = 1 if buf[-1] == SYNC[0] else 0
                self._add_noise(bytes(buf[:len(buf) - keep]), events)
                del buf[:len(buf) - keep]
                break
            if start:
                self._add_noise(bytes(buf[:start]), events)
                del buf[:start]
            if len(buf) < HEADER:
                break
            version, type_, seq, length = struct.unpack_from("<BBBH", buf, 2)
            if length > MAX_PAYLOAD:
                events.append(BadFrame(f"length {length} above the {MAX_PAYLOAD} B maximum", bytes(buf[:HEADER])))
                del buf[:1]
                continue
            end = HEADER + length + 2
            if len(buf) < end:
                break
            (crc,) = struct.unpack_from("<H", buf, end - 2)
            if crc != crc16(bytes(buf[2:end - 2])):
                events.append(BadFrame(f"bad CRC (0x{crc:04x}, computed 0x{crc16(bytes(buf[2:end - 2])):04x})",
                                       bytes(buf[:end])))
                del buf[:1]
                continue
            if version != VERSION:
                events.append(BadFrame(f"protocol version {version}, expected {VERSION}", bytes(buf[:end])))
                del buf[:end]
                continue
            events.append(Frame(type_, seq, bytes(buf[HEADER:end - 2]), version))
            del buf[:end]
        return events

    def _add_noise(self, data: bytes, events: list) -> None:
        self._noise += data
        m = FAULT_RE.search(self._noise)
        if m:
            events.append(Fault(*(int(g, 16) for g in m.groups())))
            del self._noise[:m.end()]
        del self._noise[:-200]  # a bounded tail is enough to find one line


# ---- Payloads ----

@dataclass(frozen=True)
class Info:
    """What INFO reports: the firmware's protocol and counter, and the model it carries."""

    version: int
    counter_unit: str          # "cycles" or "emulated_instructions"
    max_payload: int
    scale_num: int             # units per count of the board counter = scale_num / scale_den
    scale_den: int
    arena_size: int
    num_layers: int
    max_layers: int            # layers whose cost the firmware keeps
    tick: int                  # measured counter resolution in 1/scale_den units (1 = exact)
    hook_inner: int            # units of harness code inside each layer window (subtracted)
    hook_pair: int             # units of one begin+end pair (subtracted from the total)
    input_bytes: tuple[int, ...]
    output_bytes: tuple[int, ...]
    model_name: str

    @property
    def resolution(self) -> float:
        """The counter's resolution in units (40 for SysTick under QEMU at 25 MHz, 1 for cycles)."""
        return self.tick / self.scale_den


_INFO_HEAD = struct.Struct("<BBHIIIIIIIIII")


def parse_info(payload: bytes) -> Info:
    if len(payload) < _INFO_HEAD.size + 1:
        raise ValueError(f"INFO payload of {len(payload)} B is shorter than {_INFO_HEAD.size + 1} B")
    (version, unit, max_payload, num, den, arena, n_in, n_out, n_layers, max_layers, tick, inner,
     pair) = _INFO_HEAD.unpack_from(payload)
    pos = _INFO_HEAD.size
    need = pos + 4 * (n_in + n_out) + 1
    if len(payload) < need:
        raise ValueError(f"INFO payload of {len(payload)} B is shorter than {need} B")
    sizes = struct.unpack_from(f"<{n_in + n_out}I", payload, pos)
    pos += 4 * (n_in + n_out)
    name_len = payload[pos]
    if len(payload) != pos + 1 + name_len:
        raise ValueError(f"INFO payload of {len(payload)} B does not end after the model name")
    if unit not in COUNTER_UNITS:
        raise ValueError(f"INFO reports an unknown counter unit {unit}")
    if num == 0 or den == 0:
        raise ValueError(f"INFO reports a counter scale of {num}/{den}")
    name = payload[pos + 1:].decode("ascii", errors="replace")
    return Info(version, COUNTER_UNITS[unit], max_payload, num, den, arena, n_layers, max_layers, tick, inner,
                pair, tuple(sizes[:n_in]), tuple(sizes[n_in:]), name)


def load_input(index: int, offset: int, chunk: bytes) -> bytes:
    return struct.pack("<HI", index, offset) + bytes(chunk)


def read_output(index: int, offset: int, length: int) -> bytes:
    return struct.pack("<HIH", index, offset, length)


def read_profile(first: int, count: int) -> bytes:
    return struct.pack("<IH", first, count)


@dataclass(frozen=True)
class RunResult:
    status: int       # the model's invoke() status (0 = OK)
    total: int        # counter units of one inference, harness overhead excluded
    layers_timed: int


def parse_run(payload: bytes) -> RunResult:
    if len(payload) != 16:
        raise ValueError(f"RUN reply of {len(payload)} B, expected 16 B")
    status, total, timed = struct.unpack("<iQI", payload)
    return RunResult(status, total, timed)


def parse_profile(payload: bytes, count: int) -> tuple[int, ...]:
    if len(payload) != 8 * count:
        raise ValueError(f"READ_PROFILE reply of {len(payload)} B, expected {8 * count} B")
    return struct.unpack(f"<{count}Q", payload)


def parse_error(payload: bytes) -> str:
    """The text of an ERROR frame: code, offending command, message."""
    if len(payload) < 2:
        return f"malformed error frame ({payload.hex()})"
    code, type_ = payload[0], payload[1]
    text = payload[2:].decode("ascii", errors="replace")
    try:
        cmd = Type(type_).name
    except ValueError:
        cmd = f"0x{type_:02x}"
    return f"{ERROR_CODES.get(code, f'error {code}')} for {cmd}: {text}"
