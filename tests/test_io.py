import os

import pytest

from viz.io import atomic_path, write_text_atomic


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.svg"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("render failed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.svg"]


def test_atomic_write_has_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a" / "b.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "b.txt").read_text() == "x"
    assert (tmp_path / "a" / "b.txt").stat().st_mode & 0o777 == 0o644
