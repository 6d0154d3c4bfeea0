"""The explorer's editable cells in a real browser (Debian's Chromium driven by Playwright; no browser
download): editing a cell redraws the output the reference computes; a bad cell is marked and said in one
line, and nothing is sent; a geometry the edited array no longer fits drops it (one line says so); reset
brings the seeded example back; the cells are labelled 1-based and keyboard navigable; nothing overlaps
or is clipped at 1280 and 700 px, light and dark (screenshots in tmp_path, looked at)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from viz import conv, pool
from viz.app import registry as figures
from viz.text import fmt_value

pytestmark = pytest.mark.browser




@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.errors = []
    page.requests = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text)
            if m.type == "error" and "status of 400" not in m.text else None)
    page.on("request", lambda r: page.requests.append(r.url) if "/api/render" in r.url else None)
    page.open = lambda figure: (page.goto(server.url + "#" + figure),
                                page.wait_for_selector("#arrays .cells input"))
    yield page
    assert page.errors == []
    page.close()


def cell(page, label: str):
    return page.locator(f'#arrays input[aria-label="{label}"]')


def values(page, name: str, shape) -> np.ndarray:
    texts = page.locator(f'#arrays .array[data-array="{name}"] input').evaluate_all("l => l.map((i) => i.value)")
    return np.array([float(t) for t in texts]).reshape(shape)


def texts(page, grid: str) -> list[str]:
    return page.locator(f'svg.grid[data-grid="{grid}"] text.val').all_text_contents()


def settle(page, grid: str, before: list[str]) -> list[str]:
    page.wait_for_function("([g, b]) => JSON.stringify([...document.querySelectorAll(`svg.grid[data-grid='${g}'] "
                           "text.val`)].map((t) => t.textContent)) !== JSON.stringify(b)", arg=[grid, before])
    return texts(page, grid)


def set_form(page, **params):
    """Fill the form and wait for the answer to these parameters (its command; the arrays sent follow)."""
    for name, value in params.items():
        page.locator(f"#p-{name}").fill(value)
    kind = figures.get("animate conv")
    base = kind.command_line(kind.validate(params))
    page.wait_for_function("(b) => { const c = document.getElementById('command').textContent; "
                           "return c === b || c.startsWith(b + ' --'); }", arg=base)


def wait_cells(page, name: str, n: int):
    page.wait_for_function("([a, n]) => document.querySelectorAll(`#arrays .array[data-array='${a}'] input`)"
                           ".length === n", arg=[name, n])


def test_editing_a_cell_redraws_the_output_the_reference_computes(page):
    page.open("conv")
    set_form(page, input="6", channels="2", kernel="3", stride="1")
    wait_cells(page, "x", 12)
    x, w = values(page, "x", (2, 6)), values(page, "w", (1, 2, 3))
    y0 = texts(page, "y")
    assert y0 == [fmt_value(v, True) for v in conv.conv(x, w).ravel()]        # the seeded numbers drawn
    cell(page, "x[2,3]").fill("7.5")
    x[1, 2] = 7.5
    assert settle(page, "y", y0) == [fmt_value(v, False) for v in conv.conv(x, w).ravel()]
    cell(page, "w[1,1,1]").fill("-2")
    w[0, 0, 0] = -2
    y1 = texts(page, "y")
    assert settle(page, "y", y1) == [fmt_value(v, False) for v in conv.conv(x, w).ravel()]
    assert page.locator('#arrays .array[data-array="x"]').get_attribute("class").split() == ["array", "edited"]
    assert "--x '[[" in page.locator("#command").text_content()
    # the backward mode draws the same x and w, with its own ∂ℓ/∂y cells
    page.click('#modes button[data-mode="backward"]')
    wait_cells(page, "grad_y", 4)
    assert np.array_equal(values(page, "x", (2, 6)), x) and np.array_equal(values(page, "w", (1, 2, 3)), w)


def test_a_pool_edit_moves_the_maximum(page):
    page.open("pool")
    wait_cells(page, "x", 16)
    x = values(page, "x", (1, 4, 4))
    y0 = texts(page, "y")
    cell(page, "x[1,4,4]").fill("99")
    x[0, 3, 3] = 99
    got = settle(page, "y", y0)
    assert got == [fmt_value(v, True) for v in pool.max_pool(x, 2, 2)[0].ravel()] and got[-1] == "99"


NOT_A_NUMBER = "must be a finite number like 0.5 or -2 (got {})"


@pytest.mark.parametrize("text, words", [("abc", NOT_A_NUMBER.format("abc")), ("inf", NOT_A_NUMBER.format("inf")),
                                         ("1e999", NOT_A_NUMBER.format("1e999")), ("0x10", NOT_A_NUMBER.format("0x10")),
                                         ("", "is empty (give a number like 0.5 or -2)")])
def test_a_bad_cell_is_marked_and_said_and_not_sent(page, text, words):
    page.open("conv")
    wait_cells(page, "x", 35)
    y0 = texts(page, "y")
    sent = len(page.requests)
    cell(page, "x[2,3]").fill(text)
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").text_content() == f"--x: x[2,3] {words}"
    assert words in page.locator("#arrays .arrays-error").text_content()     # beside the cells too
    assert cell(page, "x[2,3]").get_attribute("aria-invalid") == "true"
    assert "stale" in page.locator("#view").get_attribute("class")
    page.wait_for_timeout(500)
    assert len(page.requests) == sent and texts(page, "y") == y0              # nothing went out
    cell(page, "x[2,3]").fill("1")
    page.wait_for_selector("#error", state="hidden")
    assert cell(page, "x[2,3]").get_attribute("aria-invalid") is None


def test_a_geometry_the_array_no_longer_fits_drops_it(page):
    page.open("conv")
    set_form(page, channels="2")
    wait_cells(page, "w", 6)
    cell(page, "x[1,1]").fill("5")
    cell(page, "w[1,2,3]").fill("4")
    page.wait_for_function("() => document.getElementById('command').textContent.includes('--w')")
    set_form(page, kernel="2")
    page.wait_for_selector("#arrays .arrays-note:not([hidden])")
    assert page.locator("#arrays .arrays-note").text_content() == (
        "Dropped your w (1×2×3): it must be 1×2×2 now, for 1 filter, 2 input channels and kernel 2. "
        "The seeded example is drawn instead.")
    wait_cells(page, "w", 4)
    command = page.locator("#command").text_content()
    assert "--w" not in command and "--x '[[5," in command                  # x still fits: kept
    assert cell(page, "x[1,1]").input_value() == "5"
    # the bias: an edited b is dropped when the bias is switched off (else giving b turns it back on)
    page.locator("#p-bias").check()
    wait_cells(page, "b", 1)
    cell(page, "b[1]").fill("3")
    page.wait_for_function("() => document.getElementById('command').textContent.includes(\"--b '[\")")
    page.locator("#p-bias").uncheck()
    page.wait_for_function("() => !document.querySelector(\"#arrays .array[data-array='b']\")")
    assert "Dropped your b (1): these parameters do not use it." in page.locator("#arrays .arrays-note").text_content()
    assert "--b" not in page.locator("#command").text_content()


def test_reset_brings_the_seeded_example_back(page):
    page.open("conv")
    wait_cells(page, "x", 35)
    seeded = values(page, "x", (5, 7))
    reset = page.locator("#arrays button.reset")
    assert reset.is_disabled()
    y0 = texts(page, "y")
    cell(page, "x[1,1]").fill("100")
    settle(page, "y", y0)
    assert reset.is_enabled()
    reset.click()
    page.wait_for_function("() => !document.getElementById('command').textContent.includes('--x')")
    assert texts(page, "y") == y0 and reset.is_disabled()
    assert np.array_equal(values(page, "x", (5, 7)), seeded)


def test_cells_are_labelled_and_keyboard_navigable(page):
    page.open("conv")
    set_form(page, input="4x3", channels="2", kernel="2")
    wait_cells(page, "x", 24)
    labels = page.locator("#arrays .cells input").evaluate_all("l => l.map((i) => i.getAttribute('aria-label'))")
    assert len(labels) == len(set(labels)) == 24 + 8
    assert all(re.fullmatch(r"(x|w|b|grad_y)\[\d+(,\d+)*\]", a) for a in labels)
    assert labels[:4] == ["x[1,1,1]", "x[1,1,2]", "x[1,1,3]", "x[1,2,1]"]     # 1-based, row-major
    assert page.locator("#arrays .array[data-array='x'] figcaption").all_text_contents() == ["x[1,·,·]", "x[2,·,·]"]
    focused = lambda: page.evaluate("document.activeElement.getAttribute('aria-label')")   # noqa: E731
    cell(page, "x[1,1,1]").focus()
    page.keyboard.press("ArrowDown")
    assert focused() == "x[1,2,1]"
    page.keyboard.press("End")
    page.keyboard.press("ArrowRight")
    assert focused() == "x[1,2,2]"
    page.keyboard.press("ArrowUp")
    assert focused() == "x[1,1,2]"
    page.keyboard.press("Tab")
    assert focused() == "x[1,1,3]"


@pytest.mark.parametrize("width", [1280, 700])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_nothing_overlaps_or_is_clipped(page, tmp_path, width, theme):
    page.set_viewport_size({"width": width, "height": 800})
    page.add_init_script(f"localStorage.setItem('viz-theme', '{theme}')")
    page.open("conv")
    set_form(page, input="5x5", channels="2", kernel="3", padding="1")
    page.click('#modes button[data-mode="backward"]')
    wait_cells(page, "grad_y", 9)
    cell(page, "x[1,1,1]").fill("-12.75")
    page.wait_for_function("() => document.getElementById('command').textContent.includes('-12.75')")
    page.locator("#arrays").scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / f"arrays-{width}-{theme}.png"))
    boxes = page.locator("#arrays .cells input").evaluate_all(
        "l => l.map((i) => { const r = i.getBoundingClientRect(); "
        "return [r.left, r.top, r.right, r.bottom, i.scrollWidth <= i.clientWidth]; })")
    assert all(fits for *_, fits in boxes), "a cell's number is clipped"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    section = page.locator("#arrays").bounding_box()
    assert all(section["x"] <= a[0] and a[2] <= section["x"] + section["width"] for a in boxes)
    colours = page.evaluate("[getComputedStyle(document.querySelector('#arrays .cells input')).color, "
                            "getComputedStyle(document.querySelector('#arrays .cells input')).backgroundColor]")
    assert colours[0] != colours[1]
