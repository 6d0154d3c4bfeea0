"""The explorer in a real browser (Debian's Chromium driven by Playwright; no browser download): the
linked views light exactly the cells `viz.conv.windows` says, in every mode and for a matrix of
geometries; keyboard navigation; numbers fit their cells; controls follow the figure; an error dims
the stale view; no console errors. Screenshots of every mode go to tmp_path (and were looked at)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import threading

import numpy as np
import pytest

from viz import conv
from viz.app import registry as figures, serve

CHROMIUM = "/usr/bin/chromium"
HAVE_DOT = shutil.which("dot") is not None and importlib.util.find_spec("diagrams.figures") is not None
pytestmark = pytest.mark.browser

GEOMETRIES = [   # 1-D and 2-D, padding, stride, dilation, channels, unread trailing inputs
    {"input": "8", "kernel": "3", "stride": "2", "channels": "2"},                       # x[8] never read
    {"input": "6", "kernel": "3", "dilation": "2", "padding": "1:2", "channels": "1"},
    {"input": "5x4", "kernel": "2x3", "stride": "2x1", "padding": "1:0x0:1", "channels": "2"},
    {"input": "7x6", "kernel": "2", "stride": "3", "dilation": "2", "channels": "1"},   # unread rows, cols
    {"input": "6x5", "kernel": "4x2", "stride": "1", "padding": "same", "dilation": "1x2", "channels": "1"},
]


@pytest.fixture(scope="module")
def server():
    srv = serve.make_server(0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def page(server):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (./tasks test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        # the browser logs every 400 answer (the invalid values tried on purpose); anything else counts
        page.on("console", lambda m: page.errors.append(m.text)
                if m.type == "error" and "status of 400" not in m.text else None)
        page.goto(server.url + "#conv")
        page.wait_for_selector("svg.grid")
        yield page
        b.close()


def set_params(page, params: dict, mode: str = "forward") -> dict:
    """Fill the form (every conv parameter, defaults for the rest), pick the mode, wait for the figure."""
    kind = figures.get("animate conv")
    values = kind.validate(params)
    for p in ("input", "kernel", "stride", "padding", "dilation"):
        page.fill(f"#p-{p}", params.get(p, kind.param(p).format(kind.param(p).default)))
    page.locator("#p-channels").fill(params.get("channels", "5"))
    page.click(f'#modes button[data-mode="{mode}"]')
    shown = figures.get("animate conv" if mode == "forward" else "animate conv-backward")
    command = shown.command_line(values)                  # what makes this mode: its own kind
    page.wait_for_function("([c, m]) => document.getElementById('command').textContent === c && "
                           "document.getElementById('stage').dataset.mode === m", arg=[command, mode])
    page.wait_for_selector("svg.grid")
    return values


LIT_OF = """([grid, cell, classes]) => {
  const r = document.querySelector(`svg.grid[data-grid="${grid}"] rect[data-cell="${cell}"]`);
  r.dispatchEvent(new PointerEvent("pointerover", {bubbles: true}));
  const out = {};
  for (const svg of document.querySelectorAll("svg.grid")) {
    const lit = [...svg.querySelectorAll("rect")].filter((x) => classes.some((c) => x.classList.contains(c)))
      .map((x) => x.dataset.cell);
    if (lit.length) out[svg.dataset.grid] = lit.sort();
  }
  out.what = document.querySelector(".info").dataset.what;
  out.text = document.querySelector(".info").textContent;
  return out;
}"""


def hover(page, grid, cell, classes=("lit-window", "lit-padtap")):
    return page.evaluate(LIT_OF, [grid, ",".join(map(str, cell)), list(classes)])


def keys(cells) -> list[str]:
    return sorted(",".join(map(str, c)) for c in cells)


def geometry(values):
    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    win = conv.windows(g.in_shape, g.kernel, g.stride, g.padding, g.dilation)
    return g, win, np.array([lo for lo, _ in g.padding])


@pytest.mark.parametrize("params", GEOMETRIES, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_linked_views_light_the_windows(page, params):
    # forward: each output lights its window (real taps and padding taps, every channel), and each
    # input lights the outputs that read it
    values = set_params(page, params, "forward")
    g, win, lo = geometry(values)
    C = values["channels"]
    readers: dict = {}
    for o in np.ndindex(*g.out_shape):
        taps = [tuple(int(v) for v in t + lo) for t in win.indices[o].reshape(-1, g.ndim)]
        got = hover(page, "y", o)
        assert got["x"] == keys((c, *t) for c in range(C) for t in taps), o
        assert got["what"] == "reads" and got["text"].startswith("y = ")
        # the weights it multiplies: those on padding taps dashed, the rest lit
        kernel = list(np.ndindex(*g.kernel))
        pads = win.is_padding[o].ravel()
        got = hover(page, "y", o, ("lit-padtap",))
        assert got.get("w", []) == keys((c, *j) for c in range(C) for j, p in zip(kernel, pads) if p), o
        got = hover(page, "y", o, ("lit-window",))
        assert got.get("w", []) == keys((c, *j) for c in range(C) for j, p in zip(kernel, pads) if not p), o
        for t, pad in zip(taps, win.is_padding[o].ravel()):
            readers.setdefault(t, set()).add(o)
    for m in np.ndindex(*g.in_shape):
        cell = (0, *(int(v) + int(l) for v, l in zip(m, lo)))
        got = hover(page, "x", cell, ("lit-output",))
        want = {o for o in np.ndindex(*g.out_shape) if tuple(cell[1:]) in
                {tuple(int(v) for v in t + lo) for t, p in zip(win.indices[o].reshape(-1, g.ndim),
                                                                 win.is_padding[o].ravel()) if not p}}
        assert got.get("y", []) == keys(want), m
        if m in [tuple(int(v) for v in n) for n in win.never_read]:
            assert not want and got["what"] == "never" and "never read" in got["text"]
        else:
            assert want and got["what"] == "read-by"
    pad_cells = [t for t in readers if any(not 0 <= t[a] - lo[a] < g.in_shape[a] for a in range(g.ndim))]
    for t in pad_cells[:3]:
        got = hover(page, "x", (0, *t), ("lit-output",))
        assert got["what"] == "read-by" and got["text"].count("padding (a 0)") == 1
        assert got["y"] == keys(readers[t])

    # backward: ∂ℓ/∂x[c, m] <- the ∂ℓ/∂y entries whose window reads x[m]; ∂ℓ/∂w[c, j] <- x under tap j
    set_params(page, params, "backward")
    for m in np.ndindex(*g.in_shape):
        want = [o for o in np.ndindex(*g.out_shape)
                if any((t == np.array(m)).all() and not p for t, p in
                       zip(win.indices[o].reshape(-1, g.ndim), win.is_padding[o].ravel()))]
        got = hover(page, "grad_x", (C - 1, *m))
        assert got.get("grad_y", []) == keys(want), m
    for j in np.ndindex(*g.kernel):
        flat = int(np.ravel_multi_index(j, g.kernel))
        want = {(c, *(int(v) for v in win.indices[o].reshape(-1, g.ndim)[flat] + lo))
                for o in np.ndindex(*g.out_shape) for c in range(C)}
        assert hover(page, "grad_w", (0, *j))["x"] == keys(want), j

    # transposed (the backward Story's grad_x part read the other way): ∂ℓ/∂y[o] stamps into the
    # ∂ℓ/∂x cells of its window (real taps), every channel
    set_params(page, params, "transposed")
    for o in np.ndindex(*g.out_shape):
        real = [tuple(int(v) for v in t) for t, p in zip(win.indices[o].reshape(-1, g.ndim),
                                                           win.is_padding[o].ravel()) if not p]
        got = hover(page, "grad_y", o, ("lit-output",))
        assert got.get("grad_x", []) == keys((c, *t) for c in range(C) for t in real), o
        assert got["what"] == "read-by" and "scatters its stamp" in got["text"]
    assert page.errors == []


def test_keyboard_zoom_and_legibility(page, tmp_path):
    set_params(page, {"input": "7x7", "kernel": "3", "stride": "2", "padding": "1", "channels": "1"})
    page.click('svg.grid[data-grid="y"] rect[data-cell="0,0"]')
    focused = lambda: page.evaluate(  # noqa: E731
        "() => [document.activeElement.dataset.grid, document.querySelector('rect.focus').dataset.cell]")
    assert focused() == ["y", "0,0"]
    page.keyboard.press("ArrowRight")
    assert focused() == ["y", "0,1"]
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    assert focused() == ["y", "3,1"]                 # the output is 4×4
    page.keyboard.press("ArrowDown")                 # stays inside the grid
    assert focused() == ["y", "3,1"]
    lit = page.evaluate("() => [...document.querySelectorAll('svg.grid[data-grid=x] rect.lit-window, "
                        "svg.grid[data-grid=x] rect.lit-padtap')].map((r) => r.dataset.cell).sort()")
    assert lit == keys((0, r, q) for r in (6, 7, 8) for q in (2, 3, 4))    # window of y[4,2], padded grid
    page.keyboard.press("Shift+Tab")                   # the grid before takes the focus, at its first cell
    assert focused() == ["w", "0,0,0"]
    page.keyboard.press("ArrowRight")
    assert focused() == ["w", "0,0,1"] and "w = " in page.inner_text(".info")
    page.screenshot(path=str(tmp_path / "explorer-forward-2d.png"))

    # numbers fit their cells at every zoom; below a readable size they are hidden, shown on hover
    set_params(page, {"input": "9x9", "kernel": "3", "stride": "1", "channels": "3"})
    page.select_option("#p-values", "float")
    page.wait_for_function("() => document.getElementById('command').textContent.includes('--values float')")
    fits = ("() => [...document.querySelectorAll('svg.grid')].every((svg) => [...svg.querySelectorAll("
            "'text.val')].every((t) => t.getBBox().width <= t.previousElementSibling.width.baseVal.value - 2))")
    count = "() => document.querySelectorAll('svg.grid text.val').length"
    assert page.evaluate(count) > 0 and page.evaluate(fits)
    for _ in range(3):
        page.click("#zoom-out")
    assert page.inner_text("#zoom-level") == "51%"
    assert page.evaluate(fits)
    small = page.evaluate(count)
    page.hover('svg.grid[data-grid="y"] rect[data-cell="3,3"]')
    assert re.match(r"y = −?\d+\.\d+", page.inner_text(".info"))      # the value, on hover
    page.click("#zoom-fit")
    for _ in range(4):
        page.click("#zoom-in")
    assert page.evaluate(fits) and page.evaluate(count) >= small
    assert page.evaluate("() => { const g = document.querySelector('.grids'); "
                         "return g.scrollWidth > g.clientWidth; }")  # too wide: it pans sideways
    page.click("#zoom-fit")
    page.select_option("#p-values", "int")
    assert page.errors == []


def test_errors_dim_the_stale_view_and_modes_are_screenshotted(page, server, tmp_path):
    from playwright.sync_api import expect

    set_params(page, {"input": "6x5", "kernel": "3", "stride": "2", "padding": "1", "channels": "2"}, "backward")
    page.hover('svg.grid[data-grid="grad_x"] rect[data-cell="1,2,2"]')
    page.screenshot(path=str(tmp_path / "explorer-backward.png"), full_page=True)
    set_params(page, {"input": "6x5", "kernel": "3", "stride": "2", "padding": "1", "channels": "2"}, "transposed")
    page.hover('svg.grid[data-grid="grad_y"] rect[data-cell="1,1"]')
    page.screenshot(path=str(tmp_path / "explorer-transposed.png"), full_page=True)
    # an invalid value: the CLI's message, the field marked, the old figure dimmed
    page.fill("#p-stride", "0")
    page.wait_for_selector("#error:not([hidden])")
    with pytest.raises(figures.ParamError) as err:          # the command line's own message
        figures.get("animate conv").validate({"stride": "0"})
    assert page.inner_text("#error") == str(err.value)
    assert page.get_attribute('.row[data-param="stride"]', "class") == "row invalid"
    page.wait_for_function("() => getComputedStyle(document.getElementById('stage')).opacity === '0.4'")
    page.screenshot(path=str(tmp_path / "explorer-error.png"))
    page.fill("#p-stride", "2")
    page.wait_for_selector("#error", state="hidden")
    assert not page.evaluate("() => document.getElementById('view').classList.contains('stale')")

    # BPTT: one row of states, however long
    page.click('#figures button[data-id="bptt"]')
    page.wait_for_selector("#bptt-svg")
    page.locator("#p-steps").fill("12")
    page.wait_for_function("() => document.getElementById('command').textContent.includes('--steps 12') "
                           "|| document.getElementById('command').textContent === 'viz animate bptt'")
    ys = page.evaluate("() => [...document.querySelectorAll('#bptt-svg .node')].map((c) => c.getAttribute('data-cy'))")
    assert len(ys) >= 13 and len(set(ys)) == 1          # h[0] … h[12] and the loss on one baseline
    page.click("#next")
    page.screenshot(path=str(tmp_path / "explorer-bptt.png"), full_page=True)
    expect(page.locator('[data-param="k"]')).to_be_hidden()          # model gated: no k
    page.select_option("#p-model", "attention")
    expect(page.locator('[data-param="k"]')).to_be_visible()
    expect(page.locator('[data-param="m"]')).to_be_hidden()

    if HAVE_DOT:
        page.click('#figures button[data-id="gated"]')
        page.wait_for_selector("#diagram")
        expect(page.locator('[data-param="steps"]')).to_be_visible()
        page.select_option("#p-view", "cell")
        expect(page.locator('[data-param="steps"]')).to_be_hidden()    # one cell: no steps
        page.click('#figures button[data-id="attention"]')
        page.wait_for_selector("#diagram")
        page.fill("#p-k", "inf")
        expect(page.locator('[data-param="base_case"]')).to_be_hidden()  # AttentionRNN(∞): always mask
        page.screenshot(path=str(tmp_path / "explorer-attention.png"), full_page=True)
    page.click('#figures button[data-id="conv"]')
    assert page.errors == []


def test_bptt_mode_draws_the_story(page):
    """Bars: one per δ[t], heights ordered as the Story's ‖δ[t]‖ (log axis), titled with its texts; every
    step lights exactly its Lit cells; states on one row even at T = 24; hovering h[t] goes to δ[t]."""
    page.click('#figures button[data-id="bptt"]')
    page.wait_for_selector("#bptt-svg")
    page.select_option("#p-model", "attention")
    page.fill("#p-k", "inf")
    page.locator("#p-steps").fill("24")
    page.wait_for_function("() => document.getElementById('command').textContent.endsWith('--k inf --steps 24')")
    page.wait_for_function("() => document.querySelectorAll('#bptt-svg .node').length === 26")
    story = serve.render_answer("bptt", {"model": "attention", "k": "inf", "steps": "24"})["story"]
    series = story["series"][0]
    bars = page.evaluate("() => [...document.querySelectorAll('#bptt-svg rect.bar')].map((b) => "
                         "[Number(b.dataset.x), b.getBBox().height, b.textContent])")
    assert [b[0] for b in bars] == series["x"]
    heights = [b[1] for b in bars]
    assert np.argsort(heights, kind="stable").tolist() == np.argsort(series["y"], kind="stable").tolist()
    texts = {w["cell"][0]: w["text"] for s in story["steps"] for w in s["writes"] if w["target"] == "delta"}
    assert [b[2] for b in bars] == [texts.get(i, "") for i in range(len(bars))]
    nodes = page.evaluate("() => [...document.querySelectorAll('#bptt-svg .node')].map((n) => "
                          "[n.dataset.id, Number(n.getAttribute('x')), n.dataset.cy])")
    xs = [x for _, x, _ in nodes]
    assert len({cy for *_, cy in nodes}) == 1 and xs == sorted(xs)          # one row, left to right
    lit_js = ("() => Object.fromEntries(['lit-window', 'lit-output', 'lit-path', 'lit-forward', 'lit-loss']"
              ".map((c) => [c, "
              "[...document.querySelectorAll('#bptt-svg .' + c)].map((e) => e.dataset.id || ('delta|' + e.dataset.x))"
              ".sort()]))")
    role = {"highlight": "lit-window", "gradient": "lit-output", "path": "lit-path", "hidden": "lit-forward",
            "loss": "lit-loss"}
    page.click("#prev")
    for i, step in enumerate(story["steps"]):
        if i:
            page.click("#next")
        want = {c: [] for c in role.values()}
        for lit in step["lit"]:
            ids = [c if lit["target"] == "graph" else f"delta|{c:g}" for c in lit["cells"]]
            want[role[lit["role"]]] += ids
        got = page.evaluate(lit_js)
        assert got == {k: sorted(v) for k, v in want.items()}, step["id"]
        assert page.inner_text("#position") == f"step {i + 1} of {len(story['steps'])}"
    page.hover('#bptt-svg .node[data-id="h5"]')
    assert page.inner_text(".info").startswith("δ[5]")
    page.click('#figures button[data-id="conv"]')
    assert page.errors == []
