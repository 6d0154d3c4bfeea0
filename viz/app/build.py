"""`viz build`: render every figure a manifest lists, in parallel, with a content-addressed cache.

A manifest is TOML; each ``[[figure]]`` names a kind of the registry (`viz.figures.KINDS`), its
parameters exactly as the command line takes them, and its output formats::

    title = "Figures for lecture 7"          # optional, heads index.html / index.md

    [[figure]]
    name = "gated-unrolled"                  # output files: gated-unrolled.svg, gated-unrolled.png
    kind = "diagram gated-rnn"               # "shape", "diagram ...", "animate ..." (or "animation ...")
    formats = ["svg", "png"]
    caption = "The gated RNN unrolled over four steps."
    [figure.params]
    view = "unrolled"
    steps = 4

The build, in order:

1. **Validate everything first.** Unknown kinds, keys, parameters or values are reported as
   ``figures.toml:12: figure "conv-hw": --stride: must be an integer in 1..16 (got 0)``, one line
   each (the messages are the registry's, the same the command line prints); nothing is written.
2. **Cache.** Each output file has a key: sha256 of the kind, the validated parameters (canonical
   JSON), the format, the viz version, the versions of the tools that kind uses (`dot -V`, manim,
   matplotlib, numpy, ...) and a hash of the source of the packages that draw it (viz and diagrams
   for a diagram, viz and scenes for an animation), so a code change re-renders what it can change. Keys and the sha256 of each output live in ``OUT/.viz-cache.json``; a
   file is up to date when its key matches and the file on disk still has the recorded hash.
3. **Render** the stale files: one task per figure, in worker processes (manim's config is
   process-global), at most ``jobs`` at a time, slowest kinds first. A failing figure does not stop
   the others; its traceback and the renderer's output go to ``OUT/.viz-logs/NAME.log``.
   Outputs are written atomically (a temporary file in OUT, renamed when complete).
4. **Index**: ``index.md`` and ``index.html`` embed each figure with its caption and the ``viz ...``
   command that reproduces it. Deterministic: no timestamps.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import html
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from importlib import metadata, resources, util
from pathlib import Path

from viz import __version__
from viz.app import registry as figures
from viz.io import atomic_path, write_text_atomic

CACHE_FILE = ".viz-cache.json"
LOG_DIR = ".viz-logs"
ENTRY_KEYS = ("name", "kind", "formats", "caption", "params")
TOP_KEYS = ("title", "description", "figure")
KIND_ALIASES = {"animation": "animate"}   # the issue's spelling; the CLI's is "animate"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Rough relative cost, to start the slowest figures first (shortest total time with several jobs).
COST = {"animate": 3, "plot": 2, "diagram": 1, "shape": 0}
# The tools whose version goes into the cache key of each command (Python distributions, or "dot").
TOOLS = {
    "shape": ("numpy",),
    "diagram": ("numpy", "graphviz", "dot"),
    "plot": ("numpy", "matplotlib"),
    "animate": ("numpy", "manim", "typst", "pycairo", "manimpango", "av"),
}
# Front ends: they do not change what a figure looks like, so editing them re-renders nothing.
FRONT_ENDS = {"viz/cli.py", "viz/build.py", "viz/serve.py", "viz/notebook.py"}
# The packages whose source shapes each command's figures (a change to scenes/ re-renders animations,
# not diagrams); a kind with another command depends on all of them.
SOURCES = {
    "shape": ("viz",),
    "diagram": ("viz", "diagrams"),
    "plot": ("viz", "diagrams"),
    "animate": ("viz", "scenes"),
}
SOURCE_PACKAGES = ("viz", "diagrams", "scenes")


class ManifestError(ValueError):
    """The manifest is invalid; `errors` holds one line per problem (``file:line: figure "x": ...``)."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


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

    def file(self, fmt: str) -> str:
        return f"{self.name}.{fmt}"

    def command(self, fmt: str) -> str:
        return self.kind.command_line(self.values, fmt, self.file(fmt))


@dataclasses.dataclass(frozen=True)
class Manifest:
    title: str
    description: str
    entries: tuple[Entry, ...]
    source: str                   # the name errors and the index show, e.g. "figures.toml"


# ---------------------------------------------------------------------------------------------------
# Manifest: parse and validate everything before rendering anything


def _figure_regions(lines: list[str]) -> list[tuple[int, int]]:
    """(first, end) 0-based line ranges of each [[figure]] table, in order (tomllib keeps no lines)."""
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
    if in_params:
        for i in range(first, end):
            if re.match(r"\s*\[\s*figure\.params\s*\]", lines[i]):
                first = i
                break
    for key in keys:
        for i in range(first, end):
            if key == "[figure.params]":
                if re.match(r"\s*\[\s*figure\.params\s*\]", lines[i]):
                    return i + 1
            elif re.search(rf"(^|[{{,\s])[\"']?{re.escape(key)}[\"']?\s*=", lines[i]):
                return i + 1
    return None


def load_manifest(path, *, text: str | None = None, source: str | None = None,
                  quality: str | None = None) -> Manifest:
    """Parse and validate a manifest; raise ManifestError listing every problem found.

    quality: override the `quality` parameter of every kind that has one (low, medium, high).
    """
    path = Path(path)
    source = source or path.name
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ManifestError([f"{source}: cannot read the manifest ({err.strerror or err})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        m = re.search(r"at line (\d+)", str(err))
        where = f"{source}:{m.group(1)}" if m else source
        raise ManifestError([f"{where}: invalid TOML: {str(err).split(' (at line')[0]}"]) from None
    lines = text.splitlines()
    errors: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(f"{source}: unknown top-level key {key!r} (allowed: {', '.join(TOP_KEYS)})")
    raw_entries = data.get("figure", [])
    if not isinstance(raw_entries, list) or not all(isinstance(e, dict) for e in raw_entries):
        raise ManifestError(errors + [f"{source}: 'figure' must be an array of tables ([[figure]])"])
    if not raw_entries:
        errors.append(f"{source}: no figures (add [[figure]] tables)")
    regions = _figure_regions(lines)
    entries, seen = [], {}
    for n, raw in enumerate(raw_entries):
        region = regions[n] if n < len(regions) and len(regions) == len(raw_entries) else None
        header = region[0] + 1 if region else 1
        label = f"figure \"{raw['name']}\"" if isinstance(raw.get("name"), str) else f"figure #{n + 1}"

        def fail(message, keys=(), in_params=False):
            line = _line_of(lines, region, keys, in_params) or header
            errors.append(f"{source}:{line}: {label}: {message}")

        name = raw.get("name")
        if isinstance(name, str) and name in seen:
            fail(f"name {name!r} is used twice (first at line {seen[name]}); "
                 "names become file names, so they must differ", ("name",))
            continue
        if isinstance(name, str):
            seen[name] = header
        entry = _validate_entry(raw, fail, quality)
        if entry is not None:
            entries.append(dataclasses.replace(entry, line=header))
    if errors:
        raise ManifestError(errors)
    return Manifest(str(data.get("title", "viz gallery")), str(data.get("description", "")),
                    tuple(entries), source)


def _validate_entry(raw: dict, fail, quality: str | None) -> Entry | None:
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
    kind_text = raw.get("kind")
    kind = None
    if not isinstance(kind_text, str):
        fail(f"kind: is required, one of: {', '.join(figures.KINDS)} (got {kind_text!r})", ("kind",))
        ok = False
    else:
        words = kind_text.split()
        if words:
            words[0] = KIND_ALIASES.get(words[0], words[0])
        try:
            kind = figures.get(" ".join(words))
        except figures.ParamError as err:
            fail(str(err), ("kind",))
            ok = False
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
    if kind is None:
        return None
    params = dict(params)
    if quality is not None and any(p.name == "quality" for p in kind.params):
        params["quality"] = quality
    try:
        values = kind.validate(params)
    except figures.ParamError as err:
        fail(str(err), (err.param, err.param.replace("_", "-")), in_params=True)
        return None
    except ValueError as err:  # a combination the reference rejects (e.g. the kernel is too large)
        message = str(err)
        named = [p.name for p in kind.params if re.match(rf"(--)?{p.name}\b", message)]
        fail(message, tuple(named) + ("[figure.params]",), in_params=True)
        return None
    if not ok:
        return None
    return Entry(name, kind.key, values, tuple(formats), caption.strip(), 0)


def packaged_gallery() -> Path:
    """The default gallery's manifest, shipped inside the package (viz/gallery.toml)."""
    return Path(str(resources.files("viz.app") / "gallery.toml"))


# ---------------------------------------------------------------------------------------------------
# Cache keys


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def canonical_json(value) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@functools.cache
def tool_version(tool: str) -> str:
    """Version of a tool that shapes the output: a Python distribution, or Graphviz's `dot`."""
    if tool == "dot":
        try:
            done = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return "missing"
        return (done.stderr or done.stdout).strip()
    try:
        return metadata.version(tool)
    except metadata.PackageNotFoundError:
        return "missing"


@functools.cache
def source_hash(packages: tuple[str, ...] = SOURCE_PACKAGES) -> str:
    """sha256 over the Python source of `packages` (front ends excluded: they draw nothing)."""
    digest = hashlib.sha256()
    for package in packages:
        spec = util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for file in sorted(root.rglob("*.py")):
            rel = f"{package}/{file.relative_to(root).as_posix()}"
            if rel in FRONT_ENDS or "__pycache__" in file.parts:
                continue
            digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(command: str) -> dict:
    """Everything besides the parameters that can change a figure of this command."""
    tools = TOOLS.get(command, tuple(sorted({t for ts in TOOLS.values() for t in ts})))
    return {"viz": __version__, "source": source_hash(SOURCES.get(command, SOURCE_PACKAGES)),
            **{t: tool_version(t) for t in tools}}


def cache_key(key: str, values: dict, fmt: str) -> str:
    """Content address of one output file: changes iff its parameters, format, viz or a tool change."""
    payload = {"kind": key, "params": values, "format": fmt,
               "environment": fingerprint(key.split()[0])}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(out_dir: Path) -> dict:
    try:
        data = json.loads((out_dir / CACHE_FILE).read_text(encoding="utf-8"))
        files = data.get("files", {})
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_cache(out_dir: Path, files: dict) -> None:
    text = json.dumps({"viz": __version__, "files": dict(sorted(files.items()))}, indent=1) + "\n"
    write_text_atomic(out_dir / CACHE_FILE, text)


def _up_to_date(out_dir: Path, record, key: str) -> bool:
    if not isinstance(record, dict) or record.get("key") != key:
        return False
    path = out_dir / record.get("file", "")
    try:
        return path.is_file() and file_sha256(path) == record.get("sha256")
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------------
# Rendering one figure (in a worker process, or in-process with --jobs 1)


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    key: str
    values: dict
    formats: tuple[str, ...]      # the stale ones only
    out_dir: str


@dataclasses.dataclass
class Result:
    name: str
    files: dict                   # fmt -> sha256 of the written file
    errors: dict                  # fmt -> one-line message
    seconds: float
    log: str = ""                 # path of the failure log, if any


class _Captured:
    text = ""


@contextlib.contextmanager
def _captured_output():
    """Send everything the renderer prints (Python and C level, stdout and stderr) to a temporary
    file, so worker output does not garble the progress bar; `.text` holds its tail afterwards."""
    import tempfile

    captured = _Captured()
    with tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = []
        text = io.TextIOWrapper(sink, encoding="utf-8", errors="replace", write_through=True)
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield captured
        finally:
            text.flush()
            text.detach()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.text = sink.read()[-20000:].decode("utf-8", "replace")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(err, (ValueError, figures.ParamError)) or type(err).__name__ == "MissingProgram":
        return message or type(err).__name__
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def render_task(task: Task) -> Result:
    """Render the stale formats of one figure; never raises for a renderer's error."""
    start = time.perf_counter()
    kind = figures.get(task.key)
    out_dir = Path(task.out_dir)
    files, errors, tracebacks = {}, {}, []
    with _captured_output() as captured:
        for fmt in task.formats:
            target = out_dir / f"{task.name}.{fmt}"
            for attempt in (1, 2):
                try:
                    with atomic_path(target) as tmp:
                        kind.render_to(dict(task.values), tmp, fmt)
                        if not tmp.is_file() or tmp.stat().st_size == 0:
                            raise RuntimeError(f"the renderer wrote nothing to {target.name}")
                    files[fmt] = file_sha256(target)
                    break
                except Exception as err:  # one format failing must not stop the others
                    tracebacks.append(f"--- {target.name} (attempt {attempt})\n{traceback.format_exc()}")
                    # An OSError can be a race between processes over a shared cache (Manim's text
                    # SVGs): one more try. Anything else is the figure's own error.
                    if attempt == 2 or not isinstance(err, OSError):
                        errors[fmt] = _one_line(err)
                        break
    log = ""
    if errors:
        log_path = out_dir / LOG_DIR / f"{task.name}.log"
        output = captured.text
        write_text_atomic(log_path, "".join(tracebacks) + ("\n--- output\n" + output if output else ""))
        log = str(log_path)
    return Result(task.name, files, errors, time.perf_counter() - start, log)


# ---------------------------------------------------------------------------------------------------
# Progress: a bar on a terminal, one line per figure otherwise


class Progress:
    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.running: dict[str, float] = {}
        self.last_width = 0

    def _bar(self) -> str:
        width = 24
        filled = round(width * self.done / self.total) if self.total else width
        now = time.perf_counter()
        current = ", ".join(f"{n} ({now - t:.0f} s)" for n, t in self.running.items())
        columns = shutil.get_terminal_size((100, 20)).columns
        line = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  {current}"
        return line[:columns - 1]

    def _draw(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + self._bar())
            self.stream.flush()

    def start(self, name: str) -> None:
        self.running[name] = time.perf_counter()
        self._draw()

    def tick(self) -> None:
        self._draw()

    def finish(self, result: Result, detail: str) -> None:
        self.running.pop(result.name, None)
        self.done += 1
        line = f"viz build: [{self.done}/{self.total}] {result.name}: {detail}"
        if self.tty:
            if result.errors:   # failures stay on screen above the bar
                self.stream.write("\r\x1b[K" + line + "\n")
            self._draw()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ---------------------------------------------------------------------------------------------------
# The build


@dataclasses.dataclass
class BuildReport:
    rendered: list[str]           # files written
    up_to_date: list[str]         # files the cache kept
    failed: dict                  # file -> one-line message
    logs: dict                    # figure name -> log path
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failed


def _pool(jobs: int) -> ProcessPoolExecutor:
    # fork: workers inherit the registry as it is (including kinds registered at run time) and skip
    # re-importing NumPy; each worker imports its heavy renderer once and keeps it for later figures.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))


def _run(tasks: list[Task], jobs: int, on_start, on_done) -> None:
    """Run tasks, at most `jobs` at once; a crashed worker process gets its figure one retry."""
    if jobs <= 1:
        for task in tasks:
            on_start(task)
            on_done(render_task(task))
        return
    pending = deque(tasks)
    attempts: dict[str, int] = {}
    pool = _pool(jobs)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < jobs:
                task = pending.popleft()
                attempts[task.name] = attempts.get(task.name, 0) + 1
                inflight[pool.submit(render_task, task)] = task
                on_start(task)
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = inflight.pop(future)
                try:
                    on_done(future.result())
                except BrokenProcessPool:
                    broken = True
                    if attempts[task.name] < 2:
                        pending.appendleft(task)
                    else:
                        msg = "the worker process died (crash or out of memory)"
                        on_done(Result(task.name, {}, {f: msg for f in task.formats}, 0.0))
            if not done:
                on_start(None)  # redraw the bar with elapsed times
            if broken:
                for future, task in inflight.items():  # they died with the pool: run them again
                    pending.appendleft(task)
                inflight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _pool(jobs)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def build(manifest, out_dir, *, jobs: int | None = None, force: bool = False, quality: str | None = None,
          stream=None, source: str | None = None) -> BuildReport:
    """Build every figure of `manifest` (a path or a loaded Manifest) into `out_dir`.

    Raises ManifestError (before writing anything) when the manifest is invalid. Returns a report;
    `report.ok` is False when a figure failed (the other figures are still rendered).
    """
    stream = stream if stream is not None else sys.stderr
    start = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest, source=source, quality=quality)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ManifestError([f"--out: {out_dir} exists and is not a directory"])
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))

    cache = _read_cache(out_dir)
    keys, stale, kept = {}, {}, []
    for entry in manifest.entries:
        for fmt in entry.formats:
            file = entry.file(fmt)
            keys[file] = cache_key(entry.key, entry.values, fmt)
            if not force and _up_to_date(out_dir, cache.get(file), keys[file]):
                kept.append(file)
            else:
                stale.setdefault(entry.name, []).append(fmt)
    by_name = {e.name: e for e in manifest.entries}
    tasks = [Task(name, by_name[name].key, by_name[name].values, tuple(fmts), str(out_dir))
             for name, fmts in stale.items()]
    tasks.sort(key=lambda t: -COST.get(t.key.split()[0], 1))   # stable: manifest order within a cost
    out_dir.mkdir(parents=True, exist_ok=True)
    # the cache keeps only this manifest's files; records of stale files go until they are re-rendered
    files = {f: cache[f] for f in kept}
    report = BuildReport([], kept, {}, {}, 0.0)

    if not tasks:
        stream.write(f"viz build: nothing to render: all {len(manifest.entries)} figures "
                     f"({len(kept)} files) are up to date in {out_dir}\n")
    else:
        jobs = min(jobs, len(tasks))
        stream.write(f"viz build: rendering {len(tasks)} of {len(manifest.entries)} figures "
                     f"({sum(len(t.formats) for t in tasks)} files) into {out_dir} with {jobs} "
                     f"job{'s' if jobs > 1 else ''}"
                     + (f"; {len(kept)} files up to date" if kept else "") + "\n")
        stream.flush()
        progress = Progress(len(tasks), stream)

        def on_start(task):
            if task is None:
                progress.tick()
            else:
                progress.start(task.name)

        def on_done(result: Result):
            for fmt, sha in result.files.items():
                file = f"{result.name}.{fmt}"
                files[file] = {"file": file, "key": keys[file], "sha256": sha}
                report.rendered.append(file)
            for fmt, message in result.errors.items():
                report.failed[f"{result.name}.{fmt}"] = message
            if result.log:
                report.logs[result.name] = result.log
            _write_cache(out_dir, files)   # after every figure: an interrupted build keeps its work
            if result.errors:
                detail = "FAILED " + "; ".join(f"{fmt}: {m}" for fmt, m in result.errors.items())
            else:
                detail = f"{', '.join(result.files)} in {result.seconds:.1f} s"
            progress.finish(result, detail)

        try:
            _run(tasks, jobs, on_start, on_done)
        finally:
            progress.close()

    if files != cache:
        _write_cache(out_dir, files)
    write_index(manifest, out_dir, report.failed)
    report.seconds = time.perf_counter() - start
    if tasks:
        stream.write(f"viz build: {len(report.rendered)} files rendered, {len(kept)} up to date, "
                     f"{len(report.failed)} failed in {report.seconds:.1f} s; open "
                     f"{out_dir / 'index.html'}\n")
    if report.failed:
        stream.write(f"viz build: {len(report.failed)} file{'s' if len(report.failed) > 1 else ''} failed:\n")
        for file, message in report.failed.items():
            name = file.rsplit(".", 1)[0]
            log = f"  (log: {report.logs[name]})" if name in report.logs else ""
            stream.write(f"  {file}: {message}{log}\n")
    stream.flush()
    return report


# ---------------------------------------------------------------------------------------------------
# index.md and index.html


VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
TEXT_FORMATS = ("md", "txt", "json")


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    write_text_atomic(path, text)


def _present(out_dir: Path, entry: Entry, failed: dict) -> list[str]:
    return [f for f in entry.formats if entry.file(f) not in failed and (out_dir / entry.file(f)).is_file()]


def write_index(manifest: Manifest, out_dir: Path, failed: dict | None = None) -> None:
    """Write index.md and index.html: every figure with its caption, media and reproducing command."""
    failed = failed or {}
    _write_if_changed(out_dir / "index.md", index_markdown(manifest, out_dir, failed))
    _write_if_changed(out_dir / "index.html", index_html(manifest, out_dir, failed))


def _primary(entry: Entry, present: list[str]) -> tuple[str | None, str | None]:
    """(media format, poster) to embed: a video with its PNG still, else an image, else text."""
    video = next((f for f in present if f in VIDEO_TYPES), None)
    if video:
        return video, ("png" if "png" in present else None)
    for f in ("svg", "png", "gif"):
        if f in present:
            return f, None
    for f in TEXT_FORMATS:
        if f in present:
            return f, None
    return None, None


def index_markdown(manifest: Manifest, out_dir: Path, failed: dict) -> str:
    parts = [f"# {manifest.title}\n"]
    if manifest.description:
        parts.append(manifest.description.strip() + "\n")
    parts.append(f"{len(manifest.entries)} figures built by `viz build {manifest.source}`. Each one "
                 "shows the command that reproduces it.\n")
    for entry in manifest.entries:
        present = _present(out_dir, entry, failed)
        parts.append(f"## {entry.name}\n")
        if entry.caption:
            parts.append(entry.caption + "\n")
        media, poster = _primary(entry, present)
        if media in VIDEO_TYPES:
            poster_attr = f' poster="{entry.file(poster)}"' if poster else ""
            parts.append(f'<video controls preload="none" width="640"{poster_attr} '
                         f'src="{entry.file(media)}"></video>\n')
        elif media in ("svg", "png", "gif"):
            parts.append(f"![{entry.name}]({entry.file(media)})\n")
        elif media == "md":
            parts.append((out_dir / entry.file(media)).read_text(encoding="utf-8").strip() + "\n")
        elif media in TEXT_FORMATS:
            body = (out_dir / entry.file(media)).read_text(encoding="utf-8").strip()
            parts.append(f"```{'json' if media == 'json' else 'text'}\n{body}\n```\n")
        parts.append("```sh\n" + "\n".join(entry.command(f) for f in entry.formats) + "\n```\n")
        links = " · ".join(f"[{f}]({entry.file(f)})" for f in present)
        if links:
            parts.append(f"Files: {links}\n")
        for f in entry.formats:
            if entry.file(f) in failed:
                parts.append(f"**Not rendered ({f}):** {failed[entry.file(f)]}\n")
    return "\n".join(parts)


_CSS = """
:root { color-scheme: light dark; --fg: #1d1f23; --bg: #fafafa; --card: #fff; --muted: #5f6368;
  --line: #dadce0; --code: #f1f3f4; --bad: #b3261e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8eaed; --bg: #16181d; --card: #202329;
  --muted: #9aa0a6; --line: #3c4043; --code: #2a2d33; --bad: #f2b8b5; } }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
header p { color: var(--muted); }
nav { columns: 3 14rem; font-size: .9rem; margin-bottom: 1.5rem; }
nav a { display: block; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem 1.25rem; margin: 0 0 1.5rem; }
h2 { margin: 0 0 .25rem; font-size: 1.15rem; }
h2 a { color: inherit; text-decoration: none; }
.kind { color: var(--muted); font-size: .85rem; margin: 0 0 .5rem; }
figure { margin: .5rem 0; }
figure img, figure video { max-width: 100%; height: auto; background: #fff; border-radius: 4px; }
figure video { background: #000; }
figcaption { margin-top: .5rem; }
pre { background: var(--code); padding: .6rem .8rem; border-radius: 6px; overflow-x: auto;
  font-size: .85rem; }
.files { font-size: .9rem; }
.files a { margin-right: .6rem; }
.failed { color: var(--bad); }
.table { overflow-x: auto; }
.table table { font-size: .9rem; }
"""


def index_html(manifest: Manifest, out_dir: Path, failed: dict) -> str:
    e = html.escape
    out = ["<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(manifest.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body><main>",
           f"<header><h1>{e(manifest.title)}</h1>"]
    if manifest.description:
        out.append(f"<p>{e(manifest.description.strip())}</p>")
    out.append(f"<p>{len(manifest.entries)} figures built by <code>viz build {e(manifest.source)}</code>. "
               "Each one shows the command that reproduces it.</p></header>")
    out.append("<nav>" + "".join(f'<a href="#{e(x.name)}">{e(x.name)}</a>' for x in manifest.entries)
               + "</nav>")
    for entry in manifest.entries:
        present = _present(out_dir, entry, failed)
        out.append(f'<section id="{e(entry.name)}">')
        out.append(f'<h2><a href="#{e(entry.name)}">{e(entry.name)}</a></h2>')
        out.append(f'<p class="kind">{e(entry.kind.summary)}</p>')
        media, poster = _primary(entry, present)
        out.append("<figure>")
        if media in VIDEO_TYPES:
            poster_attr = f' poster="{e(entry.file(poster))}"' if poster else ""
            out.append(f'<video controls preload="none" width="854"{poster_attr}>'
                       f'<source src="{e(entry.file(media))}" type="{VIDEO_TYPES[media]}">'
                       f'<a href="{e(entry.file(media))}">{e(entry.file(media))}</a></video>')
        elif media in ("svg", "png", "gif"):
            out.append(f'<img src="{e(entry.file(media))}" alt="{e(entry.caption or entry.name)}" '
                       'loading="lazy">')
        elif media in TEXT_FORMATS and entry.kind.command == "shape":
            from viz.app.shape_report import shape_html   # the reference's own table, as in a notebook

            out.append(f'<div class="table">{shape_html(entry.values)}</div>')
        elif media in TEXT_FORMATS:
            body = (out_dir / entry.file(media)).read_text(encoding="utf-8").strip()
            out.append(f"<pre>{e(body)}</pre>")
        if entry.caption:
            out.append(f"<figcaption>{e(entry.caption)}</figcaption>")
        out.append("</figure>")
        out.append("<pre><code>" + "\n".join(e(entry.command(f)) for f in entry.formats) + "</code></pre>")
        if present:
            out.append('<p class="files">Files: ' + "".join(
                f'<a href="{e(entry.file(f))}">{e(f)}</a>' for f in present) + "</p>")
        for f in entry.formats:
            if entry.file(f) in failed:
                out.append(f'<p class="failed">Not rendered ({e(f)}): {e(failed[entry.file(f)])}</p>')
        out.append("</section>")
    out += ["</main></body>", "</html>", ""]
    return "\n".join(out)
