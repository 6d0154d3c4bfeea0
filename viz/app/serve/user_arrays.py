"""The user's own arrays in the explorer (x, w, b, grad_y, PyTorch layout without the batch axis), edited
as cells on the page and sent as JSON arrays: what a request may hold, the shapes a figure expects, and
the numbers its Story draws (the editor starts from them).

    raw_array(name, value)             the JSON array as sent (nested lists of numbers; a string is parsed
                                       as a JSON literal, never read as a path); BadRequest otherwise
    expected(kind_key, values)         {name: (shape, "for ...")}: the registry's table, minus the arrays
                                       these values do not use (b while the bias is off)
    check(kind_key, values)            BadRequest with the command line's "--w: expected shape ..." line
    arrays_answer(kind_key, values, story, drawn)
                                       {name: {"shape", "why", "given", "values" | "too_many"}}

The editor's cells are bounded (MAX_EDITOR_CELLS per array), and so are the numbers one request may
send (MAX_REQUEST_CELLS in all): the explorer's answer size and the cache stay bounded.
"""
from __future__ import annotations

import json
from math import isfinite, prod

from viz.app import registry as figures
from viz.app.params import USER_DATA_TYPES
from viz.arrays import ArrayError, _flag

MAX_EDITOR_CELLS = 1024                      # one array's editable cells (a 4x16x16 x, a 8x8x4x4 w)
MAX_REQUEST_CELLS = 4 * MAX_EDITOR_CELLS     # every array of one request together (x, w, b, grad_y)
MAX_AXES = 4                                 # w of a 2-D convolution: F x C/groups x k1 x k2

# arrays whose numbers do not enter the figure for these values (the page drops an edited one)
_UNUSED_WHEN = {"b": lambda v: not v.get("bias", True)}


# an array a request got wrong: the one-line message names the parameter (viz.arrays' own error)
BadArray = ArrayError


def is_array_param(kind: figures.FigureKind, name: str) -> bool:
    # every user-data type (arrays, named weights): taken only as a JSON array sent, never a path
    return any(p.name == name and p.type in USER_DATA_TYPES for p in kind.params)


def raw_array(name: str, value) -> list:
    """The nested lists of a JSON array as a request sent them (a string holding a JSON array, for GET
    queries, is parsed here: the explorer never reads a file the command line would)."""
    flag = _flag(name)
    if isinstance(value, str):
        if not value.strip().startswith("["):
            raise BadArray(name, f"{flag}: the explorer takes a JSON array of numbers like [[1, 2, 3]] "
                                 "(files are read by the command line only)")
        try:
            value = json.loads(value, parse_constant=lambda c: c)   # NaN, Infinity: refused below
        except (ValueError, RecursionError):
            raise BadArray(name, f"{flag}: not a JSON array of numbers like [[1, 2, 3]]") from None
    if not isinstance(value, list):
        raise BadArray(name, f"{flag}: must be a JSON array of numbers like [[1, 2, 3]]")
    count(name, value)
    return value


def count(name: str, value, depth: int = 1) -> int:
    """How many numbers `value` holds; BadArray for a non-number, a non-finite one or too many axes."""
    if depth > MAX_AXES:
        raise BadArray(name, f"{_flag(name)}: has more than {MAX_AXES} axes")
    n = 0
    for v in value:
        if isinstance(v, list):
            n += count(name, v, depth + 1)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and isfinite(v):
            n += 1
        else:
            raise BadArray(name, f"{_flag(name)}: every entry must be a finite number (got {json.dumps(v)})")
        if n > MAX_REQUEST_CELLS:
            raise BadArray(name, f"{_flag(name)}: more than {MAX_REQUEST_CELLS} numbers; the explorer edits at most "
                                 f"{MAX_EDITOR_CELLS} per array (larger ones: the command line, --x FILE.npy)")
    return n


def check_total(arrays: dict) -> None:
    total = sum(count(name, value) for name, value in arrays.items())
    if total > MAX_REQUEST_CELLS:
        raise BadArray(next(iter(arrays)), f"arrays: {total} numbers in all; the explorer takes at most "
                                           f"{MAX_REQUEST_CELLS} per request (larger ones: the command line)")


def expected(kind_key: str, values: dict) -> dict:
    return {name: want for name, want in figures.expected_arrays(kind_key, values).items()
            if not _UNUSED_WHEN.get(name, lambda v: False)(values)}


def check(kind_key: str, values: dict) -> None:
    """Each array given has the shape the geometry asks (every figure, whatever its own check does)."""
    import numpy as np

    from viz.arrays import check_shape

    for name, (shape, why) in figures.expected_arrays(kind_key, values).items():
        if values.get(name) is not None:
            check_shape(np.asarray(values[name], dtype=float), shape, name, why)    # ArrayError: one line


def seeded_values(grid: dict, shape: tuple[int, ...]):
    """The array `grid` draws, as nested lists of `shape`: its cells that are not padding (a padded
    input's own numbers), in order; None if they are not that many (not this array)."""
    pad = grid.get("padding") or ()
    flat = [v for i, v in enumerate(grid["values"]) if not (pad and pad[i])]
    if len(flat) != prod(shape):
        return None

    def nest(start: int, axes: tuple[int, ...]):
        if len(axes) == 1:
            return flat[start:start + axes[0]]
        step = prod(axes[1:])
        return [nest(start + i * step, axes[1:]) for i in range(axes[0])]
    return nest(0, shape)


def arrays_answer(kind_key: str, values: dict, story: dict | None, drawn: tuple[str, ...]) -> dict:
    """Every array the figure takes for these values, with its shape and why; an array the mode draws
    (a Story grid of its name, among `drawn` if given) also with the numbers drawn, if few enough to edit."""
    grids = {g["name"]: g for g in (story or {}).get("grids", ()) if not drawn or g["name"] in drawn}
    out = {}
    for name, (shape, why) in expected(kind_key, values).items():
        entry = {"shape": list(shape), "why": why, "given": values.get(name) is not None}
        if name in grids:
            if prod(shape) > MAX_EDITOR_CELLS:
                entry["too_many"] = MAX_EDITOR_CELLS
            elif (seeded := seeded_values(grids[name], shape)) is not None:
                entry["values"] = seeded
        out[name] = entry
    return out
