"""Bounds-checked access to FlatBuffer tables for the generated `tflite` schema classes.

The `flatbuffers` runtime trusts every offset it reads: a corrupt file makes it read garbage (Python's
`struct.unpack_from` even accepts negative offsets and reads from the end of the buffer), loop over
vectors with billions of elements, or slice strings short without noticing. `CheckedTable` replaces the
`_tab` of a generated object (`checked(obj)`) and validates, before every read, that the vtable, the
field, the vector or string and the offsets it follows lie inside the file. A violation raises
`CorruptFile`, which the reader turns into a one-line ModelFormatError.

Children returned by generated accessors (`model.Subgraphs(0)`, `op.BuiltinOptions()`, ...) are plain,
unchecked objects again: pass each one through `checked()` before use.
"""

from __future__ import annotations

import struct
from typing import Any, TypeVar

import flatbuffers
import numpy as np
from flatbuffers import number_types as N

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")

T = TypeVar("T")


class CorruptFile(Exception):
    """A structural violation found while reading the FlatBuffer (the message says what and where)."""


class CheckedTable(flatbuffers.table.Table):
    """A flatbuffers Table over `buf` at `pos` whose every read is validated against len(buf)."""

    __slots__ = ("_vtable", "_vtable_len", "_table_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        size = len(buf)
        if not isinstance(pos, int) or pos < 0 or pos + 4 > size:
            raise CorruptFile(f"table at offset {pos} is outside the file ({size} bytes)")
        vtable = pos - _I32.unpack_from(buf, pos)[0]
        if vtable < 0 or vtable + 4 > size:
            raise CorruptFile(f"table at offset {pos} has its vtable outside the file")
        vtable_len, table_len = _U16.unpack_from(buf, vtable)[0], _U16.unpack_from(buf, vtable + 2)[0]
        if vtable_len < 4 or vtable_len % 2 or vtable + vtable_len > size:
            raise CorruptFile(f"table at offset {pos} has a malformed vtable (length {vtable_len})")
        if table_len < 4 or pos + table_len > size:
            raise CorruptFile(f"table at offset {pos} runs past the end of the file")
        super().__init__(buf, pos)
        self._vtable = vtable
        self._vtable_len = vtable_len
        self._table_len = table_len

    # -- primitives --------------------------------------------------------------------------------
    def _check(self, off: int, nbytes: int, what: str) -> None:
        if off < 0 or nbytes < 0 or off + nbytes > len(self.Bytes):
            raise CorruptFile(f"{what} at offset {off} ({nbytes} bytes) is outside the file "
                              f"({len(self.Bytes)} bytes)")

    def Offset(self, vtableOffset: int) -> int:
        if vtableOffset + 2 > self._vtable_len:
            return 0
        field = _U16.unpack_from(self.Bytes, self._vtable + vtableOffset)[0]
        if field and field + 1 > self._table_len:
            raise CorruptFile(f"field {vtableOffset} of the table at offset {self.Pos} lies outside it")
        return field

    def Get(self, flags: Any, off: int) -> Any:
        self._check(off, flags.bytewidth, "value")
        return super().Get(flags, off)

    def Indirect(self, off: int) -> int:
        self._check(off, 4, "offset")
        target = off + _U32.unpack_from(self.Bytes, off)[0]
        self._check(target, 4, "offset target")
        return target

    def _vector(self, off: int, elem_size: int) -> tuple[int, int]:
        """(start of the elements, element count) of the vector whose offset is in field `off`."""
        at = self.Indirect(off + self.Pos)
        count = _U32.unpack_from(self.Bytes, at)[0]
        self._check(at + 4, count * elem_size, "vector")
        return at + 4, count

    def String(self, off: int) -> bytes:
        at = self.Indirect(off)
        length = _U32.unpack_from(self.Bytes, at)[0]
        self._check(at + 4, length, "string")
        return bytes(self.Bytes[at + 4:at + 4 + length])

    def VectorLen(self, off: int) -> int:
        # The element size is not known here: every element takes at least one byte, which bounds
        # loops over the vector by the file size; element reads are checked by Get/Indirect.
        return self._vector(off, 1)[1]

    def Vector(self, off: int) -> int:
        return self._vector(off, 1)[0]

    def Union(self, t2: flatbuffers.table.Table, off: int) -> None:
        t2.Pos = self.Indirect(off + self.Pos)
        t2.Bytes = self.Bytes

    def GetVectorAsNumpy(self, flags: Any, off: int) -> np.ndarray:
        start, count = self._vector(off, flags.bytewidth)
        dtype = np.dtype(N.to_numpy_type(flags)).newbyteorder("<")
        return np.frombuffer(self.Bytes, dtype=dtype, count=count, offset=start)


def checked(obj: T) -> T:
    """Give a generated tflite object (Model, Tensor, Conv2DOptions, ...) a checked table."""
    tab = obj._tab  # type: ignore[attr-defined]
    obj._tab = CheckedTable(tab.Bytes, tab.Pos)  # type: ignore[attr-defined]
    return obj


def root(cls: type[T], buf: bytes) -> T:
    """The root table of the file as a checked `cls` object."""
    if len(buf) < 8:
        raise CorruptFile(f"the file is {len(buf)} bytes, too short for a FlatBuffer")
    obj = cls()
    obj._tab = CheckedTable(buf, _U32.unpack_from(buf, 0)[0])  # type: ignore[attr-defined]
    return obj


def child(obj: Any) -> Any:
    """A child table returned by a generated accessor, checked; None stays None."""
    return None if obj is None else checked(obj)


def vector_span(obj: Any, slot: int) -> tuple[int, int]:
    """(start offset in the file, length in bytes) of the ubyte vector in vtable `slot`; (0, 0) if absent."""
    tab = obj._tab
    off = tab.Offset(slot)
    return tab._vector(off, 1) if off else (0, 0)


def numpy_field(obj: Any, name: str) -> np.ndarray | None:
    """A vector field as a numpy array via the generated `<name>AsNumpy`, None when absent."""
    if getattr(obj, f"{name}IsNone")():
        return None
    return getattr(obj, f"{name}AsNumpy")()


def empty_table(cls: type[T], module: Any) -> T:
    """An instance of `cls` over a table with no fields: every accessor returns the schema default."""
    builder = flatbuffers.Builder(16)
    name = cls.__name__
    getattr(module, f"{name}Start")(builder)
    builder.Finish(getattr(module, f"{name}End")(builder))
    obj = cls.GetRootAs(bytes(builder.Output()), 0)  # type: ignore[attr-defined]
    return checked(obj)
