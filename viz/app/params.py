"""Parameter types: one class per kind of value a figure takes, shared by every front end.

Each type parses a raw value (a command-line string, a manifest value, a JSON value), formats a typed
value back to its command-line spelling (``parse(format(v)) == v``), describes its allowed range (the
text of every error message and of ``--help``), and offers shell completions. The registry declares
parameters as ``Param(name, type, default, help, min=..., max=..., choices=...)``; `type` picks the
class (``Param("steps", "int", ...)`` is an `IntParam`).

Parses are strict and ASCII: integers are ``-?[0-9]+`` (no ``+2``, no ``1_0``, no Arabic-Indic or
full-width digits), numbers are decimal literals like ``0.5``, ``-3``, ``1e-3`` (no ``inf``/``nan``),
sizes are joined by ``x`` (``7x5``; ``×`` is accepted as the same letter). A bad value raises
`ParamError`, one line naming the flag and the range: ``--stride: must be ... (got 0)``.

A parameter with ``render_option=True`` (quality, theme, step time) says how a figure is drawn, not what
it shows; the registry keeps those apart from the figure's parameters (`FigureKind.render_options`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from viz.io import escape

_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INFINITE = ("inf", "∞", "infinity", "none")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class ParamError(ValueError):
    """A parameter value outside its allowed range; `param` is the parameter's name."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Param:
    """One parameter of a figure kind; ``Param(name, type, ...)`` builds the subclass `type` names:

      int, float       a number in [min, max]
      choice           one of `choices`
      flag             a boolean switch
      shape            sizes per axis: ``7``, ``21x12`` (or a list in a manifest); each in [min, max]
      padding          ``2``, ``1x2`` (per axis), ``1:2x0:1`` (lo:hi per axis), ``same`` or ``valid``
      k                a positive int in [min, max], or ``inf`` (AttentionRNN(∞), stored as None)
      list             positive ints ``1,3,5`` or ``all`` (stored as ())
      array            a user array: JSON, nested list, .npy/.json/.csv path (stored as nested tuples)
      weights          named user arrays: a .npz/.json file, a JSON object, a dict (stored as (name, array) pairs)
    """

    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    max_axes: int = 3
    required: bool = False
    broadcast: bool = False  # shape: a single size means "the same on every axis" (kept as an int)
    applies: tuple[tuple[str, tuple[str, ...]], ...] = ()  # only meaningful when these params have these values
    render_option: bool = False   # how the figure is drawn (quality, theme), not what it shows
    carries: str = ""             # flag: the array parameter a value given to it goes to (--bias [ARRAY])

    TYPES: ClassVar[dict[str, type]] = {}
    metavar: ClassVar[str] = "VALUE"

    def __init_subclass__(cls, type_name: str = "", **kw):
        super().__init_subclass__(**kw)
        if type_name:
            Param.TYPES[type_name] = cls

    def __new__(cls, name=None, type=None, *args, **kw):
        if cls is Param:
            kind = kw.get("type", type)
            if kind not in Param.TYPES:
                raise TypeError(f"Param {name!r}: unknown type {kind!r} (one of {', '.join(Param.TYPES)})")
            cls = Param.TYPES[kind]
        return object.__new__(cls)

    # -- what every type shares ---------------------------------------------------------------------

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, values: dict) -> bool:
        """Whether this parameter matters for these values (the explorer hides it otherwise)."""
        return all(values.get(name) in allowed for name, allowed in self.applies)

    def parse(self, raw):
        """A raw value (command-line string, manifest or JSON value) as a typed value; ParamError if bad.
        Parsing a typed value gives it back, so front ends may parse twice."""
        if raw is None:
            if self.default is None:
                return None
            raise self._fail(raw)
        return self._parse(raw)

    def format(self, value) -> str:
        """The command-line spelling of a typed value (the inverse of parse)."""
        return str(value)

    def describe_range(self) -> str:
        raise NotImplementedError

    def completions(self, incomplete: str) -> list[str]:
        """Words a shell may offer for a value starting with `incomplete` (none for free numbers)."""
        return [w for w in self._words() if w.startswith(incomplete)]

    def _words(self) -> tuple[str, ...]:
        return ()

    def to_json(self) -> dict:
        """Plain description for the explorer's form and the manifest documentation."""
        return {"name": self.name, "flag": self.flag, "type": self.type, "default": _jsonable(self.default),
                "help": self.help, "min": self.min, "max": self.max, "choices": list(self.choices),
                "range": self.describe_range(),
                "applies": {name: list(allowed) for name, allowed in self.applies},
                "render_option": self.render_option}

    def _parse(self, raw):
        raise NotImplementedError

    def _fail(self, raw) -> ParamError:
        return ParamError(self.name, f"{self.flag}: must be {self.describe_range()} (got {show(raw)})")

    def _int(self, raw, value) -> int:
        """`value` (a part of `raw`) as an int in [min, max]; errors quote the whole `raw`."""
        if isinstance(value, bool):
            raise self._fail(raw)
        if isinstance(value, str):
            if not _INT.fullmatch(value.strip(" \t")):
                raise self._fail(raw)
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or not (self.min <= value <= self.max):
            raise self._fail(raw)
        return value


class IntParam(Param, type_name="int"):
    metavar = "INT"

    def describe_range(self) -> str:
        return f"an integer in {self.min}..{self.max}"

    def _parse(self, raw):
        return self._int(raw, raw)


class FloatParam(Param, type_name="float"):
    metavar = "NUMBER"

    def describe_range(self) -> str:
        return f"a number in {self.min:g}..{self.max:g}"

    def _parse(self, raw):
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise self._fail(raw)
        if isinstance(raw, str) and not _NUMBER.fullmatch(raw.strip(" \t")):
            raise self._fail(raw)
        value = float(raw)
        if not self.min <= value <= self.max:
            raise self._fail(raw)
        return value

    def format(self, value) -> str:
        return f"{value:g}"


class ChoiceParam(Param, type_name="choice"):
    @property
    def metavar(self) -> str:
        return "[" + "|".join(self.choices) + "]"

    def describe_range(self) -> str:
        return "one of " + ", ".join(self.choices)

    def _parse(self, raw):
        if not isinstance(raw, str) or raw not in self.choices:
            raise self._fail(raw)
        return raw

    def _words(self):
        return self.choices


class FlagParam(Param, type_name="flag"):
    def describe_range(self) -> str:
        return "true or false" + (f", or an array (your {self.carries})" if self.carries else "")

    def carried(self, raw) -> bool:
        """Whether `raw`, given to this flag, is the array it carries rather than true/false."""
        if not self.carries or raw is None or isinstance(raw, bool):
            return False
        return not (isinstance(raw, (str, int)) and str(raw).strip().lower() in _TRUE + _FALSE)

    def _parse(self, raw):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower() if isinstance(raw, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self._fail(raw)

    def format(self, value) -> str:
        return "true" if value else "false"

    def _words(self):
        return ("true", "false")


class SpanParam(Param, type_name="k"):
    """AttentionRNN's span: an integer, or ``inf`` for AttentionRNN(∞) (stored as None)."""
    metavar = "K|inf"

    def describe_range(self) -> str:
        return f"an integer in {self.min}..{self.max} or inf"

    def parse(self, raw):
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in _INFINITE):
            return None
        return self._int(raw, raw)

    def format(self, value) -> str:
        return "inf" if value is None else str(value)

    def _words(self):
        return ("inf",)


class ShapeParam(Param, type_name="shape"):
    metavar = "SIZES"

    def describe_range(self) -> str:
        return f"sizes like 7 or 7x5 (up to {self.max_axes} axes), each in {self.min}..{self.max}"

    def _parse(self, raw):
        parts = self._axes(raw)
        sizes = tuple(self._int(raw, p) for p in parts)
        return sizes[0] if self.broadcast and len(sizes) == 1 else sizes

    def _axes(self, raw) -> list:
        """The per-axis parts of `raw`: ``"7x5"`` (``×`` too), a list, or one integer."""
        if isinstance(raw, (list, tuple)):
            parts = list(raw)
        elif isinstance(raw, int) and not isinstance(raw, bool):
            parts = [raw]
        elif isinstance(raw, str) and raw.strip():
            parts = [p.strip() for p in raw.strip().lower().replace("×", "x").split("x")]
        else:
            raise self._fail(raw)
        if not 1 <= len(parts) <= self.max_axes:
            raise self._fail(raw)
        return parts

    def format(self, value) -> str:
        if isinstance(value, tuple):
            return "x".join(f"{v[0]}:{v[1]}" if isinstance(v, tuple) else str(v) for v in value)
        return str(value)


class PaddingParam(ShapeParam, type_name="padding"):
    metavar = "PADDING"

    def describe_range(self) -> str:
        return (f"padding like 1, 1x2, 1:2x0:1 (lo:hi per axis), same or valid, each in "
                f"{self.min}..{self.max}")

    def _parse(self, raw):
        if isinstance(raw, str) and raw.strip().lower() in ("same", "valid"):
            return raw.strip().lower()
        axes = []
        for p in self._axes(raw):
            if isinstance(p, str) and ":" in p:
                lo, _, hi = p.partition(":")
                axes.append((self._int(raw, lo), self._int(raw, hi)))
            elif isinstance(p, (list, tuple)):
                if len(p) != 2:
                    raise self._fail(raw)
                axes.append((self._int(raw, p[0]), self._int(raw, p[1])))
            else:
                axes.append(self._int(raw, p))
        if len(axes) == 1 and not isinstance(axes[0], tuple):
            return axes[0]
        return tuple(axes)

    def _words(self):
        return ("same", "valid")


class ListParam(Param, type_name="list"):
    """Positive integers ``1,3,5`` (a list in a manifest), or ``all`` (stored as the empty tuple)."""
    metavar = "N,N,..."

    def describe_range(self) -> str:
        return f"all, or integers like 1,3,5, each in {self.min}..{self.max}"

    def _parse(self, raw):
        if isinstance(raw, str) and raw.strip().lower() == "all" or raw == ():
            return ()
        parts = list(raw) if isinstance(raw, (list, tuple)) else str(raw).split(",") if isinstance(raw, str) \
            else [raw]
        if not parts or any(isinstance(p, str) and not p.strip() for p in parts):
            raise self._fail(raw)
        return tuple(self._int(raw, p) for p in parts)

    def format(self, value) -> str:
        return ",".join(str(v) for v in value) if value else "all"

    def _words(self):
        return ("all",)


class _UserDataParam(Param):
    """The user's own numbers (arrays, named weights): optional, and None (not given) formats as JSON's
    "null", which parses back to None."""

    def parse(self, raw):
        return None if raw is None or (isinstance(raw, str) and raw.strip() == "null") else self._parse(raw)


class ArrayParam(_UserDataParam, type_name="array"):
    """A user array (viz.arrays): a JSON literal, a nested list, a NumPy array or tensor, or a path to a
    .npy, .json or .csv file. Kept as nested tuples of floats (hashable, JSON-able, cache-keyable);
    its shape is checked against the geometry by the kind's check."""
    metavar = "ARRAY|FILE"

    def describe_range(self) -> str:
        return "a JSON array like [[1, 2], [3, 4]], or a .npy, .json or .csv file"

    def _parse(self, raw):
        from viz.arrays import ArrayError, load_array

        try:
            a = load_array(raw, self.name)
        except ArrayError as err:
            raise ParamError(self.name, str(err)) from None
        if a.ndim == 0:       # every figure array has axes (a bias is [b]); a bare number reads as a path
            raise ParamError(self.name, f"{self.flag}: must be an array like [1, 2], not a single number "
                                        f"(got {show(raw)})")
        return _nested(a)

    def format(self, value) -> str:
        """JSON, whole numbers without ".0" (as a person types them): [[1,-2.5]]."""
        import json

        def plain(v):
            if isinstance(v, (list, tuple)):
                return [plain(e) for e in v]
            return int(v) if float(v).is_integer() else float(v)
        return json.dumps(plain(value), separators=(",", ":"))


class WeightsParam(_UserDataParam, type_name="weights"):
    """Named user arrays (viz.rnn_weights): a .npz file, a .json file or JSON object of arrays, or from
    Python a dict of arrays or tensors. Kept as ((name, nested tuples), ...) sorted by name (hashable,
    cache-keyable); formats as a JSON object. Which names and shapes a model needs is the kind's check.
    Like an array it is the user's data, never a form field: manifests resolve its path against the
    manifest's folder and the explorer takes none (`USER_DATA_TYPES`)."""
    metavar = "FILE.npz"

    def describe_range(self) -> str:
        return 'a .npz or .json file of named arrays, or a JSON object like {"W_c": [[1, 2]], ...}'

    def _parse(self, raw):
        from viz.arrays import ArrayError
        from viz.rnn_weights import read_weights

        if isinstance(raw, (bool, int, float, list)):
            raise self._fail(raw)
        try:
            weights = read_weights(raw, self.name)
        except ArrayError as err:
            raise ParamError(self.name, str(err)) from None
        return tuple((key, _nested(weights[key])) for key in sorted(weights))

    def format(self, value) -> str:
        return json.dumps({key: array for key, array in value}, separators=(",", ":"))


# parameter types whose values are the user's own numbers, given inline or as a file: a manifest resolves a
# relative path against its folder, the explorer takes them only as JSON arrays it was sent (never a path)
USER_DATA_TYPES = ("array", "weights")


def _nested(a):
    return tuple(_nested(v) for v in a) if getattr(a, "ndim", 0) else float(a)


def show(raw) -> str:
    """A raw value as it appears in a one-line message: text as typed (quoted when blank or when it
    holds control characters, which are escaped: a newline never splits the message), other values as
    JSON-like reprs."""
    if isinstance(raw, str):
        return raw if raw.strip() and raw.isprintable() else '"' + escape(raw) + '"'
    return repr(_jsonable(raw))


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
