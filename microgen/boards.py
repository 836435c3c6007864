"""The board registry: one `boards/<name>/board.toml` per board, read into a frozen `Board`.

A board file says what the compiler needs (cross compiler, -mcpu/-march flags, features), where
things go (flash and RAM regions, stack size), how the host talks to it (UART, baud rate), what its
counter measures (core cycles on real silicon, executed instructions under QEMU -icount) and how
firmware gets onto it (QEMU machine and arguments, or a flasher command line).

    board = get_board("qemu-cortex-m4")
    board.target()        # the tir.lower.Target (dsp/mve/fpu) the kernels are lowered for
    list_boards()         # every board, sorted by name
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import BoardError, InvalidInputError
from .tir.lower import Target

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"

FEATURES = ("dsp", "mve", "fpu")
KINDS = ("emulated", "real")
ARCHS = ("arm", "riscv")
FLASHERS = ("qemu", "openocd", "pyocd", "st-flash", "nrfjprog", "esptool")
COUNTER_UNITS = {"emulated": "emulated_instructions", "real": "cycles"}


@dataclass(frozen=True)
class Region:
    """A memory region: [origin, origin + size)."""

    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size

    def contains(self, start: int, size: int = 0) -> bool:
        return self.origin <= start and start + size <= self.end


@dataclass(frozen=True)
class Uart:
    name: str
    base: int
    baud: int


@dataclass(frozen=True)
class Counter:
    """What mg_board_counter counts: `scale` units per count (40 emulated instructions per SysTick
    tick on the 25 MHz mps2 machines; 1 for cycle counters)."""

    unit: str
    scale: float
    source: str


@dataclass(frozen=True)
class Flasher:
    """How firmware gets onto the board. For QEMU: `program -M machine [-cpu cpu] -kernel ELF args`
    (the serial link is added by whoever launches it). For real boards: `commands`, each an argv
    with {elf}, {bin}, {hex} and {port} placeholders, run in order."""

    kind: str
    program: str = ""
    machine: str = ""
    cpu: str = ""
    args: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    kind: str                     # "emulated" | "real"
    arch: str                     # "arm" | "riscv"
    cpu: str
    compiler: str                 # e.g. arm-none-eabi-gcc; binutils share its prefix
    cflags: tuple[str, ...]       # -mcpu/-march/-mabi/-mfpu/-mfloat-abi
    features: frozenset[str]      # subset of FEATURES
    clock_hz: int
    flash: Region
    ram: Region
    boot_address: int | None      # where the core starts; None when a ROM loader jumps to the entry
    rodata_in_flash: bool         # False: constants live in RAM (esp32c3 loads everything to SRAM)
    data_in_place: bool           # True: the loader writes .data where it runs (no copy at reset)
    stack_bytes: int
    heap_bytes: int
    uart: Uart
    counter: Counter
    flasher: Flasher
    sources: tuple[Path, ...]     # board C/asm sources, absolute
    defines: tuple[tuple[str, str], ...]   # extra macros for mg_board_config.h
    directory: Path

    def target(self) -> Target:
        """The code-generation target: which instruction-set features the kernels may use."""
        return Target(name=self.name, dsp="dsp" in self.features, mve="mve" in self.features,
                      fpu="fpu" in self.features)

    def tool(self, name: str) -> str:
        """A binutils program with the compiler's prefix: tool('readelf') -> arm-none-eabi-readelf."""
        return self.compiler.removesuffix("gcc") + name

    def summary(self) -> dict:
        """Plain data for `microgen boards --json`."""
        return dict(
            name=self.name, description=self.description, kind=self.kind, arch=self.arch, cpu=self.cpu,
            clock_hz=self.clock_hz, features=sorted(self.features),
            flash=dict(origin=self.flash.origin, size=self.flash.size),
            ram=dict(origin=self.ram.origin, size=self.ram.size),
            stack_bytes=self.stack_bytes, uart=self.uart.name, baud=self.uart.baud,
            counter=dict(unit=self.counter.unit, scale=self.counter.scale, source=self.counter.source),
            flasher=self.flasher.kind, compiler=self.compiler, cflags=list(self.cflags),
        )


class _Fields:
    """Strict reading of one TOML table: every missing, mistyped or unknown key is an error that
    names the board file and the key."""

    def __init__(self, table: dict, where: str):
        self.table, self.where, self.used = table, where, set()

    def get(self, key: str, kind, default=...):
        self.used.add(key)
        if key not in self.table:
            if default is ...:
                raise BoardError(f"{self.where}: missing key {key!r}")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise BoardError(f"{self.where}: {key!r} must be {' or '.join(k.__name__ for k in kinds)}, "
                             f"not {type(value).__name__}")
        return value

    def sub(self, key: str, default=...) -> "_Fields":
        return _Fields(self.get(key, dict, default if default is ... else {}), f"{self.where} [{key}]")

    def done(self) -> None:
        extra = sorted(set(self.table) - self.used)
        if extra:
            raise BoardError(f"{self.where}: unknown key(s) {', '.join(extra)}")


def _region(f: _Fields, key: str) -> Region:
    r = f.sub(key)
    region = Region(r.get("origin", int), r.get("size", int))
    r.done()
    if region.size <= 0:
        raise BoardError(f"{r.where}: size must be positive")
    return region


def _c_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BoardError(f"[defines] values must be integers or strings, not {value!r}")
    if isinstance(value, str):
        return value
    return f"{value:#010x}u" if value >= 0x10000 else f"{value}u"


def load_board(path: Path) -> Board:
    """Read and check one board.toml."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BoardError(f"{path}: cannot read board file: {e}") from None
    f = _Fields(data, str(path))
    name = f.get("name", str)
    if name != path.parent.name:
        raise BoardError(f"{path}: name {name!r} must match its folder {path.parent.name!r}")
    kind, arch = f.get("kind", str), f.get("arch", str)
    if kind not in KINDS or arch not in ARCHS:
        raise BoardError(f"{path}: kind must be one of {KINDS} and arch one of {ARCHS}")
    features = frozenset(f.get("features", list))
    if not features <= set(FEATURES):
        raise BoardError(f"{path}: unknown feature(s) {sorted(features - set(FEATURES))}; known: {FEATURES}")

    mem = f.sub("memory")
    flash, ram = _region(mem, "flash"), _region(mem, "ram")
    boot = mem.get("boot", int, None)
    rodata_in = mem.get("rodata_in", str, "flash")
    data_in_place = mem.get("data_in_place", bool, False)
    mem.done()
    if rodata_in not in ("flash", "ram"):
        raise BoardError(f"{path}: [memory] rodata_in must be 'flash' or 'ram'")

    u = f.sub("uart")
    uart = Uart(u.get("name", str), u.get("base", int), u.get("baud", int))
    u.done()
    c = f.sub("counter")
    counter = Counter(c.get("unit", str), float(c.get("scale", (int, float))), c.get("source", str))
    c.done()
    if counter.unit != COUNTER_UNITS[kind]:
        raise BoardError(f"{path}: an {kind} board's counter unit is {COUNTER_UNITS[kind]!r}, not {counter.unit!r}")
    fl = f.sub("flasher")
    flasher = Flasher(
        kind=fl.get("kind", str), program=fl.get("program", str, ""), machine=fl.get("machine", str, ""),
        cpu=fl.get("cpu", str, ""), args=tuple(fl.get("args", list, [])),
        commands=tuple(tuple(cmd) for cmd in fl.get("commands", list, [])))
    fl.done()
    if flasher.kind not in FLASHERS:
        raise BoardError(f"{path}: flasher kind {flasher.kind!r} is not one of {FLASHERS}")
    if (flasher.kind == "qemu") != (kind == "emulated") or (kind == "emulated" and not flasher.machine):
        raise BoardError(f"{path}: emulated boards use the qemu flasher with a machine; real boards do not")

    sources = tuple((path.parent / s).resolve() for s in f.get("sources", list))
    for s in sources:
        if not s.is_file():
            raise BoardError(f"{path}: source {s} does not exist")
    defines = tuple((k, _c_value(v)) for k, v in f.sub("defines", {}).table.items())
    f.used.add("defines")

    board = Board(
        name=name, description=f.get("description", str), kind=kind, arch=arch, cpu=f.get("cpu", str),
        compiler=f.get("compiler", str), cflags=tuple(f.get("cflags", list)), features=features,
        clock_hz=f.get("clock_hz", int), flash=flash, ram=ram, boot_address=boot,
        rodata_in_flash=rodata_in == "flash", data_in_place=data_in_place,
        stack_bytes=f.get("stack_bytes", int), heap_bytes=f.get("heap_bytes", int), uart=uart,
        counter=counter, flasher=flasher, sources=sources, defines=defines, directory=path.parent)
    f.done()
    if board.heap_bytes != 0:
        raise BoardError(f"{path}: heap_bytes must be 0: generated code and the harness never allocate")
    if board.stack_bytes % 16 or board.ram.end % 16:
        raise BoardError(f"{path}: stack_bytes and the end of RAM must be multiples of 16")
    return board


@functools.cache
def _registry() -> dict[str, Board]:
    return {p.parent.name: load_board(p) for p in sorted(BOARDS_DIR.glob("*/board.toml"))}


def board_names() -> list[str]:
    return sorted(_registry())


def list_boards() -> list[Board]:
    """Every board in boards/, sorted by name."""
    return [_registry()[n] for n in board_names()]


def get_board(name: str) -> Board:
    """The board called `name`; InvalidInputError naming the known boards when there is none."""
    boards = _registry()
    if name not in boards:
        hint = " ('host' builds for this machine and has no board file)" if name == "host" else ""
        raise InvalidInputError(f"unknown board {name!r}{hint}: known boards are {', '.join(sorted(boards))}")
    return boards[name]


def format_boards(boards: list[Board]) -> str:
    """The table `microgen boards` prints."""
    def kib(n: int) -> str:
        return f"{n // 1024:,} KiB" if n % 1024 == 0 else f"{n / 1024:,.1f} KiB"

    rows = [("board", "kind", "cpu", "clock", "flash", "ram", "features", "counter")]
    for b in boards:
        rows.append((b.name, b.kind, b.cpu, f"{b.clock_hz / 1e6:g} MHz", kib(b.flash.size), kib(b.ram.size),
                     ",".join(sorted(b.features)) or "-", b.counter.unit))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append("host (no board file): this machine's C compiler, for `build`/`run --board host`")
    return "\n".join(lines)
