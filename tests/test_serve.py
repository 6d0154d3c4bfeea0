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
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server():
    srv = serve.make_server(0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


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
                              json.dumps({"figure": figure, "params": params, "theme": theme}))
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


@pytest.mark.parametrize("params", [
    {},
    {"input": "7", "channels": "5", "kernel": "3", "stride": "2"},
    {"input": "7x7", "channels": "1", "kernel": "3", "stride": "2", "dilation": "2", "padding": "2"},
    {"input": "6x5", "channels": "2", "kernel": "2x3", "stride": "1x2", "padding": "1:0x0:2", "values": "float"},
    {"input": "9", "channels": "3", "kernel": "4", "stride": "3", "padding": "same" if False else "1"},
])
def test_conv_answer_is_the_reference(params):
    answer = serve.render_answer("conv", params)
    values = figures.get("animate conv").validate(params)
    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    c = answer["conv"]
    assert c["out_shape"] == list(g.out_shape) and c["in_shape"] == list(g.in_shape)
    assert answer["formula"][0].startswith(f"output {'×'.join(map(str, g.out_shape))} ")
    for a in range(g.ndim):
        assert any(g.formula(a) in line for line in answer["formula"])
    # every window: the taps of viz.conv.windows, shifted into the padded grid the page draws
    win = conv.windows(g.in_shape, g.kernel, g.stride, g.padding, g.dilation)
    lo = np.array([p[0] for p in g.padding])
    assert len(c["steps"]) == int(np.prod(g.out_shape))
    for step, o in zip(c["steps"], np.ndindex(*g.out_shape)):
        assert step["out"] == list(o)
        assert step["taps"] == (win.indices[o].reshape(-1, g.ndim) + lo).tolist()
        assert step["padding"] == win.is_padding[o].ravel().tolist()
    # the values: an independent sum over the drawn taps equals the reference's output
    data = example_data(g.in_shape, values["channels"], g.kernel, g.out_shape, values["seed"], values["values"])
    xp, w = conv.pad(data["x"], g.padding), data["w"]
    integer = values["values"] == "int"
    y = conv.conv(data["x"], w, stride=g.stride, padding=g.padding, dilation=g.dilation)[0]
    for step, o in zip(c["steps"], np.ndindex(*g.out_shape)):
        total = sum(w[(0, ch, *j)] * xp[(ch, *t)] for ch in range(values["channels"])
                    for j, t in zip(np.ndindex(*g.kernel), step["taps"]))
        assert step["y"] == fmt_value(total, integer) == fmt_value(y[o], integer)
    assert c["x"][0] == [fmt_value(v, integer) for v in xp[0].ravel()]
    assert c["never_read"] == [[int(v) + int(p) for v, p in zip(idx, lo)] for idx in win.never_read]


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


def test_explorer_lists_the_figures_with_registry_params():
    data = serve.explorer_json()
    ids = [f["id"] for f in data["figures"]]
    assert ids == ["conv", "gated", "attention", "bptt"]
    conv_params = {p["name"] for p in data["figures"][0]["params"]}
    assert {"input", "kernel", "stride", "padding", "dilation", "channels", "seed"} <= conv_params
    assert "quality" not in conv_params
    kind = figures.get("animate conv")
    assert data["figures"][0]["params"][0] == kind.param("input").to_json()
    att = {p["name"]: p for p in data["figures"][2]["params"]}
    assert att["k"]["type"] == "k" and "view" in att and "theme" not in att


def test_bptt_is_shown_as_the_backward_diagram(monkeypatch):
    calls = []
    monkeypatch.setattr(serve, "diagram_svg", lambda key, values: calls.append((key, values)) or "<svg/>")
    answer = serve.render_answer("bptt", {"model": "gated", "preset": "explode", "steps": "8"}, theme="dark")
    key, values = calls[0]
    assert key == "diagram gated-rnn" and values["view"] == "backward" and values["preset"] == "explode"
    assert values["steps"] == 8 and values["theme"] == "dark" and answer["svg"] == "<svg/>"
    serve.render_answer("bptt", {"model": "attention", "k": "inf", "steps": "5"})
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
        ("POST", "/api/render", b"{not json", {}, 400),
        ("POST", "/api/render", b"[1, 2]", {}, 400),
        ("POST", "/api/render", b"\xff\xfe", {}, 400),
        ("POST", "/api/render", json.dumps({"figure": "nope"}).encode(), {}, 400),
        ("POST", "/api/render", json.dumps({"figure": "conv", "params": {"stride": "0"}}).encode(), {}, 400),
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
        assert b'{"error": ' in answer and b"Traceback" not in answer
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    # still serving, promptly, while the idle connection is open
    start = time.perf_counter()
    status, _, data = request(server, "GET", "/api/render?figure=conv&stride=3")
    assert status == 200 and json.loads(data)["conv"]["out_shape"] == [2]
    assert time.perf_counter() - start < 5
    idle.close()


def test_error_answer_over_http_has_the_cli_message(server, capsys):
    want = cli_error(capsys, ["animate", "conv", "--stride", "0", "-o", "x.mp4"])
    status, answer = api(server, "conv", {"stride": "0"})
    assert status == 400 and answer == {"error": want, "param": "stride"}


def test_port_in_use_is_a_clear_error(server):
    with pytest.raises(figures.ParamError, match=r"--port: \d+ is already in use on 127\.0\.0\.1"):
        serve.make_server(server.server_address[1])


# ---------------------------------------------------------------------------------------------------
# The page in a real browser


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (./tasks test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.mark.browser
def test_explorer_in_chromium(server, browser, tmp_path, capsys):
    from playwright.sync_api import expect
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "#conv")
    first_line = page.locator("#formula div").first
    page.wait_for_selector("#conv-svg")
    assert first_line.inner_text().startswith("output 3 ")
    assert page.inner_text("#position") == "window 1 of 3"
    before = page.locator("#conv-svg").evaluate("n => n.outerHTML")

    # change the stride: the output shape, the formula and the drawing follow
    page.fill("#p-stride", "1")
    expect(first_line).to_have_text(re.compile(r"^output 5 "))
    assert "floor((7 + 0 + 0 - 1*(3-1) - 1)/1) + 1 = 5" in page.inner_text("#formula")
    assert page.inner_text("#position") == "window 1 of 5"
    after = page.locator("#conv-svg").evaluate("n => n.outerHTML")
    assert after != before
    assert page.inner_text("#command") == "viz animate conv --stride 1"

    # step through the windows
    page.click("#next")
    page.click("#next")
    assert page.inner_text("#position") == "window 3 of 5"
    assert page.inner_text("#step-text").startswith("y[3] = ")
    assert "reads x at 3, 4, 5" in page.inner_text("#step-text")
    page.click("#prev")
    assert page.inner_text("#position") == "window 2 of 5"

    # the slider for all axes drives the same parameter
    page.locator('input[type=range][data-for="stride"]').fill("3")
    expect(first_line).to_have_text(re.compile(r"^output 2 "))
    assert page.input_value("#p-stride") == "3"

    # an invalid value: the CLI's message in the page, the field marked, the page still usable
    want = cli_error(capsys, ["animate", "conv", "--stride", "0", "-o", str(tmp_path / "x.mp4")])
    page.fill("#p-stride", "0")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == want
    assert page.get_attribute('.row[data-param="stride"]', "class") == "row invalid"
    want = cli_error(capsys, ["animate", "conv", "--kernel", "9", "-o", str(tmp_path / "x.mp4")])
    page.fill("#p-stride", "2")
    page.fill("#p-kernel", "9")
    expect(page.locator("#error")).to_have_text(want)
    page.fill("#p-kernel", "3")
    page.wait_for_selector("#error", state="hidden")
    assert first_line.inner_text().startswith("output 3 ")
    assert page.locator(".row.invalid").count() == 0

    # 2-D with padding and dilation: never-read cells are marked
    page.fill("#p-input", "7x7")
    page.fill("#p-dilation", "2")
    page.fill("#p-padding", "2")
    expect(first_line).to_have_text(re.compile(r"^output 4×4 "))
    assert page.locator("#conv-svg rect.never").count() > 0
    page.screenshot(path=str(tmp_path / "explorer-conv.png"))

    if HAVE_DIAGRAMS:
        page.click('#figures button[data-id="gated"]')
        page.wait_for_selector("#diagram")
        src = page.get_attribute("#diagram", "src")
        assert src.startswith("data:image/svg+xml")
        page.locator('input[type=range]#p-steps').fill("6")
        expect(page.locator("#diagram")).not_to_have_attribute("src", src)
        page.select_option("#p-view", "backward")
        expect(page.locator("#command")).to_contain_text("--view backward")
        # the weight scale only matters without a preset (the registry's Param.applies)
        expect(page.locator('[data-param="scale"]')).to_be_visible()
        page.select_option("#p-preset", "explode")
        expect(page.locator('[data-param="scale"]')).to_be_hidden()
        page.click('#figures button[data-id="bptt"]')
        expect(page.locator('[data-param="k"]')).to_be_hidden()          # model gated: no k
        expect(page.locator('[data-param="m"]')).to_be_visible()
        page.select_option("#p-model", "attention")
        expect(page.locator('[data-param="k"]')).to_be_visible()
        expect(page.locator('[data-param="m"]')).to_be_hidden()
    assert errors == []
    page.close()


@pytest.mark.parametrize("figure, params, expected", [
    ("gated", {"n": "2", "m": "4"}, ["x[t] ∈ ℝ^2,  h[t], c[t] ∈ ℝ^4;  W_c 4×2, W_x 4×2 (m×n),  W_h 4×4 (m×m)"]),
    ("attention", {"k": "2"}, ["Q, K, V each 3×3×3;  a[t] ∈ ℝ^3;"]),      # MATH.md §4: a[t] in R^3 for k = 2
    ("attention", {"k": "inf", "steps": "5"}, ["AttentionRNN(∞)", "a[1] ∈ ℝ^1 … a[5] ∈ ℝ^5"]),
    ("attention", {"k": "3", "base_case": "mask", "steps": "2"}, ["a[1] ∈ ℝ^1 … a[2] ∈ ℝ^2"]),
])
def test_rnn_shapes_come_from_the_reference(monkeypatch, figure, params, expected):
    monkeypatch.setattr(serve, "diagram_svg", lambda key, values: "<svg/>")
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
