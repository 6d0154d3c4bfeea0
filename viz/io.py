"""Output the way careful Unix tools write it: every file viz writes appears whole or not at all.

Where ``-o PATH`` leads decides how it is written (`atomic_path`):
  - a regular file, or nothing yet: a temporary file in the same folder, fsync'd, then renamed onto the
    path (atomic on one file system); an existing file keeps its permissions (and, for root, its owner),
    a new one gets ``0o666 & ~umask`` as open() would give it; missing folders are created;
  - a symlink: the same, applied to the file the link points to (the link itself stays a link);
  - a character or block device, a FIFO, a socket, or a /proc file-descriptor link (/dev/stdout,
    /proc/self/fd/N): written through, never replaced (``-o /dev/null`` keeps the system's node);
  - ``-`` : standard output.
The writer always renders into a temporary file first, so a failure never leaves half a figure behind.

Every file-system failure becomes a `WriteError` (an OSError) whose message is one line naming the
path and the cause, e.g. ``cannot write 'out/a.svg': No space left on device``; front ends exit with
status `EXIT_IO` (74, EX_IOERR of sysexits.h). No temporary file survives a failure.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

STDOUT = "-"
EXIT_IO = 74   # sysexits.h EX_IOERR: an error occurred while doing I/O on some file
_CHUNK = 1 << 20
# errno values that, raised while the block writes, are about the output rather than some input
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}


class MissingProgram(RuntimeError):
    """A system program (dot, ffmpeg, Cairo, Chromium) is missing; the message says how to install it."""


class WriteError(OSError):
    """Writing `filename` failed; str() is one line: ``cannot write 'PATH': CAUSE``."""

    def __init__(self, code: int, target, cause: str | None = None):
        super().__init__(code, cause or os.strerror(code), str(target))

    def __str__(self) -> str:
        return f"cannot write {show_path(self.filename)}: {self.strerror}"


def show_path(path) -> str:
    """A path as one printable line: quoted, control characters escaped; ``-`` is standard output."""
    text = os.fspath(path)
    if text == STDOUT:
        return "standard output"
    return "'" + escape(text).replace("'", "\\'") + "'"


def escape(text: str) -> str:
    """`text` with control and other unprintable characters escaped (a newline becomes ``\\n``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def is_stdout(target) -> bool:
    return os.fspath(target) == STDOUT


@dataclass(frozen=True)
class Destination:
    """Where a write lands: `replace` a regular path atomically, or write `through` (a device, a FIFO,
    an already open descriptor `fd`). `path` is the path after following symlinks."""

    path: str
    through: bool
    fd: int | None = None
    existing: os.stat_result | None = None


def destination(target) -> Destination:
    """Follow `target`'s symlinks to what a write should change (see the module docstring)."""
    if is_stdout(target):
        return Destination(STDOUT, True, fd=-1)
    if os.fspath(target).endswith(os.sep):   # "out/" names a folder, never a file called "out"
        raise WriteError(errno.EISDIR, target)
    path = os.path.abspath(os.fspath(target))
    for _ in range(40):
        parent, name = os.path.split(path)
        path = os.path.join(os.path.realpath(parent), name)
        fd = re.fullmatch(r"/proc/(\d+)/fd/(\d+)", path)
        if fd and int(fd.group(1)) == os.getpid():
            return Destination(path, True, fd=int(fd.group(2)))
        if path.startswith("/proc/"):
            return Destination(path, True)
        if not os.path.islink(path):
            break
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    else:
        raise WriteError(errno.ELOOP, target)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Destination(path, False)
    except OSError as err:
        raise WriteError(err.errno, target) from None
    if stat.S_ISDIR(st.st_mode):
        raise WriteError(errno.EISDIR, target)
    return Destination(path, not stat.S_ISREG(st.st_mode), existing=st)


def check_target(target) -> Destination:
    """Refuse early (WriteError) a target that no write can reach: a parent that is a file, a folder,
    a link loop, a name too long, a read-only or unwritable folder. Front ends call it before a long
    render; atomic_path checks again (and reports a full disk) when it writes."""
    dest = destination(target)
    if dest.through:
        return dest
    path = Path(dest.path)
    folder = path.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        raise WriteError(errno.ENOTDIR, target)
    if len(os.fsencode(path.name)) > _name_max(folder):
        raise WriteError(errno.ENAMETOOLONG, target)
    if not os.access(folder, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
        raise WriteError(errno.EROFS if read_only else errno.EACCES, target)
    return dest


@contextlib.contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path to write the output to; on success it becomes `target`.

    The block writes the whole figure to the yielded path by any means (bytes, savefig, an encoder).
    Then a regular target is replaced atomically (fsync, rename) and a device/FIFO/descriptor/``-`` gets
    the bytes written through. On any exception the temporary file is removed and `target` is left
    untouched (and folders made for it removed again); OSErrors about the output are raised as
    one-line `WriteError`s naming `target`.
    """
    dest = destination(target)
    suffix = Path(os.fspath(target)).suffix if suffix is None else suffix
    if dest.through:
        try:
            folder = Path(tempfile.mkdtemp(prefix="viz-out-"))
        except OSError as err:
            raise WriteError(err.errno, target, f"no room for its temporary copy in {tempfile.gettempdir()}: "
                                                f"{err.strerror}") from None
        tmp = folder / ("output" + suffix[:32])
        try:
            yield tmp
            _write_through(tmp, dest)
        except OSError as err:
            raise _output_error(err, target, tmp) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    created = _missing_folders(Path(dest.path).parent)
    done = False
    try:
        tmp = _temporary(Path(dest.path), suffix, target)
        try:
            yield tmp
            _replace(tmp, Path(dest.path), dest.existing)
            done = True
        except OSError as err:
            raise _output_error(err, target, tmp) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        if not done:
            for folder in created:   # deepest first; one that got other files stays
                with contextlib.suppress(OSError):
                    os.rmdir(folder)


def _name_max(folder) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except OSError:
        return 255


def _missing_folders(folder: Path) -> list[Path]:
    """The folders `mkdir -p folder` would create, deepest first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _temporary(path: Path, suffix: str, target) -> Path:
    """An empty temporary file next to `path` (``.NAME.XXXXXXXX.SUFFIX``), its name within NAME_MAX."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:   # a component of the folder is a file
        raise WriteError(errno.ENOTDIR, target) from None
    except OSError as err:
        raise WriteError(err.errno, target) from None
    name_max = _name_max(path.parent)
    if len(os.fsencode(path.name)) > name_max:
        raise WriteError(errno.ENAMETOOLONG, target)
    if not os.path.isdir(path.parent):
        raise WriteError(errno.ENOTDIR, target)
    if path.exists() and not os.access(path, os.W_OK):   # open() would refuse it too
        raise WriteError(errno.EACCES, target)
    suffix = suffix[:32]
    room = max(1, name_max - len(os.fsencode(suffix)) - 2 - 8)   # mkstemp adds 8 random characters
    stem = os.fsdecode(os.fsencode(path.stem)[:room])
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=path.parent)
    except UnicodeDecodeError:   # the byte cut split a character
        fd, tmp = tempfile.mkstemp(prefix=".viz.", suffix=suffix, dir=path.parent)
    except OSError as err:
        raise WriteError(err.errno, target) from None
    os.close(fd)
    return Path(tmp)


def _replace(tmp: Path, path: Path, existing: os.stat_result | None) -> None:
    """fsync the finished temporary file, give it the target's permissions, rename it onto `path`."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
        if existing is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            if os.geteuid() == 0 and (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, existing.st_uid, existing.st_gid)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):   # make the rename durable; some file systems refuse (EINVAL)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _write_through(tmp: Path, dest: Destination) -> None:
    """Copy the finished output into a device, FIFO, open descriptor or standard output."""
    with open(tmp, "rb") as src:
        if dest.fd == -1:
            sys.stdout.flush()
            out = getattr(sys.stdout, "buffer", None)
            if out is not None:
                shutil.copyfileobj(src, out, _CHUNK)
                out.flush()
                return
            fd, close = 1, False
        elif dest.fd is not None:
            if dest.fd in (1, 2):
                (sys.stdout if dest.fd == 1 else sys.stderr).flush()
            fd, close = dest.fd, False
        else:
            fd, close = os.open(dest.path, os.O_WRONLY | os.O_CLOEXEC), True
        try:
            while chunk := src.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            if close:
                os.close(fd)


def _output_error(err: OSError, target, tmp: Path) -> OSError:
    """`err` as a WriteError naming `target` when it is about the output; otherwise unchanged."""
    if isinstance(err, WriteError):
        return err
    if isinstance(err, BrokenPipeError):
        return err
    about_output = err.filename in (str(tmp), os.fspath(target)) or err.filename2 == str(tmp)
    if about_output or (err.filename is None and err.errno in _WRITE_ERRNOS):
        return WriteError(err.errno or errno.EIO, target, err.strerror)
    return err


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
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
