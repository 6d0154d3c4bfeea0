"""Diagram files as readers get them: accessible, portable SVG (checked in Chromium against the PNG),
tight vector PDFs with embedded fonts, and the same bytes in every process and time zone.

SVG vs PNG: the SVG is rasterised by Chromium at the size of the 96-dpi PNG and compared pixel by
pixel. Thresholds: at most 0.8 % of pixels differ by more than 64 (of 255, any channel) from the PNG
even after a 1-pixel shift (antialiasing differs), and the mean absolute difference is at most 12
(a wrong theme or a missing part gives far more). Measured on FIGURES: 0.09-0.51 % and 2.9-9.4.
Graphviz's own SVG (text placed fragment by fragment, sub/superscripts as `baseline-shift`) fails
the same check: 1.18 % (gated cell) and 1.61 % (attention cell).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from diagrams import figures, files, render
from tests.test_diagrams import values

HAVE_DOT = shutil.which("dot") is not None
pytestmark = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` not installed")
SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
FAR, MAX_FAR, MAX_MEAN = 64, 0.008, 12.0
DPI = 96             # the comparison's PNG (one CSS pixel per pixel of a 96-dpi screen)

# every view in both themes, detailed and compact, both networks
FIGURES = [
    ("gated-rnn", dict(view="cell", annotate="values")),
    ("gated-rnn", dict(view="unrolled", steps=4, theme="dark")),
    ("gated-rnn", dict(view="backward", steps=4)),
    ("attention-rnn", dict(view="cell", k=2, theme="dark")),
    ("attention-rnn", dict(view="unrolled", steps=5, k=None)),
    ("attention-rnn", dict(view="backward", steps=12, k=2, theme="dark")),
]


def fig(kind, raw):
    return figures.figure(kind, values(kind, raw))


def rgb(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


# ---- accessible, portable SVG ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind,raw", FIGURES[:3] + FIGURES[4:5])
def test_svg_is_accessible_with_ids_of_its_own(kind, raw):
    f = fig(kind, raw)
    svg = render.svg_text(f.graph, f.story.params["theme"], story=f.story)
    assert svg == figures.diagram_svg(kind, values(kind, raw))              # byte-stable
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert (title.get("id"), title.text) == (title_id, f.story.alt)
    assert (desc.get("id"), desc.text) == (desc_id, f.story.description)
    assert "max-width:100%" in root.get("style") and "height:auto" in root.get("style")
    assert re.fullmatch(r"0 0 [\d.]+ [\d.]+", root.get("viewBox")) and root.get("width").endswith("pt")
    assert not list(root.iter(f"{SVG}text"))                                 # text is drawn as outlines
    prefix = files.figure_id(f.story, theme=f.story.params["theme"])
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) and all(i.startswith(prefix + "-") for i in ids)
    refs = re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', svg)
    assert refs and {a or b for a, b in refs} <= set(ids)                   # every reference resolves


def test_ids_differ_between_figures_and_are_stable():
    a, b = fig("gated-rnn", dict(view="cell")), fig("gated-rnn", dict(view="cell", steps=5))
    assert files.figure_id(a.story) != files.figure_id(b.story)
    assert files.figure_id(a.story) != files.figure_id(a.story, theme="dark")       # both on one page
    assert files.figure_id(a.story) == files.figure_id(fig("gated-rnn", dict(view="cell")).story)


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium not installed")
    return sync_api.sync_playwright()


def _screenshot(page, html_file: Path, width: int, height: int) -> np.ndarray:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(html_file.as_uri())
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    return rgb(page.screenshot(clip={"x": 0, "y": 0, "width": width, "height": height}))


def difference(shot: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(share of pixels off by more than FAR even after a 1-pixel shift, mean absolute difference)."""
    best = None
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            d = np.abs(np.roll(shot, (dy, dx), axis=(0, 1)) - ref).max(axis=-1)
            best = d if best is None else np.minimum(best, d)
    return float((best > FAR).mean()), float(np.abs(shot - ref).mean())


def _page(tmp: Path, name: str, svg: bytes, width: int, height: int) -> Path:
    (tmp / f"{name}.svg").write_bytes(svg)
    page = tmp / f"{name}.html"
    page.write_text(f'<html><body style="margin:0"><img src="{name}.svg" '
                    f'style="display:block;width:{width}px;height:{height}px"></body></html>')
    return page


def test_svg_in_chromium_is_the_png(tmp_path):
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            for i, (kind, raw) in enumerate(FIGURES):
                f = fig(kind, raw)
                theme = f.story.params["theme"]
                ref = rgb(render.render_bytes(f.graph, "png", theme, dpi=DPI))
                h, w = ref.shape[:2]
                svg = render.render_bytes(f.graph, "svg", theme, story=f.story)
                far, mean = difference(_screenshot(page, _page(tmp_path, f"f{i}", svg, w, h), w, h), ref)
                assert far <= MAX_FAR and mean <= MAX_MEAN, (kind, raw, far, mean)
            # the check can fail: Graphviz's own SVG of the same layout is not the PNG in Chromium
            f = fig("gated-rnn", dict(view="cell", annotate="values"))
            ref = rgb(render.render_bytes(f.graph, "png", dpi=DPI))
            h, w = ref.shape[:2]
            native = render._run(render.dot_source(f.graph), "dot").decode()     # layout only
            native_svg = subprocess.run(["dot", "-Tsvg"], input=native.encode(), capture_output=True,
                                        check=True).stdout
            far, mean = difference(_screenshot(page, _page(tmp_path, "native", native_svg, w, h), w, h), ref)
            assert far > MAX_FAR, far
        finally:
            browser.close()


def test_inline_svgs_share_a_page_and_shrink_to_it(tmp_path):
    # two figures inline in one page (a notebook's HTML export): no id is repeated, and a figure
    # wider than its column shrinks to it with its aspect ratio instead of being clipped
    svgs = [figures.diagram_svg(k, values(k, r)) for k, r in (FIGURES[2], FIGURES[5])]
    page_file = tmp_path / "inline.html"
    page_file.write_text('<html><body style="margin:0"><div style="width:400px">'
                         + "".join(re.sub(r"^<\?xml[^>]*>\s*", "", s) for s in svgs) + "</div></body></html>",
                         encoding="utf-8")
    with _browser() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            ids = page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)")
            boxes = page.evaluate("[...document.querySelectorAll('body > div > svg')].map(s => {"
                                  "const r = s.getBoundingClientRect(); const v = s.viewBox.baseVal;"
                                  "return [r.width, r.height, v.width, v.height]; })")
        finally:
            browser.close()
    assert len(ids) == len(set(ids)) and len(ids) > 20
    assert len(boxes) == 2
    for w, h, vw, vh in boxes:
        assert vw * 4 / 3 > 400 and w == pytest.approx(400, abs=0.5)          # wider than the column
        assert h / w == pytest.approx(vh / vw, rel=0.01)


# ---- tight, vector PDF with embedded fonts ------------------------------------------------------------------

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdffonts") is None,
                                   reason="poppler-utils (pdftoppm, pdffonts) not installed")
PDF_MARGIN = 2.0     # points, at most, between the page edge and the drawing


@needs_poppler
@pytest.mark.parametrize("kind,raw", [FIGURES[i] for i in (0, 1, 2, 5)])     # each view, both themes
def test_pdf_is_tight_vector_with_embedded_fonts(kind, raw, tmp_path):
    f = fig(kind, raw)
    out = figures.render_figure(f, tmp_path / "fig.pdf", "pdf", theme=f.story.params["theme"])
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    rows = fonts.splitlines()[2:]
    assert rows and all(r.split()[-5] == "yes" for r in rows), fonts              # "emb" column
    images = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, text=True).stdout
    assert len(images.splitlines()) <= 2, images                                   # no raster image
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True)
    assert "Pages:           1" in info.stdout and not info.stderr                 # xref still valid
    assert f"Title:           {f.story.alt}\n" in info.stdout                       # the alt text
    dpi = 144
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(out), str(tmp_path / "page")],
                   check=True, capture_output=True)
    page = rgb((tmp_path / "page.png").read_bytes())
    bg = np.array([int(c, 16) for c in re.findall("..", "FFFFFF" if f.story.params["theme"] == "light"
                                                        else "16181D")])
    ys, xs = np.nonzero(np.abs(page - bg).max(axis=-1) > 24)
    h, w = page.shape[:2]
    margins = np.array([xs.min(), w - 1 - xs.max(), ys.min(), h - 1 - ys.max()]) * 72 / dpi
    assert margins.max() <= PDF_MARGIN, margins
    # the same drawing as the PNG (whose layout is made at its dpi: positions round differently)
    png = rgb(render.render_bytes(f.graph, "png", f.story.params["theme"], dpi=dpi))
    pys, pxs = np.nonzero(np.abs(png - bg).max(axis=-1) > 24)
    ink = np.array([pxs.max() - pxs.min(), pys.max() - pys.min()]) * 72 / dpi
    assert np.allclose(ink, np.array([xs.max() - xs.min(), ys.max() - ys.min()]) * 72 / dpi, atol=2.0)


def _tiny_pdf() -> bytes:
    body = b"%PDF-1.5\n1 0 obj\n<< /Type /Page /MediaBox [ 0 0 100 50 ] >>\nendobj\n"
    second = len(body)
    body += b"2 0 obj\n<< >>\nendobj\n"
    xref = len(body)
    return body + (b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n%010d 00000 n \ntrailer\n"
                   b"<< /Size 3 >>\nstartxref\n%d\n%%%%EOF\n" % (second, xref))


def test_crop_keeps_the_cross_reference_table_right():
    raw = _tiny_pdf()
    assert raw.index(b"2 0 obj") == int(re.search(rb"(\d{10}) 00000 n \ntrailer", raw).group(1))
    out = files.crop_pdf(raw, (10, 5, 90, 45), pad=1)       # ink from the top-left, in points
    assert b"/MediaBox [ 9.00 4.00 91.00 46.00 ]" in out
    assert out.index(b"2 0 obj") == int(re.search(rb"(\d{10}) 00000 n \ntrailer", out).group(1))
    assert out.index(b"1 0 obj") == 9
    assert out.index(b"xref") == int(re.search(rb"startxref\n(\d+)", out).group(1))
    assert b"[ 0.00 0.00 100.00 50.00 ]" in files.crop_pdf(raw, (-5, -5, 200, 200), pad=1)   # never grows


# ---- the same bytes in every process and time zone ----------------------------------------------------------

def test_every_format_is_byte_identical_across_processes_and_time_zones(tmp_path):
    raw = dict(view="backward", steps=4)
    here = {fmt: render.render_bytes(fig("gated-rnn", raw).graph, fmt, story=fig("gated-rnn", raw).story)
            for fmt in render.FORMATS}
    code = ("import json, sys; from diagrams import figures; from tests.test_diagrams import values\n"
            "v = values('gated-rnn', json.loads(sys.argv[1]))\n"
            "for fmt in ('svg', 'png', 'pdf', 'dot'):\n"
            "    figures.render_diagram('gated-rnn', v, sys.argv[2] + '.' + fmt, fmt)\n")
    root = Path(__file__).resolve().parents[1]
    for tz in ("Asia/Kolkata",):               # issue 15: differed from UTC
        base = tmp_path / tz.replace("/", "_")
        subprocess.run([sys.executable, "-c", code, json.dumps(raw), str(base)], check=True, cwd=root,
                       env={**os.environ, "TZ": tz, "PYTHONPATH": str(root)})
        for fmt, data in here.items():
            assert Path(f"{base}.{fmt}").read_bytes() == data, (tz, fmt)
