"""Firmware for a board: emit the project beside the model library, cross-compile it, check it.

`emit_firmware(result, board, out_dir)` writes a self-contained firmware project into out_dir:

    Makefile            `make` builds build/<name>.elf, `make flash` runs the board's flasher
    link.ld             from the board's memory regions (.isr_vector/.text, .rodata, .data, .bss,
                        .mg_arena for the model arena, the stack at the top of RAM)
    mg_board_config.h   the board's constants (clock, UART, regions) for its C support code
    mg_model_glue.c     runtime_c/mg_model.h implemented for this model, arena in .mg_arena
    boards/, runtime/   copies of the board support code, the contracts and the harness

and `build_firmware` also compiles it the way the Makefile does. Board objects (startup, UART,
counter, harness) are compiled once per board, flags and source contents into a cache directory,
so a rebuild compiles only the model and its glue (the tuner's inner loop). Before linking, the object sizes are checked
against the board's regions (DoesNotFitError names the region and the excess); after linking,
`check_elf` checks the image itself.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import os
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .. import c_emitter
from ..boards import BOARDS_DIR, Board
from ..c_emitter.project import RUNTIME_DIR
from ..errors import BoardError, DoesNotFitError
from .protocol import harness_defines

REPO = BOARDS_DIR.parent
DEFAULT_HARNESS = "runtime_c/mg_harness.c"
COMMON_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-ffunction-sections", "-fdata-sections",
                 "--specs=picolibc.specs")
INCLUDES = ("-I.", "-Iruntime", "-Iboards/common")
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("microgen.c_emitter", "templates"),
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
# Room left in each region for what the link adds beyond our objects: C library and libgcc helpers
# (memcpy, division), section alignment.
HEADROOM_BYTES = 2048


@dataclass(frozen=True)
class FirmwareResult:
    """A built firmware image. Sizes in bytes; `bss` excludes the arena and the stack."""

    board: str
    project_dir: Path
    elf: Path
    text: int
    data: int
    bss: int
    arena: int
    stack: int
    compiled: tuple[str, ...]     # sources compiled by this call; cached board objects are not listed
    warnings: str                 # anything the compiler or linker printed (empty on a clean build)
    seconds: float
    report: ElfReport

    def summary(self) -> dict:
        return dict(board=self.board, elf=str(self.elf), text=self.text, data=self.data, bss=self.bss,
                    arena=self.arena, stack=self.stack, seconds=round(self.seconds, 3))


@dataclass(frozen=True)
class _Source:
    src: str            # as the Makefile names it, relative to the project directory
    obj: str
    model: bool         # compiled with the layer-hook flags, never cached


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "microgen" / "board-objects"


@dataclass(frozen=True)
class FirmwareProject:
    """A firmware project on disk, and how to compile it (what its Makefile says)."""

    board: Board
    name: str                     # the model library's name
    project_dir: Path
    lib_dir: str                  # the library's directory, relative to project_dir
    board_sources: tuple[_Source, ...]
    model_sources: tuple[_Source, ...]
    cflags: tuple[str, ...]       # common + optimisation + extra
    model_flags: tuple[str, ...]  # layer hooks, for the model and its glue only
    ldflags: tuple[str, ...]


def emit_firmware(build_result, board: Board, out_dir: str | os.PathLike, *, extra_cflags=(),
                  harness: str | os.PathLike = DEFAULT_HARNESS, opt: str = "-O2") -> FirmwareProject:
    """Write the firmware project for `board` into out_dir, without compiling anything. Raises
    DoesNotFitError when the arena, stack and weights alone overflow the board's memory.

    build_result: a pipeline.BuildResult (the emitted model library); harness: the firmware main
    (relative paths are taken from the repository root); extra_cflags go to every object.
    """
    name = build_result.project.name
    _check_fits_before_build(build_result, board)
    harness_path = Path(harness) if Path(harness).is_absolute() else REPO / harness
    if not harness_path.is_file():
        raise BoardError(f"firmware harness {harness_path} not found (the measurement main, "
                         f"runtime_c/mg_harness.c); pass harness=PATH")
    proj = Path(out_dir).resolve()
    proj.mkdir(parents=True, exist_ok=True)
    lib_dir = os.path.relpath(build_result.project.out_dir.resolve(), proj)
    fw = FirmwareProject(
        board=board, name=name, project_dir=proj, lib_dir=lib_dir,
        board_sources=tuple(_copy_support(board, harness_path, proj)),
        model_sources=(_Source(f"{lib_dir}/{name}.c", f"build/{name}.o", True),
                       _Source("mg_model_glue.c", "build/mg_model_glue.o", True)),
        # The harness reports what the board's counter counts, and removes its own overhead in those units:
        # in the project's flags so a `make` by hand builds the same firmware.
        cflags=(*COMMON_CFLAGS, opt, *harness_defines(board.counter.unit, board.counter.scale), *extra_cflags),
        model_flags=(f"-D{name.upper()}_LAYER_BEGIN(l)=mg_profile_layer_begin(l)",
                     f"-D{name.upper()}_LAYER_END(l)=mg_profile_layer_end(l)", "-include", "mg_model.h"),
        ldflags=("--specs=picolibc.specs", "-nostartfiles", "-T", "link.ld", "-Wl,--gc-sections",
                 "-Wl,--fatal-warnings", "-Wl,--no-warn-rwx-segments", f"-Wl,-Map=build/{name}.map"))
    _write_project(build_result, fw)
    return fw


def build_firmware(build_result, board: Board, out_dir: str | os.PathLike, *, extra_cflags=(),
                   harness: str | os.PathLike = DEFAULT_HARNESS, opt: str = "-O2",
                   cache_dir: str | os.PathLike | None = None) -> FirmwareResult:
    """Emit the firmware project (see emit_firmware), build it and check the ELF.

    Board objects are taken from cache_dir (default ~/.cache/microgen/board-objects) when the
    compiler, flags and sources match; only the model and its glue are compiled every time.
    """
    t0 = time.perf_counter()
    fw = emit_firmware(build_result, board, out_dir, extra_cflags=extra_cflags, harness=harness, opt=opt)
    proj, compiler = fw.project_dir, _find_tool(board.compiler, board)
    base = [compiler, *fw.cflags, *board.cflags, *INCLUDES, f"-I{fw.lib_dir}"]
    key = _cache_key(proj, [*base, *fw.model_flags], fw.board_sources)
    cached = (Path(cache_dir) if cache_dir else default_cache_dir()) / f"{board.name}-{key[:24]}"
    compiled, warnings = [], []
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        jobs = [pool.submit(_compile, [*base, *fw.model_flags], s, proj, proj / s.obj) for s in fw.model_sources]
        if not all((cached / Path(s.obj).name).is_file() for s in fw.board_sources):
            jobs.append(pool.submit(_compile_cached, base, fw.board_sources, proj, cached))
        for job in jobs:
            srcs, text = job.result()
            compiled += srcs
            warnings += [text] if text else []
    objects = [cached / Path(s.obj).name for s in fw.board_sources] + [proj / s.obj for s in fw.model_sources]
    _check_fits(build_result, board, object_sizes(board, objects))

    elf = proj / "build" / f"{fw.name}.elf"
    proc = subprocess.run([compiler, *board.cflags, *fw.ldflags, *map(str, objects), "-o", str(elf)],
                          cwd=proj, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BoardError(f"linking {elf.name} for board {board.name} failed:\n{proc.stderr.strip()[-3000:]}")
    warnings += [proc.stderr.strip()] if proc.stderr.strip() else []
    report = check_elf(elf, board, arena_bytes=build_result.plan.arena_size)
    return FirmwareResult(board.name, proj, elf, report.text, report.data, report.bss, report.arena_size,
                          report.stack_size, tuple(compiled), "\n".join(warnings), time.perf_counter() - t0,
                          report)


# ---- project files --------------------------------------------------------------------------------

def _copy_support(board: Board, harness: Path, proj: Path) -> list[_Source]:
    """Copy the board's sources (keeping their layout under boards/, so relative includes work), every
    shared header, the C contracts and the harness into the project. Returns the board-side sources."""
    headers = [*BOARDS_DIR.glob("common/**/*.h"), *board.directory.glob("*.h")]
    for path in {*board.sources, *headers}:
        _put(proj / "boards" / path.relative_to(BOARDS_DIR), path.read_bytes())
    for h in ("mg_board.h", "mg_model.h"):
        _put(proj / "runtime" / h, (RUNTIME_DIR / h).read_bytes())
    _put(proj / "runtime" / harness.name, harness.read_bytes())
    srcs = []
    for path in [*board.sources, proj / "runtime" / harness.name]:
        rel = (Path("boards") / path.relative_to(BOARDS_DIR)) if path.is_relative_to(BOARDS_DIR) \
            else path.relative_to(proj)
        obj = "build/board/" + "_".join(rel.with_suffix(".o").parts[1:])
        srcs.append(_Source(rel.as_posix(), obj, False))
    return srcs


def _write_project(result, fw: FirmwareProject) -> None:
    board, name, q = fw.board, fw.name, shlex.quote
    banner_lines = [f"Generated by microgen for board {board.name}. Do not edit: rerun `microgen build`."]
    ctx = dict(name=name, p=name, P=name.upper(), board=board, hex=lambda v: f"{v:#010x}",
               banner="\n".join(f" * {line}" for line in banner_lines),
               banner_make="\n".join(f"# {line}" for line in banner_lines),
               num_inputs=len(result.graph.inputs), num_outputs=len(result.graph.outputs),
               rodata_in_flash=board.rodata_in_flash, counter_scale=_fraction(board.counter.scale),
               entry="mg_reset_handler" if board.arch == "arm" else "_start")
    lib = fw.lib_dir
    objects = [dict(src="$(LIB_DIR)" + s.src[len(lib):] if s.src.startswith(lib + "/") else s.src, obj=s.obj,
                    model=s.model) for s in (*fw.board_sources, *fw.model_sources)]
    files = {
        "mg_model_glue.c": _ENV.get_template("firmware_glue.c.j2").render(ctx),
        "mg_board_config.h": _ENV.get_template("firmware_board_config.h.j2").render(ctx),
        "link.ld": _ENV.get_template("firmware_link.ld.j2").render(ctx),
        "Makefile": _ENV.get_template("firmware_Makefile.j2").render(
            ctx, lib_dir=lib, cpuflags=" ".join(board.cflags), cflags=" ".join(map(q, fw.cflags)),
            includes=" ".join([*INCLUDES, "-I$(LIB_DIR)"]), model_flags=" ".join(map(q, fw.model_flags)),
            ldflags=" ".join(fw.ldflags), flash_note=_flash_note(board), flash_commands=_flash_commands(board),
            objects=objects),
    }
    (fw.project_dir / "build").mkdir(exist_ok=True)
    for fname, text in files.items():
        _put(fw.project_dir / fname, text.encode())


def _put(path: Path, content: bytes) -> None:
    """Write a project file, leaving an unchanged one alone so `make` does not rebuild it."""
    if not path.is_file() or path.read_bytes() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _fraction(scale: float) -> tuple[int, int]:
    """The counter scale as numerator/denominator for C (31.25 -> (125, 4))."""
    from fractions import Fraction
    f = Fraction(scale).limit_denominator(1000)
    return f.numerator, f.denominator


def _flash_note(board: Board) -> str:
    if board.flasher.kind == "qemu":
        return f"runs the image in QEMU {board.flasher.machine}, serial port on this terminal"
    return f"writes the image with {board.flasher.kind}"


def _flash_commands(board: Board) -> list[str]:
    f = board.flasher
    if f.kind == "qemu":
        cmd = [f.program, "-M", f.machine, *(["-cpu", f.cpu] if f.cpu else []), "-kernel", "{elf}", *f.args,
               "-serial", "stdio"]
        commands = [tuple(cmd)]
    else:
        commands = f.commands
    subst = {"{elf}": "$(ELF)", "{bin}": "$(BIN)", "{hex}": "$(HEX)", "{port}": "$(PORT)"}
    lines = []
    for cmd in commands:
        words = []
        for word in cmd:
            for k, v in subst.items():
                word = word.replace(k, v)
            words.append(word if " " not in word else "'" + word + "'")
        lines.append(" ".join(words))
    return lines


# ---- compiling ------------------------------------------------------------------------------------

def _find_tool(program: str, board: Board | None = None) -> str:
    path = _which(program)
    if not path:
        raise BoardError(f"{program} not found{f' (needed for board {board.name})' if board else ''}: install "
                         f"the cross toolchain (Debian: gcc-arm-none-eabi picolibc-arm-none-eabi, or "
                         f"gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)")
    return path


@functools.cache
def _which(program: str) -> str | None:
    return shutil.which(program)


@functools.cache
def _tool_version(path: str) -> str:
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def _cache_key(proj: Path, flags: list[str], srcs: tuple[_Source, ...]) -> str:
    """Everything a board object depends on: compiler and its version, flags, and the contents of the
    sources and of every header they can include."""
    h = hashlib.sha256()
    h.update(_tool_version(flags[0]).encode())
    h.update("\0".join(flags[1:]).encode())
    files = [proj / s.src for s in srcs]
    files += sorted((proj / "boards").rglob("*.h")) + sorted((proj / "runtime").glob("*.h"))
    files.append(proj / "mg_board_config.h")
    for path in files:
        h.update(str(path.relative_to(proj)).encode() + b"\0" + path.read_bytes())
    h.update("\0".join(s.obj for s in srcs).encode())
    return h.hexdigest()


def _compile(cmd: list[str], s: _Source, proj: Path, obj: Path) -> tuple[list[str], str]:
    obj.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([*cmd, "-c", s.src, "-o", str(obj)], cwd=proj, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BoardError(f"cross compile of {s.src} failed ({Path(cmd[0]).name}):\n{proc.stderr.strip()[-3000:]}")
    return [s.src], proc.stderr.strip()


def _compile_cached(base: list[str], srcs: tuple[_Source, ...], proj: Path, cached: Path) -> tuple[list[str], str]:
    """Compile the board objects into a fresh directory, then move it into the cache in one rename, so
    parallel builds never see half a cache entry."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cached.name + ".", dir=cached.parent))
    try:
        results = [_compile(base, s, proj, tmp / Path(s.obj).name) for s in srcs]
        try:
            os.rename(tmp, cached)
        except OSError:
            # Another build put the same objects there first (fine), or a broken entry is in the
            # way: move that aside and retry once.
            if not all((cached / Path(s.obj).name).is_file() for s in srcs):
                stale = Path(tempfile.mkdtemp(prefix=cached.name + ".stale.", dir=cached.parent))
                os.replace(cached, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
                os.rename(tmp, cached)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [src for r in results for src in r[0]], "\n".join(r[1] for r in results if r[1])


# ---- fitting --------------------------------------------------------------------------------------

def _check_fits_before_build(result, board: Board) -> None:
    """The cheap check, before compiling anything: the arena and stack against RAM, the weights against
    the region they will live in."""
    weights = c_emitter.collect_consts(list(result.steps))
    flash = {"weights": weights} if board.rodata_in_flash else {}
    ram = {"arena": result.plan.arena_size, "stack": board.stack_bytes}
    if not board.rodata_in_flash:
        ram["weights"] = weights
    _raise_if_over(result.project.name, board, flash, ram)


def _check_fits(result, board: Board, sizes: dict[str, int]) -> None:
    """The exact check, on the compiled objects, before linking."""
    flash = {"code": sizes["code"]}
    ram = {"arena": sizes["arena"], "stack": board.stack_bytes, "data+bss": sizes["data"] + sizes["bss"]}
    (flash if board.rodata_in_flash else ram)["constants"] = sizes["rodata"]
    if not board.data_in_place:
        flash["data image"] = sizes["data"]
    _raise_if_over(result.project.name, board, flash, ram)


def _raise_if_over(model: str, board: Board, flash: dict[str, int], ram: dict[str, int]) -> None:
    problems = []
    for region, parts, size in (("flash", flash, board.flash.size), ("RAM", ram, board.ram.size)):
        need = sum(parts.values()) + HEADROOM_BYTES
        if need > size:
            detail = " + ".join(f"{k} {v:,}" for k, v in parts.items() if v)
            problems.append(f"{region} needs {need:,} B ({detail} + headroom {HEADROOM_BYTES:,}) but has "
                            f"{size:,} B: {need - size:,} B over")
    if problems:
        raise DoesNotFitError(f"{model} does not fit board {board.name}: " + "; ".join(problems))


# ---- ELF checks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    name: str
    vma: int
    lma: int
    size: int
    flags: frozenset[str]       # objdump's: ALLOC, LOAD, CONTENTS, READONLY, CODE, DATA, ...


@dataclass(frozen=True)
class ElfReport:
    """What check_elf found in an image that passed. text = code + read-only data (+ .data image),
    bss excludes the arena and the stack."""

    entry: int
    sections: tuple[Section, ...]
    text: int
    data: int
    bss: int
    arena_start: int
    arena_size: int
    stack_start: int
    stack_size: int


def _run_tool(board: Board, tool: str, *args: str) -> str:
    proc = subprocess.run([_find_tool(board.tool(tool), board), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BoardError(f"{board.tool(tool)} {' '.join(args)} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout


# objdump -h -w: "Idx Name Size VMA LMA File-off Algn Flags"
_SECTION_LINE = re.compile(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)"
                           r"\s+2\*\*\d+\s*(.*)$")


def read_sections(elf: str | os.PathLike, board: Board) -> list[tuple[Section, int]]:
    """Every section of an ELF or object file with its file offset (objdump -h)."""
    out = []
    for line in _run_tool(board, "objdump", "-h", "-w", str(elf)).splitlines():
        m = _SECTION_LINE.match(line)
        if m:
            flags = frozenset(f.strip() for f in m.group(6).split(",") if f.strip())
            out.append((Section(m.group(1), int(m.group(3), 16), int(m.group(4), 16), int(m.group(2), 16),
                                flags), int(m.group(5), 16)))
    return out


def object_sizes(board: Board, objects: list[Path]) -> dict[str, int]:
    """Bytes per kind (code, rodata, data, bss, arena) summed over object files, before linking."""
    sizes = dict(code=0, rodata=0, data=0, bss=0, arena=0)
    kinds = ((".mg_arena", "arena"), (".isr_vector", "code"), (".text", "code"), (".ARM.exidx", "code"),
             (".init_array", "rodata"), (".rodata", "rodata"), (".srodata", "rodata"), (".data", "data"),
             (".sdata", "data"), (".bss", "bss"), (".sbss", "bss"))
    for obj in objects:
        for sec, _ in read_sections(obj, board):
            for prefix, kind in kinds:
                if sec.name == prefix or sec.name.startswith(prefix + "."):
                    sizes[kind] += sec.size
                    break
    return sizes


def check_elf(elf: str | os.PathLike, board: Board, arena_bytes: int | None = None) -> ElfReport:
    """Check a linked image against its board: the vector table (Arm) or entry (RISC-V) at the boot
    address, the initial stack pointer at the top of RAM, every section inside flash or RAM, no two
    sections overlapping (run addresses, and load addresses for what is loaded), the arena and the
    stack inside RAM and apart. Raises BoardError listing every problem."""
    found = read_sections(elf, board)
    sections = [s for s, _ in found]
    offsets = {s.name: off for s, off in found}
    symbols = {}
    for line in _run_tool(board, "nm", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    start = re.search(r"start address (0x[0-9a-f]+)", _run_tool(board, "objdump", "-f", str(elf)))
    entry = int(start.group(1), 16) if start else -1
    by_name = {s.name: s for s in sections}
    problems = []

    alloc = [s for s in sections if "ALLOC" in s.flags and s.size > 0]
    for s in alloc:
        if not (board.flash.contains(s.vma, s.size) or board.ram.contains(s.vma, s.size)):
            problems.append(f"{s.name} [{s.vma:#x}, +{s.size:#x}) lies outside flash and RAM")
        if "LOAD" in s.flags and s.lma != s.vma and not board.flash.contains(s.lma, s.size):
            problems.append(f"{s.name} loads from {s.lma:#x}, outside flash")
    for addr in ("vma", "lma"):
        spans = sorted((getattr(s, addr), getattr(s, addr) + s.size, s.name) for s in alloc
                       if addr == "vma" or "LOAD" in s.flags)
        for (a0, a1, n0), (b0, b1, n1) in zip(spans, spans[1:]):
            if b0 < a1:
                problems.append(f"{n0} and {n1} overlap at {b0:#x} ({'run' if addr == 'vma' else 'load'} address)")

    top = board.ram.end
    if board.arch == "arm":
        vec = by_name.get(".isr_vector")
        if vec is None or vec.size < 8:
            problems.append("no .isr_vector section")
        else:
            if board.boot_address is not None and vec.vma != board.boot_address:
                problems.append(f"vector table at {vec.vma:#x}, not at the boot address {board.boot_address:#x}")
            with open(elf, "rb") as f:
                f.seek(offsets[".isr_vector"])
                sp, reset = struct.unpack("<II", f.read(8))
            if sp != top:
                problems.append(f"initial SP {sp:#x} is not the top of RAM {top:#x}")
            if not reset & 1 or not board.flash.contains(reset & ~1):
                problems.append(f"reset vector {reset:#x} is not a Thumb address in flash")
            if (entry & ~1) != (reset & ~1):
                problems.append(f"ELF entry {entry:#x} differs from the reset vector {reset:#x}")
    elif board.boot_address is not None and entry != board.boot_address:
        problems.append(f"entry {entry:#x} is not the boot address {board.boot_address:#x}")
    elif not board.flash.contains(entry):
        problems.append(f"entry {entry:#x} is outside the code region")

    arena = by_name.get(".mg_arena")
    if arena is None or (arena_bytes is not None and arena.size < arena_bytes):
        problems.append(f"no .mg_arena section of at least {arena_bytes or 1} bytes")
    elif not board.ram.contains(arena.vma, arena.size):
        problems.append(f".mg_arena [{arena.vma:#x}, +{arena.size:#x}) is outside RAM")
    sstack, estack = symbols.get("_sstack"), symbols.get("_estack")
    if estack != top or sstack != top - board.stack_bytes:
        problems.append(f"stack [{sstack or 0:#x}, {estack or 0:#x}) is not the top {board.stack_bytes} bytes of RAM")
    elif arena is not None and arena.vma + arena.size > sstack:
        problems.append(".mg_arena runs into the stack")
    if problems:
        raise BoardError(f"{Path(elf).name} does not suit board {board.name}: " + "; ".join(problems))

    def total(names, flag=None):
        return sum(s.size for s in alloc if s.name in names or (flag and flag(s)))

    data = total({".data"})
    special = {".mg_arena", ".stack", ".data"}
    return ElfReport(
        entry=entry, sections=tuple(sections),
        text=total((), lambda s: "LOAD" in s.flags and s.name not in special) + (0 if board.data_in_place else data),
        data=data, bss=total((), lambda s: "LOAD" not in s.flags and s.name not in special),
        arena_start=arena.vma, arena_size=arena.size, stack_start=sstack, stack_size=board.stack_bytes)
