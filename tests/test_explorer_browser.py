"""The explorer in a real browser (Debian's Chromium driven by Playwright; no browser download): the
linked views light exactly the cells `viz.conv.windows` says, in every mode and for a matrix of
geometries; keyboard navigation; numbers fit their cells; controls follow the figure; an error dims
the stale view; no console errors. Screenshots of every mode go to tmp_path (and were looked at)."""
from __future__ import annotations

import importlib.util
import re
import shutil

import numpy as np
import pytest

from viz import conv
from viz.app import registry as figures, serve

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
def page(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    # the browser logs every 400 answer (the invalid values tried on purpose); anything else counts
    page.on("console", lambda m: page.errors.append(m.text)
            if m.type == "error" and "status of 400" not in m.text else None)
    page.goto(server.url + "#conv")
    page.wait_for_selector("svg.grid")
    yield page
    page.close()


def set_params(page, params: dict, mode: str = "forward") -> dict:
    """Fill the form (every conv parameter, defaults for the rest), pick the mode, wait for the figure."""
    kind = figures.get("animate conv")
    values = kind.validate(params)
    for p in ("input", "kernel", "stride", "padding", "dilation"):
        page.fill(f"#p-{p}", params.get(p, kind.param(p).format(kind.param(p).default)))
    page.locator("#p-channels").fill(params.get("channels", "5"))
    for p in ("filters", "groups"):
        page.locator(f"#p-{p}").fill(params.get(p, "1"))
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


def test_several_filters_light_their_kernel_and_their_group_only(page):
    """4 filters in 2 groups over 4 channels: y3[n] (filter 3, group 2) lights x3, x4 only and, of the
    8 kernel rows (filter, channel of its group), only filter 3's two."""
    values = set_params(page, {"input": "6", "kernel": "3", "stride": "2", "channels": "4", "filters": "4",
                               "groups": "2"}, "forward")
    g, win, lo = geometry(values)
    for f in range(4):
        chans = range(2 * (f // 2), 2 * (f // 2) + 2)
        for o in np.ndindex(*g.out_shape):
            taps = [tuple(int(v) for v in t + lo) for t in win.indices[o].reshape(-1, g.ndim)]
            got = hover(page, "y", (f, *o))
            assert got["x"] == keys((c, *t) for c in chans for t in taps), (f, o)
            assert got["w"] == keys((r, j) for r in (2 * f, 2 * f + 1) for j in range(3)), (f, o)
            assert f"filter {f + 1} reads x{chans[0] + 1}, x{chans[1] + 1} (group {f // 2 + 1} of 2)" in got["text"]
            assert got["text"].startswith(f"y{f + 1} = "), got["text"]          # the map's own name
    names = page.evaluate("() => [...document.querySelectorAll('svg.grid[data-grid=\"w\"] text.row-label')]"
                          ".map((t) => t.textContent)")
    assert names == ["w1[x1]", "w1[x2]", "w2[x1]", "w2[x2]", "w3[x3]", "w3[x4]", "w4[x3]", "w4[x4]"]
    set_params(page, {"input": "7", "kernel": "3", "stride": "2"}, "forward")     # back to one filter


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


# ---- transposed convolution and pooling: their own Stories ---------------------------------------

SET_PARAM = """([name, value]) => {
  const e = document.getElementById('p-' + name);
  if (e.type === 'checkbox') { e.checked = value === 'true'; e.dispatchEvent(new Event('change')); }
  else if (e.tagName === 'SELECT') { e.value = value; e.dispatchEvent(new Event('change')); }
  else { e.value = value; e.dispatchEvent(new Event('input')); }
}"""


def show_figure(page, figure: str, kind_key: str, params: dict, mode: str, fixed: dict = {}) -> dict:
    """Pick the figure and mode, set every shown parameter (defaults for the rest), wait for the answer."""
    kind = figures.get(kind_key)
    if page.evaluate("() => location.hash") != f"#{figure}":
        page.click(f'#figures button[data-id="{figure}"]')
        page.wait_for_function("(f) => document.getElementById('stage').dataset.kind === f", arg=kind_key)
    for p in kind.params:
        if p.render_option or p.name in ("positions", *fixed) or p.type == "array":   # arrays: cells below
            continue
        value = params.get(p.name, "" if p.default is None else p.format(p.default))
        page.evaluate(SET_PARAM, [p.name, "true" if value is True else "false" if value is False else value])
    page.click(f'#modes button[data-mode="{mode}"]')
    values = kind.validate({**params, **fixed})
    page.wait_for_function("([c, m]) => document.getElementById('command').textContent === c && "
                           "document.getElementById('stage').dataset.mode === m",
                           arg=[kind.command_line(values), mode])
    return values


TRANSPOSED = [   # 1-D/2-D, stride, padding, dilation, output padding (also a ≥ s, allowed as a < d)
    {"input": "4", "kernel": "3", "stride": "2", "padding": "1", "output_padding": "1"},
    {"input": "3", "kernel": "2", "stride": "3"},                                   # gaps no stamp reaches
    {"input": "3x2", "kernel": "2x3", "stride": "2x1", "padding": "1x0"},
    {"input": "3x3", "kernel": "2", "stride": "2", "dilation": "3", "output_padding": "2x1"},
]


def torch_conv_transpose(story: dict, g) -> np.ndarray:
    """PyTorch's conv_transpose of the Story's own x and w (the oracle for the products shown)."""
    torch = pytest.importorskip("torch")
    grids = {a["name"]: torch.tensor(a["values"], dtype=torch.float64).reshape(a["shape"]) for a in story["grids"]}
    fn = torch.nn.functional.conv_transpose1d if g.ndim == 1 else torch.nn.functional.conv_transpose2d
    pads = [lo for lo, _ in g.padding]          # symmetric (lo, hi) pairs
    y = fn(grids["x"][None], grids["w"][None], stride=list(g.stride), padding=pads, dilation=list(g.dilation),
           output_padding=list(g.output_padding))
    return y[0, 0].numpy().round().astype(int)


@pytest.mark.parametrize("params", TRANSPOSED, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_transposed_mode_lights_the_stamps(page, params):
    from viz import transpose

    values = show_figure(page, "transpose", "diagram conv-transpose", params, "scatter", {"form": "scatter"})
    args = [values[k] for k in ("input", "kernel", "stride", "padding", "dilation", "output_padding")]
    st, g = transpose.stamps(*args), conv.conv_transpose_geometry(*args)
    nd = g.ndim
    kernel = list(np.ndindex(*g.kernel))
    reached: dict = {}
    for n in np.ndindex(*g.in_shape):
        idx, pad = st.indices[n].reshape(-1, nd), st.is_padding[n].ravel()
        stamp = [tuple(int(v) for v in c) for c, p in zip(idx, pad) if not p]
        for c in stamp:
            reached.setdefault(c, set()).add(n)
        got = hover(page, "x", (0, *n), ("lit-window",))
        assert got["x"] == keys([(0, *n)]) and got["what"] == "reads", n
        assert got.get("w", []) == keys((0, *j) for j, p in zip(kernel, pad) if not p), n   # the taps it uses
        assert "times w lands on" in got["text"] and "running sums" in got["text"]
        assert re.findall(r"→ y\[([\d,]+)\]", got["text"]) == [",".join(str(v + 1) for v in c) for c in stamp], n
        assert hover(page, "x", (0, *n), ("lit-output",)).get("y", []) == keys(stamp), n
    assert all((c in reached) == bool(st.read_count[c]) for c in np.ndindex(*g.out_shape))
    y = torch_conv_transpose(serve.render_answer("transpose", params, mode="scatter")["story"], g)
    for m in np.ndindex(*g.out_shape):
        got = hover(page, "y", m, ("lit-window",))
        assert got.get("x", []) == keys((0, *n) for n in reached.get(m, ())), m
        if m in reached:   # one product per input reaching it; they add up to PyTorch's y[m]
            products = re.findall(r"= (−?\d+) → y\[" + re.escape(",".join(str(v + 1) for v in m)) + r"\]", got["text"])
            assert got["what"] == "reached-by" and len(products) == len(reached[m]), m
            assert sum(int(v.replace("−", "-")) for v in products) == y[m], m
        else:
            assert m in st.never_read and got["what"] == "never" and "no stamp reaches" in got["text"], m
    assert page.errors == []


def test_transposed_gather_form_output_padding_and_errors(page, tmp_path):
    params = {"input": "3x3", "kernel": "3", "stride": "2", "padding": "1", "output_padding": "1"}
    show_figure(page, "transpose", "diagram conv-transpose", params, "scatter", {"form": "scatter"})
    # keyboard and stepper: the focused input moves, its stamp follows; Next is the next input's stamp
    from viz import transpose
    st = transpose.stamps((3, 3), 3, 2, 1, 1, 1)
    stamp_of = lambda n: keys(tuple(c) for c, p in zip(st.indices[n].reshape(-1, 2), st.is_padding[n].ravel())  # noqa: E731
                              if not p)
    lit_y = "() => [...document.querySelectorAll('svg.grid[data-grid=y] rect.lit-output')].map((r) => r.dataset.cell).sort()"
    focused = "() => [document.activeElement.dataset.grid, document.querySelector('rect.focus').dataset.cell]"
    page.click('svg.grid[data-grid="x"] rect[data-cell="0,0,0"]')
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == ["x", "0,1,1"] and page.evaluate(lit_y) == stamp_of((1, 1))
    page.click("#next")
    assert page.evaluate(focused)[1] == "0,1,2" and page.evaluate(lit_y) == stamp_of((1, 2))
    assert page.inner_text("#position") == "step 6 of 9"           # 9 stamps (the last tap reaches row 6)
    page.hover('svg.grid[data-grid="x"] rect[data-cell="0,1,1"]')
    page.screenshot(path=str(tmp_path / "explorer-transpose-scatter.png"), full_page=True)
    assert page.locator('[data-param="form"]').count() == 0 and page.locator('[data-param="positions"]').count() == 0
    assert page.is_visible('[data-param="output_padding"]')
    values = show_figure(page, "transpose", "diagram conv-transpose", params, "gather", {"form": "gather"})
    assert page.inner_text("#command").endswith("--form gather")
    g = conv.conv_transpose_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                                     values["dilation"], values["output_padding"])
    story = serve.render_answer("transpose", params, mode="gather")["story"]
    spread = next(x for x in story["grids"] if x["name"] == "x_spread")
    muted = page.evaluate("() => [...document.querySelectorAll('svg.grid[data-grid=x_spread] rect.muted')].length")
    dashed = page.evaluate("() => [...document.querySelectorAll('svg.grid[data-grid=x_spread] rect.pad')].length")
    assert muted == sum(spread["muted"]) > 0 and dashed == sum(spread["padding"]) > 0
    for m in np.ndindex(*g.out_shape):     # each output reads a k×k window of the spread grid (stride 1)
        got = hover(page, "y", m, ("lit-window", "lit-muted", "lit-padtap"))
        want = keys((0, m[0] + a, m[1] + b) for a in range(3) for b in range(3))
        assert got["x_spread"] == want and got["what"] == "reads", m
    page.hover('svg.grid[data-grid="y"] rect[data-cell="2,3"]')
    page.screenshot(path=str(tmp_path / "explorer-transpose-gather.png"), full_page=True)
    # output padding too large: the registry's one line, the field marked, the old figure dimmed
    page.evaluate(SET_PARAM, ["output_padding", "2"])
    page.wait_for_selector("#error:not([hidden])")
    with pytest.raises(figures.ParamError) as err:
        figures.get("diagram conv-transpose").validate({**params, "output_padding": "2"})
    assert page.inner_text("#error") == str(err.value)
    assert page.get_attribute('.row[data-param="output_padding"]', "class") == "row invalid"
    page.wait_for_function("() => getComputedStyle(document.getElementById('stage')).opacity === '0.4'")
    page.evaluate(SET_PARAM, ["output_padding", "1"])
    page.wait_for_selector("#error", state="hidden")
    assert page.errors == []


TRANSPOSED_MAPS = [   # several channels and maps, groups; 1-D and 2-D
    {"input": "3", "kernel": "3", "stride": "2", "channels": "4", "filters": "2", "groups": "2", "output_padding": "1"},
    {"input": "2x2", "kernel": "2", "stride": "2", "channels": "2", "filters": "3"},
]


@pytest.mark.parametrize("params", TRANSPOSED_MAPS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_transposed_modes_with_several_channels_and_maps(page, params, tmp_path):
    """Scatter: an input x[c, n] lights its stamp on every map of c's group and the kernel slices it uses;
    an output y[f, m] lights every input whose stamp reaches it, only from f's group, and its products
    add up to PyTorch's. Gather: an output lights the spread window on its group's channels only."""
    from viz import transpose

    torch = pytest.importorskip("torch")
    values = show_figure(page, "transpose", "diagram conv-transpose", params, "scatter", {"form": "scatter"})
    C, F, G = values["channels"], values["filters"], values["groups"]
    Cg, Fg = C // G, F // G
    args = [values[k] for k in ("input", "kernel", "stride", "padding", "dilation", "output_padding")]
    st, g = transpose.stamps(*args), conv.conv_transpose_geometry(*args)
    nd = g.ndim
    story = serve.render_answer("transpose", params, mode="scatter")["story"]
    grids = {a["name"]: torch.tensor(a["values"], dtype=torch.float64).reshape(a["shape"]) for a in story["grids"]}
    fn = torch.nn.functional.conv_transpose1d if nd == 1 else torch.nn.functional.conv_transpose2d
    y = fn(grids["x"][None], grids["w"].reshape(C, Fg, *g.kernel), stride=list(g.stride),
           padding=[lo for lo, _ in g.padding], dilation=list(g.dilation), output_padding=list(g.output_padding),
           groups=G)[0].numpy().round().astype(int)
    ycell = (lambda f, m: (f, *m)) if F > 1 else (lambda f, m: tuple(m))
    reached: dict = {}
    for c in range(C):
        maps = range(c // Cg * Fg, (c // Cg + 1) * Fg)
        for n in np.ndindex(*g.in_shape):
            idx, pad = st.indices[n].reshape(-1, nd), st.is_padding[n].ravel()
            stamp = [tuple(int(v) for v in m) for m, p in zip(idx, pad) if not p]
            for f in maps:
                for m in stamp:
                    reached.setdefault(ycell(f, m), set()).add((c, *n))
            got = hover(page, "x", (c, *n), ("lit-window",))
            assert got["x"] == keys([(c, *n)]) and got["what"] == "reads", (c, n)
            taps = [j for j, p in zip(np.ndindex(*g.kernel), pad) if not p]
            assert got.get("w", []) == keys((c * Fg + f % Fg, *j) for f in maps for j in taps), (c, n)
            assert hover(page, "x", (c, *n), ("lit-output",)).get("y", []) == keys(ycell(f, m) for f in maps for m in stamp)
    for f in range(F):
        for m in np.ndindex(*g.out_shape):
            got = hover(page, "y", ycell(f, m), ("lit-window",))
            inputs = reached.get(ycell(f, m), set())
            assert got.get("x", []) == keys(inputs), (f, m)
            assert {int(k.split(",")[0]) for k in got.get("x", [])} <= set(range(f // Fg * Cg, (f // Fg + 1) * Cg))
            if inputs:
                name = (f"y{f + 1}" if F > 1 else "y") + r"\[" + re.escape(",".join(str(v + 1) for v in m)) + r"\]"
                products = re.findall(r"= (−?\d+) → " + name, got["text"])
                assert len(products) == len(inputs), (f, m, got["text"])
                assert sum(int(v.replace("−", "-")) for v in products) == y[(f, *m)], (f, m)
    page.screenshot(path=str(tmp_path / "explorer-transpose-maps-scatter.png"), full_page=True)
    values = show_figure(page, "transpose", "diagram conv-transpose", params, "gather", {"form": "gather"})
    for f in range(F):
        m = tuple(o // 2 for o in g.out_shape)
        got = hover(page, "y", ycell(f, m), ("lit-window", "lit-muted", "lit-padtap"))
        chans = {int(k.split(",")[0]) for k in got["x_spread"]}
        assert chans == set(range(f // Fg * Cg, (f // Fg + 1) * Cg)) and got["what"] == "reads", (f, chans)
    page.screenshot(path=str(tmp_path / "explorer-transpose-maps-gather.png"), full_page=True)
    assert page.errors == []


POOLS = [   # max/avg, 1-D/2-D, padding, dilation (max), ceil_mode, count_include_pad (avg)
    {"input": "7", "kernel": "3", "stride": "2", "padding": "1", "mode": "max"},
    {"input": "7x6", "kernel": "3x2", "stride": "2", "padding": "1x0", "dilation": "2x1", "mode": "max",
     "ceil_mode": True},
    {"input": "5x5", "kernel": "3", "stride": "2", "padding": "1", "mode": "avg", "ceil_mode": True,
     "count_include_pad": False},
    {"input": "8", "kernel": "2", "stride": "3", "mode": "avg"},                      # unread inputs
]


def flags(params: dict) -> dict:
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}


@pytest.mark.parametrize("params", POOLS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_pool_mode_lights_the_windows(page, params):
    """Each output lights exactly pool_geometry's window (real taps, padding taps dashed) and, for max,
    the cell max_pool(return_indices=True) picks; each input the outputs reading it; backward: each
    ∂ℓ/∂y[o] lights where it goes (max: the argmax, avg: the real taps), each ∂ℓ/∂x what it receives."""
    from playwright.sync_api import expect
    from viz import pool

    values = show_figure(page, "pool", "diagram pool", flags(params), "forward")
    mode = values["mode"]
    g = pool.pool_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"] if mode == "max" else 1, values["ceil_mode"])
    win, lo = g.windows, np.array([p for p, _ in g.windows.geometry.padding])
    nd = len(g.in_shape)
    grid = next(a for a in serve.render_answer("pool", flags(params))["story"]["grids"] if a["name"] == "x")
    x = np.array(grid["values"]).reshape(grid["shape"])[(0, *(slice(a, a + n) for a, n in zip(lo, g.in_shape)))]
    if mode == "max":
        _, arg = pool.max_pool(x[None], g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode, return_indices=True)
    hidden, shown = ("dilation", "count_include_pad") if mode == "avg" else ("count_include_pad", "dilation")
    expect(page.locator(f'[data-param="{hidden}"]')).to_be_hidden()
    expect(page.locator(f'[data-param="{shown}"]')).to_be_visible()
    goes: dict = {}
    for o in np.ndindex(*g.out_shape):
        taps, pads = win.indices[o].reshape(-1, nd), win.is_padding[o].ravel()
        real = [tuple(int(v) for v in t) for t, p in zip(taps, pads) if not p]
        got = hover(page, "y", o, ("lit-window",))
        assert got["x"] == keys((0, *(np.array(t) + lo)) for t in real) and got["what"] == "reads", o
        got = hover(page, "y", o, ("lit-padtap",))
        assert got.get("x", []) == keys((0, *(t + lo)) for t, p in zip(taps, pads) if p), o
        to = [tuple(int(v) for v in np.unravel_index(int(arg[(0, *o)]), g.in_shape))] if mode == "max" else real
        got = hover(page, "y", o, ("lit-max",))
        assert got.get("x", []) == (keys([(0, *(np.array(to[0]) + lo))]) if mode == "max" else []), o
        goes[o] = to
    for m in np.ndindex(*g.in_shape):
        want = [o for o in np.ndindex(*g.out_shape) if any(
            (t == np.array(m)).all() and not p for t, p in zip(win.indices[o].reshape(-1, nd), win.is_padding[o].ravel()))]
        got = hover(page, "x", (0, *(np.array(m) + lo)), ("lit-output",))
        assert got.get("y", []) == keys(want), m
    show_figure(page, "pool", "diagram pool", flags(params), "backward")
    for o, to in goes.items():
        got = hover(page, "grad_y", o, ("lit-output",))
        assert got["grad_x"] == keys(to) and got["text"].startswith("∂ℓ/∂y"), o
    for m in np.ndindex(*g.in_shape):
        want = [o for o, to in goes.items() if m in to]
        got = hover(page, "grad_x", m, ("lit-window",))
        assert got.get("grad_y", []) == keys(want), m
        # no window reads it at all: the Story's never-read step says so; read but not routed to: 0
        never = tuple(m) in {tuple(v) for v in win.never_read}
        assert got["what"] == ("reached-by" if want else "never" if never else "unreached"), m
    assert page.errors == []


def test_pool_keyboard_and_screenshots(page, tmp_path):
    show_figure(page, "pool", "diagram pool", {"input": "6x6", "kernel": "3", "stride": "2", "padding": "1"},
                "forward")
    page.click('svg.grid[data-grid="y"] rect[data-cell="0,0"]')
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.querySelector('rect.focus').dataset.cell") == "1,1"
    assert page.inner_text(".info").startswith("y = ") and "max(" in page.inner_text(".info")
    page.screenshot(path=str(tmp_path / "explorer-pool-max.png"), full_page=True)
    show_figure(page, "pool", "diagram pool", {"input": "6x6", "kernel": "3", "stride": "2", "padding": "1",
                                               "mode": "avg"}, "backward")
    page.hover('svg.grid[data-grid="grad_x"] rect[data-cell="2,2"]')
    page.screenshot(path=str(tmp_path / "explorer-pool-avg-backward.png"), full_page=True)
    fits = ("() => [...document.querySelectorAll('svg.grid')].every((svg) => [...svg.querySelectorAll("
            "'text.val')].every((t) => t.getBBox().width <= t.previousElementSibling.width.baseVal.value - 2))")
    shown = "() => document.querySelectorAll('svg.grid text.val').length"
    assert page.evaluate(shown) == 9 + 36 and page.evaluate(fits)       # the averages' decimals fit too
    for _ in range(3):
        page.click("#zoom-out")
    assert page.evaluate(fits)
    page.click("#zoom-fit")
    page.click('#figures button[data-id="conv"]')
    page.wait_for_selector('svg.grid[data-grid="w"]')
    assert page.errors == []
