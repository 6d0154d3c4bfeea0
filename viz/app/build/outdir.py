"""The output folder: checked before anything renders, and cleared of what a killed build left.

`check_out` turns every way OUT can be unusable into one line naming the path (it is not a folder,
it cannot be created or written, the disk is full, one of the build's own files is a folder, the
log folder is a file), raised as ManifestError before any figure renders. `sweep` removes the
temporary files a killed build left next to its outputs (``.conv.k2j4x8a1.mp4``: the atomic writes'
names, `viz.io.atomic_path`) and Manim's stale work folders (`scenes.render.remove_stale_workdirs`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from .manifest import CACHE_FILE, INDEX_FILES, LOG_DIR, Manifest, ManifestError


RANDOM = "[a-z0-9_]{8}"   # tempfile.mkstemp's random part
PROBE = ".viz-probe."     # check_out's test file


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__


def check_out(out_dir: Path, manifest: Manifest) -> None:
    """Create OUT and prove it writable (one byte written and synced); ManifestError otherwise."""
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise ManifestError([f"--out: {out_dir} exists and is not a folder"])
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=PROBE, dir=out_dir)
        try:
            os.write(fd, b"v")
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):   # a shard's sweep may have taken it
                os.unlink(probe)
    except ManifestError:
        raise
    except OSError as err:
        path = err.filename or out_dir
        if err.errno == errno.ENOTDIR:
            why = "a parent of it is a file, not a folder"
        elif err.errno == errno.ENOSPC:
            why = "no space left on the device"
        else:
            why = _why(err)
        raise ManifestError([f"--out: cannot write to {path}: {why}"]) from None
    problems = []
    for name in (CACHE_FILE, *INDEX_FILES, *sorted(manifest.files())):
        if (out_dir / name).is_dir():
            problems.append(f"--out: {out_dir / name} is a folder, but the build writes a file there; "
                            "move it away")
    logs = out_dir / LOG_DIR
    if logs.exists() and not logs.is_dir():
        problems.append(f"--out: {logs} is a file, but the build keeps its failure logs in a folder "
                        "there; move it away")
    if problems:
        raise ManifestError(problems)


def temporaries_of(out_dir: Path, files) -> list[Path]:
    """Temporary files of atomic writes onto `files` in OUT: ``.STEM.XXXXXXXX.SUFFIX``, and the
    renderers' own nested ones (``..STEM.XXXXXXXX.YYYYYYYY.SUFFIX``)."""
    patterns = []
    for file in files:
        stem, dot, suffix = file.rpartition(".")
        if not dot:
            stem, suffix = file, ""
        suffix = f"\\.{re.escape(suffix)}" if suffix else ""
        patterns.append(rf"\.\.?{re.escape(stem)}\.{RANDOM}(\.{RANDOM})?{suffix}")
    patterns.append(rf"{re.escape(PROBE)}{RANDOM}")
    temp = re.compile("|".join(f"(?:{p})" for p in patterns))
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    return sorted(out_dir / n for n in names if n.startswith(".") and temp.fullmatch(n))


def sweep(out_dir: Path, files) -> list[Path]:
    """Remove what an earlier killed build left for `files`; returns what was removed."""
    removed = []
    for path in temporaries_of(out_dir, files):
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed
