"""viz serve: the explorer's JSON answers (from the reference, with the CLI's messages), the HTTP
layer's robustness (whitelisted assets only, bad requests survive), and the page end to end in a real
browser (Debian's Chromium driven by Playwright; no browser download)."""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import socket
import threading
import time

import numpy as np
import pytest

from viz.runs import example_data
from viz.text import fmt_value
from viz import conv
from viz.app import cli, registry as figures, serve

HAVE_DIAGRAMS = importlib.util.find_spec("diagrams.figures") is not None
JSON = {"Content-Type": "application/json"}


def request(srv, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, dict(res.getheaders()), data
    finally:
        conn.close()


def api(srv, figure, params, theme="light"):
    status, _, data = request(srv, "POST", "/api/render",
                              json.dumps({"figure": figure, "params": params, "theme": theme}), JSON)
    return status, json.loads(data)


def cli_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("viz: error: ")
    return err[len("viz: error: "):]


# ---------------------------------------------------------------------------------------------------
# Answers


@pytest.mark.parametrize("mode, kind", [("forward", "animate conv"), ("backward", "animate conv-backward"),
                                        ("transposed", "animate conv-backward")])
@pytest.mark.parametrize("params", [
    {},
    {"input": "7", "channels": "5", "kernel": "3", "stride": "2"},
    {"input": "6x5", "channels": "2", "kernel": "2x3", "stride": "1x2", "padding": "1:0x0:2", "values": "float"},
])
def test_conv_answer_is_the_story(mode, kind, params):
    """The page draws the kind's Story itself (no copy of the windows here), and its formula."""
    answer = serve.render_answer("conv", params, mode=mode)
    want = figures.get(kind).build_story(figures.get("animate conv").validate(params)).to_dict()
    assert answer["story"] == want
    assert answer["formula"] == want["formula"] and answer["mode"] == mode
    assert answer["view"]["part"] == ("grad_x" if mode == "transposed" else "")
    assert answer["command"] == figures.get(kind).command_line(figures.get("animate conv").validate(params))
    json.dumps(answer, allow_nan=False)          # plain JSON, no NaN


def test_backward_modes_draw_what_a_video_could_not():
    """`animate conv-backward` refuses geometries whose numbers would be too small at 1080p; the
    explorer zooms, so it draws them (the reference's errors still apply)."""
    params = {"input": "5x4", "kernel": "2x3", "padding": "1:0x0:1"}       # 5 channels
    with pytest.raises(figures.ParamError, match="legibly"):
        figures.get("animate conv-backward").validate(params)
    answer = serve.render_answer("conv", params, mode="backward")
    assert answer["story"]["kind"] == "animate conv-backward" and len(answer["story"]["steps"]) == 6 + 20   # ∂w, ∂x


def test_sizes_too_small_for_a_video_are_drawn_with_a_note():
    """The forward video refuses a 12×12 input with 8 channels (digits under 14 px at 1080p); the
    explorer zooms, so it draws it and says what the shown command would answer."""
    params = {"input": "12x12", "channels": "8", "stride": "1"}
    with pytest.raises(figures.ParamError) as err:
        figures.get("animate conv").validate(params)
    answer = serve.render_answer("conv", params)
    assert answer["video_note"] == str(err.value) and "legibly" in answer["video_note"]
    assert len(answer["story"]["steps"]) == 100           # its 10×10 windows (every input read)
    assert serve.render_answer("conv", {})["video_note"] == ""


def test_no_copy_of_the_conv_logic_is_left():
    import inspect

    source = inspect.getsource(serve.answers)
    assert "windows(" not in source and "MAX_TERMS_INLINE" not in source and "conv_payload" not in source


def test_unused_parameters_are_named():
    kind = figures.get("diagram attention-rnn")
    assert "base_case" in serve.unused_params(kind, kind.validate({"k": "inf"}))
    assert "base_case" not in serve.unused_params(kind, kind.validate({"k": "2"}))
    assert "steps" in serve.unused_params(kind, kind.validate({"view": "cell"}))
    bptt = figures.get("animate bptt")
    assert "k" in serve.unused_params(bptt, bptt.validate({"model": "gated"}))
    with pytest.raises(serve.BadRequest, match="--mode: must be one of forward, backward, transposed"):
        serve.render_answer("conv", {}, mode="sideways")


@pytest.mark.parametrize("argv, params", [
    (["--stride", "0"], {"stride": "0"}),
    (["--kernel", "9"], {"kernel": "9"}),              # rejected by the reference: kernel > input
    (["--input", "7x7x7"], {"input": "7x7x7"}),        # animations are 1-D or 2-D
    (["--channels", "9"], {"channels": "9"}),
    (["--padding", "1:2:3"], {"padding": "1:2:3"}),
    (["--dilation", "abc"], {"dilation": "abc"}),
])
def test_errors_are_the_cli_messages(capsys, argv, params):
    want = cli_error(capsys, ["animate", "conv", *argv, "-o", "never-written.mp4"])
    with pytest.raises(serve.BadRequest) as err:
        serve.render_answer("conv", params)
    assert str(err.value) == want
    assert err.value.param == argv[0][2:]
    assert not os.path.exists("never-written.mp4")


def test_bad_figure_and_params_are_rejected():
    for figure, params, message in [
        ("nope", {}, "unknown figure 'nope'"),
        (None, {}, "unknown figure None"),
        ("conv", [], "params must be an object"),
        ("conv", {"colour": "red"}, "unknown parameter 'colour'"),
        ("conv", {"stride": {"a": 1}}, "--stride: must be a short string or a number"),
        ("conv", {"stride": "2" * 500}, "--stride: must be a short string or a number"),
    ]:
        with pytest.raises(serve.BadRequest, match=message.replace("(", r"\(")):
            serve.render_answer(figure, params)
    # hidden parameters (quality) are fixed by the page, and ignored if sent
    assert "quality" not in serve.render_answer("conv", {"quality": "high"})["params"]
    with pytest.raises(serve.BadRequest, match="--theme: must be one of light, dark"):
        serve.render_answer("conv", {}, theme=["dark"])


def test_explorer_lists_the_figures_with_registry_params():
    data = serve.explorer_json()
    ids = [f["id"] for f in data["figures"]]
    assert ids == ["conv", "transpose", "pool", "gated", "attention", "bptt"]
    conv_params = {p["name"] for p in data["figures"][0]["params"]}
    assert {"input", "kernel", "stride", "padding", "dilation", "channels", "seed"} <= conv_params
    assert "quality" not in conv_params
    kind = figures.get("animate conv")
    assert data["figures"][0]["params"][0] == kind.param("input").to_json()
    att = {p["name"]: p for p in data["figures"][4]["params"]}
    assert att["k"]["type"] == "k" and "view" in att and "theme" not in att


@pytest.mark.parametrize("figure, kind, mode, params, fixed", [
    ("transpose", "diagram conv-transpose", "scatter", {"input": "4x3", "stride": "2", "output_padding": "1"},
     {"form": "scatter"}),
    ("transpose", "diagram conv-transpose", "gather", {"input": "5", "kernel": "2", "dilation": "3"},
     {"form": "gather"}),
    ("pool", "diagram pool", "forward", {"input": "7x5", "kernel": "3", "stride": "2", "padding": "1"}, {}),
    ("pool", "diagram pool", "backward", {"input": "6", "mode": "avg", "ceil_mode": "true"}, {}),
])
def test_transposed_and_pool_answers_are_their_stories(figure, kind, mode, params, fixed):
    """Their kinds' own Stories (the mode's fixed form included), the command that makes the figure,
    the controls that do not apply named unused, and the positions (one figure's panels) not shown."""
    answer = serve.render_answer(figure, params, mode=mode)
    values = figures.get(kind).validate({**params, **fixed})
    assert answer["story"] == figures.get(kind).build_story(values).to_dict()
    assert answer["command"] == figures.get(kind).command_line(values) and answer["mode"] == mode
    assert "positions" not in answer["params"] and "form" not in answer["params"]
    listed = next(f for f in serve.explorer_json()["figures"] if f["id"] == figure)
    assert {"positions", "form", "theme"}.isdisjoint(p["name"] for p in listed["params"])
    if figure == "pool":
        assert answer["unused"] == (["dilation"] if values["mode"] == "avg" else ["count_include_pad"])
        assert answer["view"]["padding"].startswith("padding (")
    if figure == "transpose":   # a form sent anyway is the mode's, not the sender's
        assert serve.render_answer(figure, {**params, "form": "gather"}, mode=mode)["story"] == answer["story"]
    json.dumps(answer, allow_nan=False)


def test_stamp_products_are_the_scatter_sums():
    """Each scatter step's product texts: one per stamp cell, x[n]·w[j] = product → y[m] (1-based);
    the products landing on each y[m] add up to PyTorch's transposed convolution of the Story's data."""
    torch = pytest.importorskip("torch")
    answer = serve.render_answer("transpose", {"input": "3x4", "kernel": "3x2", "stride": "2x1", "padding": "1x0",
                                               "output_padding": "1x0"}, mode="scatter")
    grids = {g["name"]: torch.tensor(g["values"], dtype=torch.float64).reshape(g["shape"])
             for g in answer["story"]["grids"]}
    y = torch.nn.functional.conv_transpose2d(grids["x"][None], grids["w"][None], stride=(2, 1), padding=(1, 0),
                                             output_padding=(1, 0))[0, 0].numpy()
    sums = np.zeros(y.shape)
    steps = [s for s in answer["story"]["steps"] if s["part"] == "scatter"]
    assert set(answer["products"]) == {s["id"] for s in steps}
    for s in steps:
        texts = answer["products"][s["id"]]
        assert len(texts) == len(s["data"]["stamp"]) > 0
        for text, m in zip(texts, s["data"]["stamp"]):
            value, at = re.fullmatch(r"x\[[\d,]+\]·w\[[\d,]+\] = \S+·\S+ = (−?\d+) → y\[([\d,]+)\]", text).groups()
            assert at == ",".join(str(v + 1) for v in m)
            sums[tuple(m)] += int(value.replace("−", "-"))
    assert np.array_equal(sums, y)
    assert "products" not in serve.render_answer("conv", {})          # only stamps have products


def test_transposed_and_pool_errors_name_their_parameter():
    params = {"input": "3", "kernel": "3", "stride": "2", "output_padding": "2"}
    with pytest.raises(figures.ParamError) as want:
        figures.get("diagram conv-transpose").validate(params)
    with pytest.raises(serve.BadRequest) as err:
        serve.render_answer("transpose", params, mode="scatter")
    assert str(err.value) == str(want.value) and err.value.param == "output_padding"
    with pytest.raises(serve.BadRequest) as err:
        serve.render_answer("pool", {"input": "4", "kernel": "2", "padding": "2"})
    assert err.value.param == "padding" and "kernel//2" in str(err.value)
    with pytest.raises(serve.BadRequest, match="--output-padding: must be sizes"):
        serve.render_answer("transpose", {"output_padding": "99"}, mode="gather")


def test_transposed_story_size_is_bounded():
    """The gather form lists every output's whole window: the largest allowed sizes would list 16.7 M
    taps, so the explorer refuses them in one line naming --input (the scatter form, 65 536, draws)."""
    big = {"input": "16x16", "kernel": "16", "stride": "16"}
    with pytest.raises(serve.BadRequest, match=r"^--input: the gather form of this geometry reads 16777216 window "
                                               r"taps; the explorer draws at most 262144") as err:
        serve.render_answer("transpose", big, mode="gather")
    assert err.value.param == "input" and err.value.status == 400
    small = serve.render_answer("transpose", {**big, "input": "4x4", "kernel": "8"}, mode="scatter")
    assert [s["part"] for s in small["story"]["steps"]] == ["scatter"] * 16 + ["never_read"]   # gaps: s > k
    assert small["video_note"] == ""


def test_bptt_diagram_mode_is_the_backward_diagram(monkeypatch):
    calls = []
    monkeypatch.setattr(serve.answers, "diagram_svg", lambda key, values: calls.append((key, values)) or "<svg/>")
    answer = serve.render_answer("bptt", {"model": "gated", "preset": "explode", "steps": "8"}, theme="dark",
                                 mode="diagram")
    key, values = calls[0]
    assert key == "diagram gated-rnn" and values["view"] == "backward" and values["preset"] == "explode"
    assert values["steps"] == 8 and values["theme"] == "dark" and answer["svg"] == "<svg/>"
    serve.render_answer("bptt", {"model": "attention", "k": "inf", "steps": "5"}, mode="diagram")
    key, values = calls[1]
    assert key == "diagram attention-rnn" and values["k"] is None and values["view"] == "backward"


# ---------------------------------------------------------------------------------------------------
# HTTP


def test_serves_the_page_and_its_assets_only(server):
    assert server.server_address[0] == "127.0.0.1"
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"explorer.js" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, headers, _ = request(server, "GET", "/static/explorer.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    for path in ["/../../etc/passwd", "/static/../../../../etc/passwd", "/static/%2e%2e/build.py",
                 "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/..%2fserve.py", "/static//etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "/static/", "/static", "/gallery.toml", "/static/gallery.toml",
                 "/serve.py", "/static/explorer.js/..", "/index.html", "/api/nope", "//etc/passwd"]:
        status, _, body = request(server, "GET", path)
        assert status == 404, path
        assert b"root:" not in body


def test_survives_bad_requests(server):
    port = server.server_address[1]
    cases = [
        ("POST", "/api/render", b"{not json", JSON, 400),
        ("POST", "/api/render", b"[1, 2]", JSON, 400),
        ("POST", "/api/render", b"\xff\xfe", JSON, 400),
        ("POST", "/api/render", json.dumps({"figure": "nope"}).encode(), JSON, 400),
        ("POST", "/api/render", json.dumps({"figure": "conv", "params": {"stride": "0"}}).encode(), JSON, 400),
        ("PUT", "/api/render", b"{}", {}, 405),
        ("DELETE", "/", None, {}, 405),
        ("GET", "/api/render?figure=conv&stride=0", None, {}, 400),
        ("GET", "/", None, {"Host": "evil.example:80"}, 403),
    ]
    for method, path, body, headers, want in cases:
        status, _, data = request(server, method, path, body, headers)
        assert status == want, (method, path, data)
        assert "error" in json.loads(data)
    # a huge body is refused before it is read
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/api/render")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    res = conn.getresponse()
    assert res.status == 413 and "too large" in json.loads(res.read())["error"]
    conn.close()
    # garbage on the socket, and a client that connects and says nothing
    for garbage in (b"\x00\x01GARBAGE \xff\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(garbage)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        assert b'{"error":' in answer and b"Traceback" not in answer
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    # still serving, promptly, while the idle connection is open
    start = time.perf_counter()
    status, _, data = request(server, "GET", "/api/render?figure=conv&stride=3")
    assert status == 200 and json.loads(data)["story"]["grids"][2]["shape"] == [2]
    assert time.perf_counter() - start < 5
    idle.close()


def test_error_answer_over_http_has_the_cli_message(server, capsys):
    want = cli_error(capsys, ["animate", "conv", "--stride", "0", "-o", "x.mp4"])
    status, answer = api(server, "conv", {"stride": "0"})
    assert status == 400 and answer == {"error": want, "param": "stride"}


def test_port_in_use_is_a_clear_error(server):
    with pytest.raises(figures.ParamError, match=r"--port: \d+ is already in use on 127\.0\.0\.1"):
        serve.make_server(server.server_address[1])


@pytest.mark.parametrize("figure, params, expected", [
    ("gated", {"n": "2", "m": "4"}, ["x[t] ∈ ℝ^2,  h[t], c[t] ∈ ℝ^4;  W_c 4×2, W_x 4×2 (m×n),  W_h 4×4 (m×m)"]),
    ("attention", {"k": "2"}, ["Q, K, V each 3×3×3;  a[t] ∈ ℝ^3;"]),      # MATH.md §4: a[t] in R^3 for k = 2
    ("attention", {"k": "inf", "steps": "5"}, ["AttentionRNN(∞)", "a[1] ∈ ℝ^1 … a[5] ∈ ℝ^5"]),
    ("attention", {"k": "3", "base_case": "mask", "steps": "2"}, ["a[1] ∈ ℝ^1 … a[2] ∈ ℝ^2"]),
])
def test_rnn_shapes_come_from_the_reference(monkeypatch, figure, params, expected):
    monkeypatch.setattr(serve.answers, "diagram_svg", lambda key, values: "<svg/>")
    line = serve.render_answer(figure, params)["formula"][0]
    for text in expected:
        assert text in line


@pytest.mark.skipif(not HAVE_DIAGRAMS, reason="diagram renderer not written yet")
def test_real_diagram_answer_changes_with_its_parameters(server):
    status, one = api(server, "gated", {"steps": "3"})
    assert status == 200 and one["svg"].lstrip().startswith(("<?xml", "<svg")) and "</svg>" in one["svg"]
    status, two = api(server, "gated", {"steps": "5"})
    assert status == 200 and two["svg"] != one["svg"] and two["command"] == "viz diagram gated-rnn --steps 5"
    status, dark = api(server, "attention", {"k": "inf"}, theme="dark")
    assert status == 200 and "--theme dark" in dark["command"]
    status, bad = api(server, "attention", {"k": "0"})
    assert status == 400 and bad["param"] == "k" and bad["error"].startswith("--k: must be an integer in 1..64 or inf")


def test_viz_serve_command_starts_and_stops():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "from viz.app.cli import main; main()", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.match(r"viz explorer on http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/api/explorer")
        res = conn.getresponse()
        assert res.status == 200 and json.loads(res.read())["figures"][0]["id"] == "conv"
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------------------------------
# Safe on a shared desktop: other web pages, malformed requests, slow clients, memory


def raw_exchange(srv, data: bytes, wait: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=wait) as s:
        s.sendall(data)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_other_web_pages_are_refused(server):
    port = server.server_address[1]
    body = json.dumps({"figure": "conv", "params": {}}).encode()
    own = f"http://127.0.0.1:{port}"
    cases = [
        # the attack of the issue: a cross-origin text/plain POST (no preflight needed)
        ("POST", "/api/render", {"Origin": "http://evil.com", "Content-Type": "text/plain"}, 403),
        ("POST", "/api/render", {"Origin": "http://evil.com", **JSON}, 403),
        ("POST", "/api/render", {"Content-Type": "text/plain"}, 415),         # needs a preflight: never granted
        ("POST", "/api/render", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("POST", "/api/render", {"Origin": "null", **JSON}, 403),
        ("POST", "/api/render", {"Origin": f"http://127.0.0.1:{port + 1}", **JSON}, 403),   # another local page
        ("POST", "/api/render", {"Sec-Fetch-Site": "cross-site", **JSON}, 403),
        ("GET", "/api/render?figure=conv", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403),
        ("GET", "/api/render?figure=conv", {"Sec-Fetch-Site": "same-site"}, 403),
        ("GET", "/api/explorer", {"Origin": "http://evil.com"}, 403),
        ("GET", "/static/explorer.js", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "script"}, 403),
        ("OPTIONS", "/api/render", {"Origin": "http://evil.com", "Access-Control-Request-Method": "POST"}, 403),
        ("OPTIONS", "/api/render", {}, 405),
        # this page, curl, and a link to the page from elsewhere are fine
        ("POST", "/api/render", {"Origin": own, "Sec-Fetch-Site": "same-origin", **JSON}, 200),
        ("POST", "/api/render", {"Origin": f"http://localhost:{port}", **JSON}, 200),
        ("POST", "/api/render", JSON, 200),
        ("GET", "/api/render?figure=conv", {}, 200),
        ("GET", "/", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, 200),
    ]
    for method, path, headers, want in cases:
        status, got, data = request(server, method, path, body if method == "POST" else None, headers)
        assert status == want, (method, path, headers, data[:200])
        assert "Access-Control-Allow-Origin" not in got
        if want != 200:
            assert "error" in json.loads(data)


def test_every_malformed_request_answers_4xx(server):
    post = lambda body, extra=b"": (b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\n"   # noqa: E731
                                    b"Content-Type: application/json\r\n" + extra +
                                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
    cases = {
        "deeply nested JSON": post(b"[" * 100_000 + b"]" * 100_000),
        "nested object": post(b'{"figure": "conv", "params": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001),
        "NaN": post(b'{"figure": "conv", "params": {"stride": NaN}}'),
        "Infinity": post(b'{"figure": "conv", "params": {"seed": -Infinity}}'),
        "huge integer": post(b'{"figure": "conv", "params": {"seed": ' + b"9" * 5000 + b"}}"),
        "figure a list": post(b'{"figure": ["conv"]}'),
        "theme an object": post(b'{"figure": "conv", "theme": {"a": 1}}'),
        "mode a number": post(b'{"figure": "conv", "mode": 3}'),
        "params a string": post(b'{"figure": "conv", "params": "stride=2"}'),
        "value null": post(b'{"figure": "conv", "params": {"stride": null}}'),
        "value a list": post(b'{"figure": "conv", "params": {"stride": [1, 2]}}'),
        "not UTF-8": post(b'{"figure": "\xff"}'),
        "no Content-Length": b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n{}",
        "negative Content-Length": b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                                   b"\r\nContent-Length: -5\r\n\r\n{}",
        "Content-Length not a number": b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                       b"application/json\r\nContent-Length: 1e3\r\n\r\n{}",
        "chunked": b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "too large": b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 99999999\r\n\r\n",
        "header line too long": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n",
        "too many headers": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n",
        "bad request line": b"HELLO\r\n\r\n",
        "bad version": b"GET / HTTP/9.9\r\n\r\n",
        "binary": b"\x00\x01GARBAGE \xff\r\n\r\n",
        "no Host": b"GET /api/explorer HTTP/1.1\r\n\r\n",
        "bad percent-encoding": b"GET /api/render?figure=conv&stride=%ZZ%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "unknown method": b"BREW /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    }
    for name, data in cases.items():
        answer = raw_exchange(server, data)
        assert answer, name
        assert 400 <= status_of(answer) < 500, (name, answer[:300])
        assert b'{"error":' in answer and b"Traceback" not in answer, name
    # a body shorter than its Content-Length: 400 within BODY_IDLE (it was a 500 after 15 s)
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as s:
        start = time.perf_counter()
        s.sendall(b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"figure\": ")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
        assert status_of(answer) == 400 and b"shorter than its Content-Length" in answer
        assert time.perf_counter() - start < serve.limits.BODY_IDLE + 1.5


def test_slow_clients_hold_no_thread(monkeypatch):
    """40 clients trickling one header byte every 0.25 s: more than the worker threads, yet light
    requests answer within 1 s each, and each slow client gets 408 after HEAD_TIMEOUT."""
    monkeypatch.setattr(serve.limits, "HEAD_TIMEOUT", 2.5)
    srv = serve.make_server(0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = srv.server_address[1]
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    assert len(slow) > serve.limits.WORKERS
    stop = threading.Event()

    def trickle():
        head = b"GET /api/explorer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for i in range(len(head)):
            if stop.is_set():
                return
            for s in slow:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
            time.sleep(0.25)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        latencies = []
        for _ in range(15):
            start = time.perf_counter()
            status, _, _ = request(srv, "GET", "/api/explorer")
            latencies.append(time.perf_counter() - start)
            assert status == 200
            time.sleep(0.05)
        assert max(latencies) < 1.0, latencies
        start = time.perf_counter()
        answer = slow[0].recv(65536)
        assert status_of(answer) == 408, answer
        assert time.perf_counter() - start < 3.5
        assert threading.active_count() < 40        # no thread per client
    finally:
        stop.set()
        for s in slow:
            s.close()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_memory_is_bounded_after_100_heavy_requests():
    """100 distinct answers (an 8×8 input with 8 channels: 0.11 MB of JSON, about 1 MB as Python
    objects): the cache keeps at most its byte budget (here 1 MB) of encoded answers, evicting the
    oldest, and the process grows by less than 40 MB over the last 90 (the old cache of 256 answer
    objects grew by about 1 MB per request here, 70 MB per heavy one)."""
    srv = serve.make_server(0)
    srv.answers.close()
    srv.answers = serve.limits.AnswerCache(budget=1 << 20)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        def heavy(i):
            status, answer = api(srv, "conv", {"input": "8x8", "kernel": "3", "stride": "1", "channels": "8",
                                               "seed": str(i)})
            assert status == 200 and len(answer["story"]["steps"]) == 36          # its 6×6 windows

        for i in range(10):
            heavy(i)
        before = rss_mb()
        pool = __import__("concurrent.futures").futures.ThreadPoolExecutor(2)
        list(pool.map(heavy, range(10, 100)))
        pool.shutdown()
        grown = rss_mb() - before
        assert srv.answers.bytes <= 1 << 20 and 3 <= len(srv.answers.data) < 20
        assert grown < 40, f"RSS grew by {grown:.0f} MB over 90 heavy requests"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_missing_dot_answers_503_with_the_install_hint(server, monkeypatch):
    monkeypatch.setattr(serve.answers.shutil, "which", lambda name: None)
    status, answer = api(server, "gated", {"steps": "7"})
    assert status == 503 and "apt-get install graphviz" in answer["error"]
    # the convolution needs no dot
    status, _ = api(server, "conv", {"seed": "7"})
    assert status == 200


def test_renders_are_bounded_in_number_and_time(monkeypatch):
    cache = serve.limits.AnswerCache(budget=1 << 20, workers=1, queue=2)
    gate = threading.Event()
    try:
        slow = lambda: (gate.wait(5), (200, b"{}"))[1]   # noqa: E731
        results = []
        t = threading.Thread(target=lambda: results.append(cache.get("a", slow, timeout=5)))
        t.start()
        time.sleep(0.1)
        with pytest.raises(serve.BadRequest, match="took longer than 0.2 s") as err:
            cache.get("b", slow, timeout=0.2)
        assert err.value.status == 503
        with pytest.raises(serve.BadRequest, match="busy") as err:
            cache.get("c", slow, timeout=0.2)
        assert err.value.status == 503
        gate.set()
        t.join(5)
        assert results == [(200, b"{}")] and cache.get("a", slow) == (200, b"{}")   # cached
    finally:
        gate.set()
        cache.close()
