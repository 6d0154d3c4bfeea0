"""The user's own arrays in the explorer (editable cells on the page): the server answers the shapes and the
numbers drawn, draws exactly the Story the command line's --x/--w/--b/--grad-y give, refuses bad arrays in
the command line's one line (never reading a file), bounds what a request may send, and caches by array."""
from __future__ import annotations

import http.client
import json
from math import prod

import numpy as np
import pytest

from viz.app import cli, registry as figures, serve
from viz.app.serve import user_arrays

JSON = {"Content-Type": "application/json"}

# (explorer figure, mode, the kind it draws, parameters, the arrays given)
CASES = [
    ("conv", "forward", "animate conv", {"input": "5", "channels": "2", "padding": "1", "bias": "true"},
     {"x": [[1, 2, 3, 4, 5], [0, -1, 0, 2.5, 0]], "w": [[[1, 0, -1], [2, 2, 2]]], "b": [3]}),
    ("conv", "backward", "animate conv-backward", {"input": "4x3", "channels": "1", "kernel": "2", "padding": "1",
                                                        "stride": "1"},
     {"x": [[[1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 0, 1]]], "grad_y": [[[1, -1, 0, 2], [0, 0, 0, 1],
                                                                       [3, 0, 0, 0], [0, 1, 1, 1], [2, 2, 2, 2]]]}),
    ("conv", "forward", "animate conv", {"input": "3x4", "channels": "4", "filters": "2", "groups": "2", "kernel": "2",
                                         "values": "float"},   # the grid draws w as F·C/groups panels
     {"w": [[[[1, 0], [0, 0]], [[0, 0], [0, 1]]], [[[0, 0.5], [0, 0]], [[0, 0], [2, 0]]]]}),
    ("conv", "transposed", "animate conv-backward", {"input": "6", "channels": "1", "stride": "2"},
     {"w": [[[2, -1, 1]]], "grad_y": [[1, 2]]}),
    ("transpose", "scatter", "diagram conv-transpose", {"input": "2x2", "kernel": "2", "stride": "2"},
     {"x": [[[1, 2], [3, -4]]], "w": [[[[1, 0], [0, 0.5]]]]}),
    ("transpose", "gather", "diagram conv-transpose", {"input": "3", "kernel": "2", "padding": "1"},
     {"x": [[1, -2, 3]]}),
    ("pool", "forward", "diagram pool", {"input": "4x4", "kernel": "2", "padding": "1", "stride": "2"},
     {"x": [[[1, 9, 2, 0], [3, 4, 5, 6], [-1, -2, -3, -4], [7, 0, 0, 8]]]}),
    ("pool", "backward", "diagram pool", {"input": "4", "kernel": "2", "mode": "avg"},
     {"grad_y": [[1, -2]], "x": [[4, 3, 2, 1]]}),
]


def post(srv, path, body, headers=JSON):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=20)
    try:
        conn.request("POST", path, body=body if isinstance(body, (bytes, str)) else json.dumps(body), headers=headers)
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def story_of(kind_key: str, params: dict, arrays: dict, fixed: dict) -> dict:
    """The Story the command line draws with the same arrays, spelled as on the command line."""
    kind = figures.get(kind_key)
    raw = {**params, **fixed, **{k: json.dumps(v) for k, v in arrays.items()}}
    return kind.build_story(kind.validate(raw)).to_dict()


@pytest.mark.parametrize("fig, mode, kind, params, arrays", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_answer_is_the_story_with_the_same_arrays(server, fig, mode, kind, params, arrays):
    fixed = dict(serve.FIGURES[fig].mode(mode).fixed)
    status, answer = post(server, "/api/render", {"figure": fig, "mode": mode, "params": {**params, **arrays}})
    assert status == 200, answer
    want = story_of(kind, params, arrays, fixed)
    assert answer["story"] == want
    for name, given in arrays.items():          # the editor shows the numbers drawn: the user's
        entry = answer["arrays"][name]
        assert entry["given"] is True and entry["shape"] == list(np.shape(given))
        if "values" in entry:
            assert entry["values"] == np.asarray(given, dtype=float).tolist()
    # the seeded figure differs (the arrays are used), and the command reproduces this one
    assert serve.render_answer(fig, params, mode=mode)["story"]["grids"] != want["grids"]
    assert all(f"--{n.replace('_', '-')} " in answer["command"] for n in arrays)


@pytest.mark.parametrize("fig, mode, kind, params, arrays", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_the_editor_starts_from_the_numbers_drawn(fig, mode, kind, params, arrays):
    """Each array the mode draws comes with its shape (the registry's) and the seeded numbers: sent back
    as they are, they draw the seeded figure again, cell for cell."""
    seeded = serve.render_answer(fig, params, mode=mode)
    values = figures.get(serve.FIGURES[fig].kind).validate({**params, **dict(serve.FIGURES[fig].mode(mode).fixed)})
    shapes = figures.expected_arrays(kind, values)
    drawn = {n: e["values"] for n, e in seeded["arrays"].items() if "values" in e}
    assert drawn, "every mode edits at least one array"
    for name, entry in seeded["arrays"].items():
        assert tuple(entry["shape"]) == shapes[name][0] and entry["why"] == shapes[name][1]
        assert entry["given"] is False
    for name, v in drawn.items():
        assert np.shape(v) == shapes[name][0]
    again = serve.render_answer(fig, {**params, **drawn}, mode=mode)
    assert again["story"]["grids"] == seeded["story"]["grids"]
    assert again["story"]["steps"] == seeded["story"]["steps"]


def test_which_arrays_a_mode_edits():
    """The editor offers what the mode draws: x, w (and b with the bias) forward; ∂ℓ/∂y too backward;
    a pool's x forward and its ∂ℓ/∂y backward."""
    def editable(fig, mode, params=None):
        return sorted(n for n, e in serve.render_answer(fig, params or {}, mode=mode)["arrays"].items() if "values" in e)
    assert editable("conv", "forward") == ["w", "x"]
    assert editable("conv", "forward", {"bias": "true"}) == ["b", "w", "x"]
    assert editable("conv", "backward") == ["grad_y", "w", "x"]
    assert editable("conv", "transposed") == ["grad_y", "w"]
    assert editable("pool", "forward") == ["x"] and editable("pool", "backward") == ["grad_y"]
    assert editable("transpose", "gather") == ["w", "x"]
    # b is not among the arrays at all while the bias is off: the page drops an edited b then
    assert "b" not in serve.render_answer("conv", {})["arrays"]


@pytest.mark.parametrize("fig, kind, params, arrays, line", [
    ("transpose", "diagram conv-transpose", {"input": "2", "kernel": "2"}, {"w": [[[1, 2, 3]]]},
     "--w: expected shape 1x1x2 for 1 input channel, 1 filter and kernel 2, got 1x1x3"),
    ("pool", "diagram pool", {"input": "3", "kernel": "2"}, {"grad_y": [[1, 2]]},
     "--grad-y: expected shape 1x1 for 1 channel and output 1, got 1x2"),
    ("pool", "diagram pool", {"input": "3", "kernel": "2"}, {"x": [1, 2, 3]},
     "--x: expected shape 1x3 for 1 channel and input 3, got 3"),
])
def test_every_figure_checks_its_shapes(server, capsys, tmp_path, fig, kind, params, arrays, line):
    """Whatever check a figure applies in the explorer, the shapes are the drawn kind's (the CLI's line)."""
    status, answer = post(server, "/api/render", {"figure": fig, "params": {**params, **arrays}})
    assert status == 400 and answer == {"error": line, "param": next(iter(arrays))}
    given = {**params, **{k: json.dumps(v) for k, v in arrays.items()}}
    argv = kind.split() + [a for k, v in given.items() for a in (f"--{k.replace('_', '-')}", v)]
    with pytest.raises(SystemExit):
        cli.main(argv + ["-o", str(tmp_path / "f.svg")])
    assert capsys.readouterr().err.strip() == f"viz: error: {line}" and not (tmp_path / "f.svg").exists()


def test_bad_arrays_get_the_command_lines_line(server, capsys):
    cases = [
        ({"x": [[1, 2]]}, "x"),                                   # wrong shape
        ({"w": [[[1, 0]]]}, "w"),
        ({"x": [[1, 2, 3], [4, 5]]}, "x"),                        # ragged
    ]
    for arrays, param in cases:
        status, answer = post(server, "/api/render", {"figure": "conv", "params": {"channels": "1", **arrays}})
        argv = ["animate", "conv", "--channels", "1", "-o", "never-written.mp4"]
        for name, v in arrays.items():
            argv += [f"--{name}", json.dumps(v)]
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        assert done.value.code == 2
        line = capsys.readouterr().err.strip().removeprefix("viz: error: ")
        assert status == 400 and answer == {"error": line, "param": param}
        assert "\n" not in line


@pytest.mark.parametrize("value, words", [
    ([[1, "2", 3]], "every entry must be a finite number (got \"2\")"),
    ([[1, None, 3]], "(got null)"),
    ([[1, True, 3]], "(got true)"),
    ("[[1, NaN, 3]]", "(got \"NaN\")"),
    ("[[1, Infinity, 3]]", "(got \"Infinity\")"),
    ("[[1, 2,", "not a JSON array"),
    ([[[[[1]]]]], "more than 4 axes"),
    (7, "must be a JSON array of numbers"),
    ({"a": 1}, "must be a JSON array of numbers"),
])
def test_bad_values_are_refused_in_one_line(server, value, words):
    status, answer = post(server, "/api/render", {"figure": "conv", "params": {"x": value}})
    assert status == 400 and answer["param"] == "x" and words in answer["error"]
    assert answer["error"].startswith("--x: ")


def test_no_file_is_read(server, tmp_path):
    """The command line reads --x FILE.npy; the explorer never opens a path it is sent."""
    path = tmp_path / "x.npy"
    np.save(path, np.ones((5, 7)))
    for value in (str(path), "x.npy", "/etc/passwd"):
        status, answer = post(server, "/api/render", {"figure": "conv", "params": {"x": value}})
        assert status == 400 and answer["param"] == "x" and "files are read by the command line only" in answer["error"]
    assert figures.get("animate conv").validate({"x": str(path)})["x"] is not None   # the CLI does read it


def test_sizes_are_bounded(server):
    """At most MAX_REQUEST_CELLS numbers per request, bodies at most limits.MAX_BODY bytes; an array too
    large for the editor is offered as a command line instead of cells."""
    n = user_arrays.MAX_REQUEST_CELLS
    status, answer = post(server, "/api/render", {"figure": "conv", "params": {"x": [0] * (n + 1)}})
    assert status == 400 and f"more than {n} numbers" in answer["error"]
    status, answer = post(server, "/api/render", {"figure": "conv", "params": {
        "x": [0] * (n // 2), "w": [0] * (n // 2), "b": [0] * 8}})
    assert status == 400 and f"{n + 8} numbers in all" in answer["error"]
    big = json.dumps({"figure": "conv", "params": {"x": [[0.123456789012345] * 700] * 20}})
    assert len(big) > serve.limits.MAX_BODY
    status, answer = post(server, "/api/render", big)
    assert status == 413 and "too large" in answer["error"]
    # the largest request the editor makes fits the body limit (4 arrays of MAX_EDITOR_CELLS long numbers)
    widest = json.dumps({"figure": "conv", "params": {k: [-1.2345678901234567e-300] * user_arrays.MAX_EDITOR_CELLS
                                                      for k in ("x", "w", "b", "grad_y")}})
    assert len(widest) < serve.limits.MAX_BODY
    # 8 channels of 16x16: 2048 numbers, more than one editor holds: no cells, the command line instead
    answer = serve.render_answer("conv", {"input": "16x16", "channels": "8", "kernel": "3"})
    assert answer["arrays"]["x"] == {"shape": [8, 16, 16], "why": "8 input channels and input 16x16",
                                     "given": False, "too_many": user_arrays.MAX_EDITOR_CELLS}
    assert "values" in answer["arrays"]["w"] and prod(answer["arrays"]["w"]["shape"]) == 72


def test_the_cache_tells_arrays_apart(server):
    x1 = [[1, 0, 0, 0, 0, 0, 0]]
    x2 = [[2, 0, 0, 0, 0, 0, 0]]
    body = lambda x: {"figure": "conv", "params": {"channels": "1", "x": x}}   # noqa: E731
    before = len(server.answers.data)
    s1, a1 = post(server, "/api/render", body(x1))
    s2, a2 = post(server, "/api/render", body(x2))
    s3, a3 = post(server, "/api/render", body(x1))
    assert s1 == s2 == s3 == 200 and a1 == a3 and a1 != a2
    y = lambda a: next(g for g in a["story"]["grids"] if g["name"] == "y")["values"]   # noqa: E731
    w = np.asarray(a1["arrays"]["w"]["values"])[0, 0]
    assert y(a1)[0] == w[0] and y(a2)[0] == 2 * w[0]                 # y[1] = x[1]·w[1]: the arrays were used
    assert len(server.answers.data) == before + 2                    # one entry per distinct request
    assert all(len(k) == 64 for k in server.answers.data)             # keys are digests: no array is kept twice


def test_the_shapes_the_page_asks_before_sending(server):
    """/api/arrays: the shapes for the parameters, the arrays in the request left out (an edited array of
    an earlier geometry does not make it fail), b only with the bias on."""
    body = {"figure": "conv", "mode": "backward", "params": {"input": "6", "channels": "2", "kernel": "2",
                                                             "x": [[1, 2]], "w": "nonsense"}}
    status, answer = post(server, "/api/arrays", body)
    assert status == 200 and answer == {"arrays": {
        "x": {"shape": [2, 6], "why": "2 input channels and input 6"},
        "w": {"shape": [1, 2, 2], "why": "1 filter, 2 input channels and kernel 2"},
        "grad_y": {"shape": [1, 3], "why": "1 filter and output 3"}}}
    status, answer = post(server, "/api/arrays", {**body, "params": {**body["params"], "bias": "true"}})
    assert answer["arrays"]["b"] == {"shape": [1], "why": "1 filter"}
    status, answer = post(server, "/api/arrays", {"figure": "pool", "params": {"input": "5", "kernel": "2"}})
    assert status == 200 and answer == {"arrays": {"x": {"shape": [1, 5], "why": "1 channel and input 5"},
                                                   "grad_y": {"shape": [1, 2], "why": "1 channel and output 2"}}}
    status, answer = post(server, "/api/arrays", {"figure": "conv", "params": {"stride": "0"}})
    assert status == 400 and answer["param"] == "stride"
    status, answer = post(server, "/api/arrays", {"figure": "gated", "params": {}})
    assert status == 200 and answer == {"arrays": {}}
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request("GET", "/api/arrays?figure=transpose&input=2&kernel=3")
    res = conn.getresponse()
    assert res.status == 200 and json.loads(res.read())["arrays"]["w"]["shape"] == [1, 1, 3]
    conn.close()


def test_the_diagram_kinds_take_the_arrays_on_the_command_line(tmp_path, capsys):
    """What the explorer's transposed-convolution and pooling figures draw with arrays, `viz diagram`
    reproduces: the same parameters, the same one-line shape check."""
    with pytest.raises(SystemExit) as done:
        cli.main(["diagram", "pool", "--input", "4", "--x", "[[1, 2]]", "-o", str(tmp_path / "p.svg")])
    assert done.value.code == 2 and not (tmp_path / "p.svg").exists()
    assert capsys.readouterr().err.strip() == "viz: error: --x: expected shape 1x4 for 1 channel and input 4, got 1x2"
    values = figures.get("diagram conv-transpose").validate({"input": "2", "kernel": "2", "w": "[[[3, 5]]]"})
    story = figures.get("diagram conv-transpose").build_story(values).to_dict()
    assert next(g for g in story["grids"] if g["name"] == "w")["values"] == [3.0, 5.0]
