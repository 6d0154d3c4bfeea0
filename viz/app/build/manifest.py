"""The manifest: parse a TOML file and validate every entry before anything renders.

Every problem is one line, ``figures.toml:12: figure "conv-hw": --stride: must be an integer in 1..16
(got 0)``, with the registry's own messages (the ones the command line prints); user text is quoted
so a newline in a name cannot split a line. Besides the parameters, a manifest is checked for:
text that is not UTF-8, TOML nested too deeply, two figures writing one file, and a figure that
would be overwritten by the build's own files (``index.md``, ``gallery.html``).
"""
from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from importlib import resources
from pathlib import Path

from viz.app import registry as figures
from viz.app.params import USER_DATA_TYPES

ENTRY_KEYS = ("name", "kind", "formats", "caption", "params")
TOP_KEYS = ("title", "description", "figure")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# The files the build writes itself in OUT (a figure may not have these names). The HTML page is not
# index.html: MkDocs makes index.md into index.html and drops a static file of that name (--strict fails).
INDEX_MD, INDEX_HTML = "index.md", "gallery.html"
INDEX_FILES = (INDEX_MD, INDEX_HTML)
CACHE_FILE = ".viz-cache.json"
LOG_DIR = ".viz-logs"
# Rough relative cost, to start the slowest figures first (shortest total time with several jobs).
COST = {"animate": 3, "plot": 2, "diagram": 1, "shape": 0}


class ManifestError(ValueError):
    """The manifest or the output folder is unusable; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]):
        errors = [one_line(e) for e in errors]
        super().__init__("\n".join(errors))
        self.errors = errors


def one_line(text: str) -> str:
    """`text` on one line: a newline or a control character from user input shows escaped."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: json.dumps(m.group())[1:-1], str(text))


def quoted(text: str) -> str:
    """A user-given string in double quotes, escaped like JSON (non-ASCII letters kept)."""
    return json.dumps(text, ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One validated figure of a manifest."""

    name: str
    key: str                      # registry key, e.g. "diagram gated-rnn"
    values: dict                  # validated parameters (FigureKind.validate)
    formats: tuple[str, ...]
    caption: str
    line: int                     # line of its [[figure]] header (1-based)

    @property
    def kind(self) -> figures.FigureKind:
        return figures.get(self.key)

    @property
    def cost(self) -> int:
        return COST.get(self.key.split()[0], 1)

    def file(self, fmt: str) -> str:
        return f"{self.name}.{fmt}"

    def files(self) -> list[str]:
        return [self.file(f) for f in self.formats]

    def command(self, fmt: str) -> str:
        return self.kind.command_line(self.values, fmt, self.file(fmt))


@dataclasses.dataclass(frozen=True)
class Manifest:
    title: str
    description: str
    entries: tuple[Entry, ...]
    source: str                   # the name errors and the index show, e.g. "figures.toml"

    def files(self) -> set[str]:
        return {f for e in self.entries for f in e.files()}


def packaged_gallery() -> Path:
    """The default gallery's manifest, shipped inside the package (viz/app/gallery.toml)."""
    return Path(str(resources.files("viz.app") / "gallery.toml"))


def shard(entries, index: int, count: int) -> tuple[Entry, ...]:
    """Shard `index` of `count` (1-based, as `--shard 2/4` reads): entries sorted slowest first, dealt
    round-robin, so every shard gets its share of animations. Deterministic: the same manifest gives
    the same partition on every machine; the shards together are the manifest, each entry once."""
    ordered = sorted(entries, key=lambda e: -e.cost)          # stable: manifest order within a cost
    mine = {id(e) for n, e in enumerate(ordered) if n % count == index - 1}
    return tuple(e for e in entries if id(e) in mine)


# ---------------------------------------------------------------------------------------------------
# Lines: tomllib keeps none, so find each [[figure]] table's region in the text


def _figure_regions(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) 0-based line ranges of each [[figure]] table, in order."""
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*\[\[\s*figure\s*\]\]", line)]
    regions = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        for i in range(start + 1, end):   # a later top-level table ends the entry too
            m = re.match(r"\s*\[+\s*([^\]\s]+)", lines[i])
            if m and not m.group(1).startswith("figure."):
                end = i
                break
        regions.append((start, end))
    return regions


def _line_of(lines: list[str], region: tuple[int, int] | None, keys, in_params: bool) -> int | None:
    """1-based line where one of `keys` is assigned inside a figure's region (params table first)."""
    if region is None:
        return None
    first, end = region
    params_header = r"\s*\[\s*figure\.params\s*\]"
    if in_params:
        first = next((i for i in range(first, end) if re.match(params_header, lines[i])), first)
    for key in keys:
        for i in range(first, end):
            if key == "[figure.params]":
                if re.match(params_header, lines[i]):
                    return i + 1
            elif re.search(rf"(^|[{{,\s])[\"']?{re.escape(key)}[\"']?\s*=", lines[i]):
                return i + 1
    return None


# ---------------------------------------------------------------------------------------------------
# Parse and validate


def _parse(path: Path, text: str | None, source: str) -> tuple[dict, str]:
    if text is None:
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ManifestError([f"{source}: cannot read the manifest ({err.strerror or err})"]) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[:err.start].count(b"\n") + 1
            raise ManifestError([f"{source}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                                 f"{err.start}); save the manifest as UTF-8"]) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        m = re.search(r"at line (\d+)", str(err))
        where = f"{source}:{m.group(1)}" if m else source
        raise ManifestError([f"{where}: invalid TOML: {str(err).split(' (at line')[0]}"]) from None
    except RecursionError:
        raise ManifestError([f"{source}: invalid TOML: arrays or tables nested too deeply"]) from None


def load_manifest(path, *, text: str | None = None, source: str | None = None,
                  quality: str | None = None) -> Manifest:
    """Parse and validate a manifest; raise ManifestError listing every problem found.

    quality: override the `quality` parameter of every kind that has one (low, medium, high).
    """
    path = Path(path)
    source = one_line(source or path.name)
    data, text = _parse(path, text, source)
    lines = text.splitlines()
    errors: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(f"{source}: unknown top-level key {key!r} (allowed: {', '.join(TOP_KEYS)})")
    for key in ("title", "description"):
        if not isinstance(data.get(key, ""), str):
            errors.append(f"{source}: {key}: must be a string (got {type(data[key]).__name__})")
    raw_entries = data.get("figure", [])
    if not isinstance(raw_entries, list) or not all(isinstance(e, dict) for e in raw_entries):
        raise ManifestError(errors + [f"{source}: 'figure' must be an array of tables ([[figure]])"])
    if not raw_entries:
        errors.append(f"{source}: no figures (add [[figure]] tables)")
    regions = _figure_regions(lines)
    entries, seen, writers = [], {}, {}
    for n, raw in enumerate(raw_entries):
        region = regions[n] if len(regions) == len(raw_entries) else None
        header = region[0] + 1 if region else 1
        name = raw.get("name")
        label = f"figure {quoted(name)}" if isinstance(name, str) else f"figure #{n + 1}"

        def fail(message, keys=(), in_params=False):
            line = _line_of(lines, region, keys, in_params) or header
            errors.append(f"{source}:{line}: {label}: {message}")

        if isinstance(name, str) and name in seen:
            fail(f"name {name!r} is used twice (first at line {seen[name]}); "
                 "names become file names, so they must differ", ("name",))
            continue
        if isinstance(name, str):
            seen[name] = header
        entry = _validate_entry(raw, fail, quality, path.parent)
        if entry is None:
            continue
        for file in entry.files():
            if file in INDEX_FILES:
                fail(f"{file} is the build's own index page; rename the figure", ("name",))
            elif file in writers:
                fail(f"writes {file}, which figure {quoted(writers[file][0])} (line {writers[file][1]}) "
                     "writes too; rename one of them", ("name",))
            writers.setdefault(file, (entry.name, header))
        entries.append(dataclasses.replace(entry, line=header))
    if errors:
        raise ManifestError(errors)
    return Manifest(data.get("title", "viz gallery"), data.get("description", ""), tuple(entries), source)


def _validate_entry(raw: dict, fail, quality: str | None, base: Path | None = None) -> Entry | None:
    ok = True
    for key in raw:
        if key not in ENTRY_KEYS:
            fail(f"unknown key {key!r} (allowed: {', '.join(ENTRY_KEYS)}; parameters go in "
                 "[figure.params])", (key,))
            ok = False
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        fail(f"name: must be a file name of letters, digits, '.', '_' or '-' (got {name!r})", ("name",))
        ok = False
    kind = _kind(raw.get("kind"), fail)
    formats = raw.get("formats")
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        fail(f"formats: must be a non-empty list like [\"svg\", \"png\"] (got {formats!r})", ("formats",))
        ok = False
    elif kind is not None:
        bad = [f for f in formats if f not in kind.all_formats]
        if bad:
            fail(f"formats: {kind.key} writes {', '.join(kind.all_formats)} (got {', '.join(map(repr, bad))})",
                 ("formats",))
            ok = False
        elif len(set(formats)) != len(formats):
            fail(f"formats: {formats} lists a format twice", ("formats",))
            ok = False
    caption = raw.get("caption", "")
    if not isinstance(caption, str):
        fail(f"caption: must be a string (got {caption!r})", ("caption",))
        ok = False
    params = raw.get("params", {})
    if not isinstance(params, dict):
        fail("params: must be a table ([figure.params])", ("params",))
        return None
    values = _values(kind, dict(params), fail, quality, base) if kind is not None else None
    if not ok or values is None:
        return None
    return Entry(name, kind.key, values, tuple(formats), caption.strip(), 0)


def _kind(kind_text, fail) -> figures.FigureKind | None:
    if not isinstance(kind_text, str):
        fail(f"kind: is required, one of: {', '.join(figures.KINDS)} (got {kind_text!r})", ("kind",))
        return None
    try:
        return figures.get(kind_text)
    except figures.ParamError as err:
        fail(str(err), ("kind",))
        return None


def _values(kind: figures.FigureKind, params: dict, fail, quality: str | None, base: Path | None = None) -> dict | None:
    params = kind.with_options(params, quality=quality)     # --quality: every kind that has it
    for p in kind.params:      # an array given as a file: a relative path is relative to the manifest
        given = params.get(p.name)
        if p.type in USER_DATA_TYPES and base is not None and isinstance(given, str) and given.strip() \
                and not given.strip().startswith("[") and not Path(given.strip()).is_absolute():
            params[p.name] = str(base / given.strip())
    try:
        return kind.validate(params)
    except figures.ParamError as err:
        fail(str(err), (err.param, err.param.replace("_", "-")), in_params=True)
    except (ValueError, TypeError, RecursionError) as err:  # a combination the reference rejects
        message = str(err) or type(err).__name__
        named = [p.name for p in kind.params if re.match(rf"(--)?{p.name}\b", message)]
        fail(message, tuple(named) + ("[figure.params]",), in_params=True)
    return None
