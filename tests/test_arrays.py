"""User arrays (viz.arrays): every accepted spelling gives the same numbers; every bad array one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from viz.arrays import ArrayError, check_shape, load_array

W = [[[1, -2, 3], [0, 1, 2], [2, 2, -1], [1, 0, 0], [-1, 1, 1]]]     # 1x5x3: the homework's filter shape


def test_every_spelling_gives_the_same_array(tmp_path):
    expected = np.array(W, dtype=float)
    np.save(tmp_path / "w.npy", expected)
    (tmp_path / "w.json").write_text(json.dumps(W))
    (tmp_path / "m.csv").write_text("1, -2, 3\n0,1,2\n\n")
    assert np.array_equal(load_array(json.dumps(W), "w"), expected)
    assert np.array_equal(load_array(W, "w"), expected)
    assert np.array_equal(load_array(str(tmp_path / "w.npy"), "w"), expected)
    assert np.array_equal(load_array("w.json", "w", base=tmp_path), expected)    # relative to the manifest
    assert np.array_equal(load_array("m.csv", "w", base=tmp_path), [[1, -2, 3], [0, 1, 2]])
    assert load_array(expected, "w").dtype == np.float64

    class Tensor:                      # duck-typed like torch.Tensor: detach().cpu().numpy()
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return expected
    assert np.array_equal(load_array(Tensor(), "w"), expected)


@pytest.mark.parametrize("raw, message", [
    ("[[1, 2], [3]]", r"^--w: must be a rectangular array of numbers \(ragged"),
    ('[[1, "a"]]', r"^--w: must be a rectangular array of numbers \(not all numbers\)$"),
    ("[[1, true]]", r"^--w: must be a rectangular array of numbers \(not all numbers\)$"),
    ("[]", r"^--w: is empty"),
    ("[[1, NaN]]", r"^--w: must be finite \(entry \(1, 2\), 1-based, is nan\)$"),
    ("[[1, Infinity]]", r"^--w: must be finite"),
    ("[[1, 2]", r"^--w: not a JSON array"),
    ("nope.npy", r"^--w: no such file 'nope.npy'"),
])
def test_bad_arrays_get_one_line(raw, message):
    with pytest.raises(ArrayError, match=message) as err:
        load_array(raw, "w")
    assert err.value.param == "w" and "\n" not in str(err.value)


def test_unreadable_files_get_one_line(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    (tmp_path / "bad.csv").write_text("1,x\n")
    (tmp_path / "a.txt").write_text("1")
    for name, message in [("bad.npy", "cannot read"), ("bad.csv", "must hold numbers separated by commas"),
                          ("a.txt", "must be a .npy, .json or .csv file")]:
        with pytest.raises(ArrayError, match=message):
            load_array(str(tmp_path / name), "x")


def test_shape_is_checked_against_the_geometry():
    w = load_array("[[[1, 2], [3, 4], [5, 6], [7, 8], [9, 0]]]", "w")
    with pytest.raises(ArrayError, match=r"^--w: expected shape 1x5x3 for 5 input channels and kernel 3, got 1x5x2$"):
        check_shape(w, (1, 5, 3), "w", "5 input channels and kernel 3")
    assert check_shape(w, (1, 5, 2), "w", "") is w
