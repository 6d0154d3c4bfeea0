"""What Graphviz writes, made fit to publish: accessible, portable SVG and tight, dated-once PDF.

    portable_svg(data, title, desc, prefix)  Cairo's SVG: role="img" with <title>/<desc>, every id
                                             prefixed (several figures on one page), max-width: 100%
    figure_id(story)                         the prefix: a hash of the figure's parameters
    clean_pdf(data)                          Cairo's creation date replaced by a fixed one
    ink_box(png, background, scale)          where a PNG of the drawing is not background
    crop_pdf(data, ink, pad)                 the page shrunk to that ink plus `pad` points
    titled_pdf(data, title)                  the figure's alt text as the document's Title

Plain byte and array work (NumPy and Pillow, which matplotlib brings); no Graphviz here.
"""
from __future__ import annotations

import hashlib
import html
import json
import re

PDF_PAD = 0.75          # points of background kept around a PDF's ink (LaTeX needs no trim)
INK_LEVEL = 8           # a channel this far from the background is ink (antialiasing fringes included)


_SVG_ROOT = re.compile(rb'<svg ([^>]*?)width="([\d.]+)pt" height="([\d.]+)pt" ([^>]*)>')
_ID_USE = re.compile(rb'(\bid="|\bhref="#|url\(#)([A-Za-z][\w.-]*)')
_LONG_NUMBER = re.compile(rb"-?\d+\.\d{3,}")


def figure_id(story=None, graph=None, theme: str = "light") -> str:
    """A stable id prefix for one figure: a hash of its parameters and theme (of the graph without a
    Story)."""
    what = story.params if story is not None else [graph.name, graph.title]
    key = json.dumps([what, theme], sort_keys=True)
    return "v" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def portable_svg(data: bytes, title: str, desc: str, prefix: str) -> bytes:
    """Cairo's SVG with every id (and reference to one) prefixed, `role="img"` labelled by a <title>
    and a <desc>, and a width that shrinks to its container (`max-width: 100%`, height from the
    viewBox) but never grows past the figure's own size. Coordinates keep 2 decimals (1/100 pt):
    Cairo writes 6, which makes glyph outlines three times larger than they need to be."""
    data = _LONG_NUMBER.sub(_two_decimals, data)       # Cairo's SVG holds no text, only geometry
    data = _ID_USE.sub(lambda m: m.group(1) + prefix.encode() + b"-" + m.group(2), data)
    root = _SVG_ROOT.search(data)
    if not root:
        raise ValueError("not a Cairo SVG")
    pre, w, h, post = root.groups()
    t, d = f"{prefix}-title", f"{prefix}-desc"
    head = (b"<svg " + pre + b'width="' + w + b'pt" height="' + h + b'pt" ' + post
            + f' role="img" aria-labelledby="{t} {d}" style="max-width:100%;height:auto">'.encode()
            + f'\n<title id="{t}">{html.escape(title)}</title>\n<desc id="{d}">{html.escape(desc)}</desc>'
            .encode("utf-8"))
    return data[:root.start()] + head + data[root.end():]


def _two_decimals(m: re.Match) -> bytes:
    text = f"{float(m.group(0)):.2f}".rstrip("0").rstrip(".")
    return (text if text != "-0" else "0").encode()


_PDF_DATE = re.compile(rb"/CreationDate \(D:\d{14}[^)]*\)")


def clean_pdf(data: bytes) -> bytes:
    """Cairo stamps the PDF with the time it was written: replace it by a fixed date of the same length
    (the cross-reference table counts bytes), so the same figure gives the same bytes."""
    fixed = b"/CreationDate (D:20000101000000)"          # as short as a match can be: pad with spaces
    return _PDF_DATE.sub(lambda m: fixed.ljust(len(m.group(0))), data)


_MEDIABOX = re.compile(rb"/MediaBox \[ ([\d. -]+) \]")


def ink_box(png: bytes, background: str, scale: float) -> tuple[float, float, float, float]:
    """(x0, top, x1, bottom) in points from the top-left of the page: what is not background."""
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGBA")
    flat = Image.new("RGBA", image.size, background)      # partly covered edge pixels count as background
    flat.alpha_composite(image)
    pixels = np.asarray(flat.convert("RGB"), dtype=np.int16)
    bg = np.array([int(background[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    ys, xs = np.nonzero(np.abs(pixels - bg).max(axis=-1) > INK_LEVEL)
    return xs.min() / scale, ys.min() / scale, (xs.max() + 1) / scale, (ys.max() + 1) / scale


def crop_pdf(data: bytes, ink: tuple[float, float, float, float], pad: float = PDF_PAD) -> bytes:
    """The page's MediaBox shrunk to `ink` (points from the top-left) plus `pad` points, and the
    cross-reference table moved by the bytes that changed (Cairo writes one page, one MediaBox)."""
    box = _MEDIABOX.search(data)
    if not box:
        raise ValueError("no MediaBox in the PDF")
    x0, y0, x1, y1 = (float(v) for v in box.group(1).split())
    left, top, right, bottom = ink
    new = (max(x0, left - pad), max(y0, y1 - bottom - pad), min(x1, right + pad), min(y1, y1 - top + pad))
    text = b"/MediaBox [ " + " ".join(f"{v:.2f}" for v in new).encode() + b" ]"
    return _splice(data, box.start(), box.end(), text)


def titled_pdf(data: bytes, title: str) -> bytes:
    """The document's Title (the figure's alt text, shown by PDF readers and screen readers) in the
    information dictionary Cairo writes, as a UTF-16 string."""
    at = data.index(b"/Producer (")
    hex_title = ("FEFF" + title.encode("utf-16-be").hex().upper()).encode()
    return _splice(data, at, at, b"/Title <" + hex_title + b">\n   ")


def _splice(data: bytes, start: int, end: int, new: bytes) -> bytes:
    """data[start:end] replaced by `new`, with the cross-reference table's offsets of every object
    after `start` and the startxref moved by the change in length (a classic xref table, as Cairo's)."""
    shift = len(new) - (end - start)
    data = data[:start] + new + data[end:]

    def moved(m: re.Match) -> bytes:
        offset = int(m.group(1))
        return b"%010d" % (offset + shift if offset > start else offset) + m.group(2)

    xref = data.rindex(b"\nxref\n") + 1
    table_end = data.index(b"trailer", xref)
    table = re.sub(rb"(\d{10})( \d{5} n)", moved, data[xref:table_end])
    tail = re.sub(rb"startxref\n(\d+)", lambda m: b"startxref\n%d" % (int(m.group(1)) + shift),
                  data[table_end:])
    return data[:xref] + table + tail
