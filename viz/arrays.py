"""Arrays a user gives (the exam's numbers, not seeded random ones): parsed, checked, and explained.

An array is given as a JSON array literal (``[[1, 2], [3, 4]]``), a nested list (a TOML array in a
manifest), a NumPy array (from Python, or a PyTorch tensor: anything with ``.detach().cpu().numpy()``
or ``__array__``), or a path to a ``.npy``, ``.json`` or ``.csv`` file (relative paths resolve against
``base``: the manifest's folder). Every failure is an `ArrayError` whose one-line message names the
parameter: ``--w: expected shape 1x5x3 for 5 input channels and kernel 3, got 1x5x2``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from viz.text import fmt_shape

MAX_ELEMENTS = 1_000_000      # a figure draws every number: far fewer in practice; this bounds memory


class ArrayError(ValueError):
    """A user array that cannot be used; `param` is its parameter name."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def shape_text(shape) -> str:
    return fmt_shape(shape, "x") if len(shape) else "a scalar"


def _from_tensor(value):
    if hasattr(value, "detach"):                     # a PyTorch tensor, without importing torch
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return value


def _read_file(path: Path, name: str):
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        if suffix == ".csv":
            rows = [line.split(",") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            return [[float(cell) for cell in row] for row in rows]
    except ValueError as err:
        if suffix == ".csv":
            raise ArrayError(name, f"{_flag(name)}: {str(path)!r} must hold numbers separated by commas "
                                   f"({' '.join(str(err).split())})") from None
        raise ArrayError(name, f"{_flag(name)}: cannot read {str(path)!r}: {' '.join(str(err).split())}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ArrayError(name, f"{_flag(name)}: cannot read {str(path)!r}: {' '.join(str(err).split())}") from None
    raise ArrayError(name, f"{_flag(name)}: {str(path)!r} must be a .npy, .json or .csv file")


def load_array(raw, name: str, base: Path | str | None = None) -> np.ndarray:
    """A float64 array from what the user gave; ArrayError naming `name` if it is not a finite,
    non-empty, rectangular array of numbers."""
    value = _from_tensor(raw)
    if isinstance(value, (str, Path)):
        text = str(value).strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as err:
                raise ArrayError(name, f"{_flag(name)}: not a JSON array ({err.msg} at character {err.pos})") from None
        else:
            path = Path(text)
            if base is not None and not path.is_absolute():
                path = Path(base) / path
            if not path.is_file():
                raise ArrayError(name, f"{_flag(name)}: no such file {str(path)!r} (give a JSON array like "
                                       "[[1, 2], [3, 4]] or a .npy, .json or .csv file)")
            value = _read_file(path, name)
    try:
        array = np.array(value, dtype=float)
    except (ValueError, TypeError) as err:
        why = "ragged: rows of different lengths" if "inhomogeneous" in str(err) else "not all numbers"
        raise ArrayError(name, f"{_flag(name)}: must be a rectangular array of numbers ({why})") from None
    if isinstance(value, (list, tuple)) and _has_bool_or_str(value):
        raise ArrayError(name, f"{_flag(name)}: must be a rectangular array of numbers (not all numbers)")
    if array.size == 0:
        raise ArrayError(name, f"{_flag(name)}: is empty (got shape {shape_text(array.shape)})")
    if array.size > MAX_ELEMENTS:
        raise ArrayError(name, f"{_flag(name)}: has {array.size} numbers; at most {MAX_ELEMENTS} can be drawn")
    if not np.all(np.isfinite(array)):
        bad = tuple(int(i) + 1 for i in np.argwhere(~np.isfinite(array))[0])
        raise ArrayError(name, f"{_flag(name)}: must be finite (entry {bad}, 1-based, is {array[tuple(np.array(bad) - 1)]})")
    return array


def _has_bool_or_str(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_bool_or_str(v) for v in value)
    return isinstance(value, (bool, str))


def check_shape(array: np.ndarray, expected: tuple[int, ...], name: str, why: str) -> np.ndarray:
    """`array` if its shape is `expected`; else ArrayError: "--w: expected shape 1x5x3 for <why>, got 1x5x2"."""
    if tuple(array.shape) != tuple(int(v) for v in expected):
        raise ArrayError(name, f"{_flag(name)}: expected shape {shape_text(expected)} for {why}, "
                               f"got {shape_text(array.shape)}")
    return array
