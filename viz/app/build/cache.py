"""The content-addressed cache: a key per output file, and the records in ``OUT/.viz-cache.json``.

key = sha256(canonical JSON of {kind, validated parameters, format, environment}), where the
environment is the viz version, the versions of the tools that kind uses (`dot -V`, manim,
matplotlib, numpy, ...) and a hash of the source of the packages that draw it (viz and diagrams for
a diagram, viz and scenes for an animation). A file is up to date when its record's key matches
and the file on disk still has the recorded sha256. Several builds (the shards of one manifest) may
share OUT: records are merged into the file on disk under a lock, never overwritten wholesale.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import subprocess
from importlib import metadata, util
from pathlib import Path

from viz import __version__
from viz.io import write_text_atomic

from .manifest import CACHE_FILE

# The tools whose version goes into the cache key of each command (Python distributions, or "dot").
TOOLS = {
    "shape": ("numpy",),
    "diagram": ("numpy", "graphviz", "dot"),
    "plot": ("numpy", "matplotlib"),
    "animate": ("numpy", "manim", "typst", "pycairo", "manimpango", "av"),
}
# The packages whose source shapes each command's figures (a change to scenes/ re-renders animations,
# not diagrams); a kind with another command depends on all of them.
SOURCES = {
    "shape": ("viz",),
    "diagram": ("viz", "diagrams"),
    "plot": ("viz", "diagrams"),
    "animate": ("viz", "scenes"),
}
SOURCE_PACKAGES = ("viz", "diagrams", "scenes")
# viz/app/ is the front ends (command line, build, explorer, notebook): they draw nothing, so editing
# them re-renders nothing; except the modules a figure is rendered through.
FRONT_ENDS = "viz/app/"
RENDERING_FRONT_ENDS = {"viz/app/registry.py", "viz/app/shape_report.py"}


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def canonical_json(value) -> str:
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@functools.lru_cache(maxsize=64)
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


def is_front_end(rel: str) -> bool:
    return rel.startswith(FRONT_ENDS) and rel not in RENDERING_FRONT_ENDS


@functools.lru_cache(maxsize=16)
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
            if is_front_end(rel) or "__pycache__" in file.parts:
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


@contextlib.contextmanager
def locked(out_dir: Path):
    """An exclusive lock on the folder OUT (flock on the directory itself: no lock file to leave
    behind), held while the cache or the index is rewritten, so shards sharing OUT take turns."""
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_records(out_dir: Path) -> dict:
    """file name -> {"file", "key", "sha256"} or {"file", "key", "error"}; {} when missing or damaged."""
    try:
        data = json.loads((out_dir / CACHE_FILE).read_text(encoding="utf-8"))
        files = data.get("files", {})
        return {f: r for f, r in files.items() if isinstance(r, dict)} if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def up_to_date(out_dir: Path, record, key: str) -> bool:
    if not isinstance(record, dict) or record.get("key") != key or "sha256" not in record:
        return False
    path = out_dir / str(record.get("file", ""))
    try:
        return path.is_file() and file_sha256(path) == record.get("sha256")
    except OSError:
        return False


class Records:
    """This build's changes to the cache file: records it wrote, records it dropped (stale files).

    `save` merges them into the file on disk under the folder's lock: records of other shards'
    files stay, records of files the manifest no longer lists go.
    """

    def __init__(self, out_dir: Path, manifest_files: set[str], initial: dict):
        self.out_dir = out_dir
        self.manifest_files = manifest_files
        self.initial = initial
        self.changes: dict[str, dict | None] = {}

    def drop(self, file: str) -> None:
        self.changes[file] = None

    def set(self, file: str, record: dict) -> None:
        self.changes[file] = record

    def merged(self, on_disk: dict) -> dict:
        files = {f: r for f, r in on_disk.items() if f in self.manifest_files}
        for file, record in self.changes.items():
            if record is None:
                files.pop(file, None)
            else:
                files[file] = record
        return dict(sorted(files.items()))

    def save(self) -> None:
        """Write the merged records (only if they changed); OSError when OUT is not writable."""
        with locked(self.out_dir):
            on_disk = read_records(self.out_dir)
            files = self.merged(on_disk)
            if files == on_disk and (self.out_dir / CACHE_FILE).is_file():
                return
            text = json.dumps({"viz": __version__, "files": files}, indent=1) + "\n"
            write_text_atomic(self.out_dir / CACHE_FILE, text)
