"""Atomic output: every file viz writes appears whole at its final path or not at all."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


class MissingProgram(RuntimeError):
    """A system program (dot, ffmpeg, Cairo, Chromium) is missing; the message says how to install it."""


@contextlib.contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path next to `target`; rename it onto `target` only if the block succeeds.

    The temporary file lives in the target's folder so the final rename is atomic (same filesystem).
    On any exception the temporary file is removed and `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix,
                               dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the permissions an ordinary open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(target, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def copy_atomic(source, target) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
