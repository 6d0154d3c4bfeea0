"""viz.io: where a write lands (replace, write through, standard output) and how it fails."""
import errno
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from viz.io import WriteError, atomic_path, copy_atomic, destination, write_bytes_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.svg"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("render failed")
    assert target.read_text() == "old"
    assert names(tmp_path) == ["out.svg"]


def test_atomic_write_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a" / "b.txt", "x")   # missing folders are created
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "b.txt").read_text() == "x"
    assert (tmp_path / "a" / "b.txt").stat().st_mode & 0o777 == 0o644


def test_replacing_keeps_the_permissions_of_the_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    target.chmod(0o640)
    inode = target.stat().st_ino
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode   # replaced by rename, never truncated in place
    assert names(tmp_path) == ["f.txt"]


def test_a_symlink_keeps_being_a_link_and_its_target_is_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "fig.svg"
    real.write_text("old")
    link = tmp_path / "fig.svg"
    link.symlink_to(Path("real") / "fig.svg")
    write_text_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "fig.svg")
    assert real.read_text() == "new"
    assert names(tmp_path / "real") == ["fig.svg"]   # the temporary file lived next to the target

    dangling = tmp_path / "d.txt"
    dangling.symlink_to("made.txt")
    write_text_atomic(dangling, "made")   # like a shell's `>`: the link's target is created
    assert dangling.is_symlink() and (tmp_path / "made.txt").read_text() == "made"


def test_a_long_name_that_fits_is_written(tmp_path):
    target = tmp_path / ("n" * 250 + ".svg")   # 254 bytes: the temporary name must be shortened
    write_text_atomic(target, "x")
    assert target.read_text() == "x" and names(tmp_path) == [target.name]


@pytest.mark.parametrize("case", ["parent is a file", "name too long", "a folder", "link loop", "a slash"])
def test_failures_are_one_line_write_errors_and_leave_nothing(tmp_path, case):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    (tmp_path / "loop").symlink_to("loop")
    target, code = {"parent is a file": ("afile/x.svg", errno.ENOTDIR),
                    "name too long": ("n" * 300 + ".svg", errno.ENAMETOOLONG),
                    "a folder": ("adir", errno.EISDIR),
                    "link loop": ("loop", errno.ELOOP),
                    "a slash": ("new/", errno.EISDIR)}[case]
    before = names(tmp_path)
    with pytest.raises(WriteError) as err:
        write_text_atomic(f"{tmp_path}/{target}", "x")   # a str: Path() would drop a trailing /
    assert err.value.errno == code and isinstance(err.value, OSError)
    assert str(err.value).startswith("cannot write '") and os.strerror(code) in str(err.value)
    assert names(tmp_path) == before


def test_write_error_message_is_one_line():
    err = WriteError(errno.ENOSPC, "a\nb.svg")
    assert str(err) == r"cannot write 'a\nb.svg': No space left on device"
    assert str(WriteError(errno.EPIPE, "-")) == "cannot write standard output: Broken pipe"


@root_only
def test_a_device_is_written_through_never_replaced(tmp_path):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))   # a look-alike of /dev/null
    write_bytes_atomic(null, b"x" * 50_000)
    assert stat.S_ISCHR(null.lstat().st_mode) and null.stat().st_rdev == os.makedev(1, 3)
    assert names(tmp_path) == ["null"]


@root_only
def test_a_full_device_reports_no_space_and_leaves_nothing(tmp_path):
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))   # a look-alike of /dev/full
    with pytest.raises(WriteError) as err:
        write_bytes_atomic(full, b"figure")
    assert err.value.errno == errno.ENOSPC
    assert str(err.value) == f"cannot write '{full}': No space left on device"
    assert stat.S_ISCHR(full.lstat().st_mode) and names(tmp_path) == ["full"]


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_bytes_atomic(fifo, b"a figure" * 20_000)   # bigger than the pipe's buffer
    reader.join(10)
    assert received == [b"a figure" * 20_000]
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and names(tmp_path) == ["pipe"]


def test_dash_is_standard_output(capfdbinary):
    write_text_atomic("-", "to stdout\n")
    assert capfdbinary.readouterr().out == b"to stdout\n"


def test_descriptor_links_write_to_the_open_descriptor(tmp_path):
    # /dev/stdout, /proc/self/fd/1 and a symlink to it go to this process's descriptor 1 (here a pipe
    # the test reads), and the link stays a link.
    link = tmp_path / "out.txt"
    link.symlink_to("/proc/self/fd/1")
    code = ("import sys; from viz.io import write_text_atomic\n"
            "for path in sys.argv[1:]: write_text_atomic(path, path + '\\n')")
    out = subprocess.run([sys.executable, "-c", code, str(link), "/dev/stdout", "/proc/self/fd/1"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{link}\n/dev/stdout\n/proc/self/fd/1\n"
    assert link.is_symlink() and names(tmp_path) == ["out.txt"]


def test_descriptor_of_a_file_is_appended_at_its_offset(tmp_path):
    # `viz ... -o /dev/stdout >> log`: the caller's file keeps what it had (no truncation, no rename).
    log = tmp_path / "log.txt"
    log.write_text("before\n")
    code = "from viz.io import write_text_atomic; write_text_atomic('/dev/stdout', 'after\\n')"
    with open(log, "a") as fh:
        subprocess.run([sys.executable, "-c", code], stdout=fh, check=True, cwd=ROOT)
    assert log.read_text() == "before\nafter\n"


def test_destination_kinds(tmp_path):
    assert destination("-").through
    assert not destination(tmp_path / "new.svg").through
    assert destination(os.devnull).through and destination(os.devnull).path == os.devnull
    assert destination("/dev/stdout").fd == 1


def test_copy_atomic_and_nested_use(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    with atomic_path(tmp_path / "cache.bin") as outer:   # a cache entry whose renderer writes atomically too
        copy_atomic(src, outer)
    assert (tmp_path / "cache.bin").read_bytes() == src.read_bytes()
    assert names(tmp_path) == ["cache.bin", "src.bin"]


def test_folders_made_for_a_failed_write_are_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a" / "b" / "fig.svg") as tmp:
            assert tmp.parent == tmp_path / "a" / "b"
            raise RuntimeError("render failed")
    assert names(tmp_path) == []
    with pytest.raises(WriteError):
        write_text_atomic(tmp_path / "c" / ("n" * 300), "x")   # the name check comes after mkdir
    assert names(tmp_path) == []
    write_text_atomic(tmp_path / "a" / "b" / "fig.svg", "x")
    assert (tmp_path / "a" / "b" / "fig.svg").read_text() == "x"


def test_check_target_refuses_early_and_touches_nothing(tmp_path):
    from viz.io import check_target

    (tmp_path / "afile").write_text("")
    for target, code in (("afile/x.svg", errno.ENOTDIR), ("afile/deeper/x.svg", errno.ENOTDIR),
                         ("n" * 300, errno.ENAMETOOLONG), ("new/" + "n" * 300, errno.ENAMETOOLONG),
                         (".", errno.EISDIR)):
        with pytest.raises(WriteError) as err:
            check_target(tmp_path / target)
        assert err.value.errno == code, target
    assert not check_target(tmp_path / "new" / "deeper" / "x.svg").through   # will be created
    assert check_target("-").through and check_target(os.devnull).through
    assert names(tmp_path) == ["afile"]
