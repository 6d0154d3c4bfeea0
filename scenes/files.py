"""The files a render makes besides its output, and what a killed render leaves of them.

- `cache_dir()`: Manim's media folder, inside the user's cache folder for viz (platformdirs).
- `workdir()`: a private folder per render under ``cache_dir()/work/render-*``, locked (flock) while
  the render uses it; `remove_stale_workdirs` removes the ones whose lock is free (killed renders).
- `held(tmp)`: the temporary output is locked while written, so `remove_stale_temporaries(out)` can
  remove the ``.out.XXXXXXXX.gif`` a killed `viz animate -o out.gif` left, and only those.
- `stop_on_term()`: SIGTERM/SIGHUP unwind a render (finally blocks remove its files) in a process
  that does not handle them itself.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """Manim's media folder: the user's cache folder for viz (platformdirs: $XDG_CACHE_HOME/viz, else
    ~/.cache/viz on Linux), then manim/."""
    return platformdirs.user_cache_path("viz") / "manim"


LOCK = ".lock"
STALE_UNLOCKED_S = 60.0   # a folder with no lock file yet is someone's render starting up, unless older


@contextlib.contextmanager
def workdir():
    """A private work folder under cache_dir()/work, locked (flock) while the render uses it, removed
    after; OSError naming the cache folder when it cannot be made."""
    root = cache_dir() / "work"
    try:
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="render-", dir=root))
        # locked before it gets its name, so a sweeper never finds the lock file free
        fd = os.open(path / (LOCK + ".new"), os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(path / (LOCK + ".new"), path / LOCK)
    except OSError as err:
        why = "a part of the path is a file" if err.errno in (errno.ENOTDIR, errno.EEXIST) else err.strerror
        raise OSError(err.errno, f"cannot use it as the cache folder: {why} (set XDG_CACHE_HOME to a "
                                 "writable folder)", str(root)) from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def remove_stale_workdirs() -> list[Path]:
    """Remove the work folders of renders that were killed (their lock is free); returns them."""
    removed = []
    try:
        folders = sorted((cache_dir() / "work").glob("render-*"))
    except OSError:
        return removed
    for folder in folders:
        if not (folder / LOCK).exists():   # starting up, or killed before it took its lock
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > STALE_UNLOCKED_S:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            continue
        fd = _try_lock(folder / LOCK)   # None while its render runs
        if fd is not None:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            os.close(fd)
    return removed


def _try_lock(path: Path) -> int | None:
    """An fd holding a non-blocking exclusive flock on `path`, or None if someone holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


@contextlib.contextmanager
def held(path: Path):
    """Hold a flock on the temporary output while it is written: a rerun can tell it from the
    temporary file of a killed render (`remove_stale_temporaries`). Only a regular file: a device or
    FIFO output is written through a private folder instead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            fd = None
    except OSError:
        fd = None
    if fd is None:
        yield path
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.XXXXXXXX.SUFFIX``, viz.io.atomic_path's names) a killed
    render of `out` left beside it: those whose lock is free."""
    pattern = re.compile(rf"\.{re.escape(out.stem)}\.[a-z0-9_]{{8}}{re.escape(out.suffix)}")
    try:
        names = [n for n in os.listdir(out.parent or ".") if pattern.fullmatch(n)]
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        fd = _try_lock(out.parent / name)
        if fd is not None:
            with contextlib.suppress(OSError):
                (out.parent / name).unlink()
                removed.append(out.parent / name)
            os.close(fd)
    return removed


@contextlib.contextmanager
def stop_on_term():
    """In a process that leaves SIGTERM/SIGHUP at their default (a plain `viz animate`), turn them into
    SystemExit(128 + signal) for the render, so its temporary file and work folder are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            saved[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
