"""The one error tree of microgen.

Every error a user can cause (a bad file, an unsupported op, a model that does not fit, a board that
does not answer) is a `MicrogenError` subclass with a message naming the cause, the place and, where
one exists, a next step. The CLI catches `MicrogenError` once, prints one line and exits with
`exit_code`. Internal bugs stay asserts and tracebacks.
"""

from __future__ import annotations


class MicrogenError(Exception):
    """Base of every error a user can cause. `str(e)` is the one-line message."""

    exit_code = 2


class ModelFormatError(MicrogenError):
    """The model file is missing, truncated, corrupt, or not a model format microgen reads."""


class UnsupportedOpError(MicrogenError):
    """The model uses an operator (or an operator variant) microgen cannot compile yet."""


class UnsupportedDTypeError(MicrogenError):
    """A tensor has a data type microgen does not handle (e.g. float8, int4)."""


class InvalidInputError(MicrogenError):
    """Data handed to microgen (input arrays, calibration data, options) does not fit the model."""


class DoesNotFitError(MicrogenError):
    """The model does not fit the memory of the chosen board."""


class BoardError(MicrogenError):
    """A board, emulator or toolchain failed."""


class DeviceTimeoutError(BoardError):
    """A board did not answer within its timeout."""
