"""Inline display in Jupyter: the MIME bundles of viz.app.notebook.Figure, its cache and save()."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from viz import conv
from viz.app import notebook, registry as figures

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="{n}0" height="10"><title>n={n}</title></svg>'


def fake_render(kind, values, out: Path, fmt: str) -> None:
    with open(os.environ["VIZ_FAKE_LOG"], "a") as log:
        log.write(f"{kind.key} {fmt}\n")
    if fmt == "svg":
        out.write_text(SVG.format(n=values["n"]))
    elif fmt == "png":
        out.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([values["n"]]))
    else:
        out.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes([values["n"]]))


def _kind(command: str, formats) -> figures.FigureKind:
    return figures.FigureKind(command=command, name="fake", summary="fake",
                              params=(figures.Param("n", "int", 3, "n", min=1, max=9),
                                      figures.Param("base_case", "choice", "zeros", "b", choices=("zeros", "mask"))),
                              formats=formats, render=f"{__name__}:fake_render")


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    for kind in (_kind("diagram", ("svg", "png")), _kind("animate", ("mp4", "png"))):
        monkeypatch.setitem(figures.KINDS, kind.key, kind)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    log = tmp_path / "renders.log"
    log.touch()
    monkeypatch.setenv("VIZ_FAKE_LOG", str(log))
    return lambda: log.read_text().splitlines()


def test_diagram_displays_as_svg_and_is_cached(fakes):
    fig = notebook.figure("diagram fake", n=4)
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/svg+xml", "image/png", "text/html"}
    assert bundle["image/svg+xml"] == SVG.format(n=4)
    # PNG beside the SVG for sanitized viewers (GitHub, nbviewer), as base64 like Jupyter stores it
    assert base64.b64decode(bundle["image/png"]) == b"\x89PNG\r\n\x1a\n\x04"
    assert bundle["text/html"].startswith('<figure class="viz-figure"><img src="data:image/svg+xml;base64,')
    assert 'alt="fake"' in bundle["text/html"]      # alt text: the kind's summary when it has no Story
    assert bundle["text/plain"] == "<viz.Figure: viz diagram fake --n 4>"
    notebook.figure("diagram fake", n=4)._repr_mimebundle_()
    assert sorted(fakes()) == ["diagram fake png", "diagram fake svg"]  # the second display: from the cache
    assert fig._repr_mimebundle_(include=["image/svg+xml"]).keys() == {"image/svg+xml"}
    assert "image/svg+xml" not in fig._repr_mimebundle_(exclude=["image/svg+xml"])


def test_animation_displays_as_html5_video(fakes):
    bundle = notebook.figure("animate fake", n=5)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png"}
    page = bundle["text/html"]
    assert '<video controls' in page and 'src="data:video/mp4;base64,' in page
    assert 'poster="data:image/png;base64,' in page and 'aria-label="fake"' in page
    data = base64.b64decode(page.split('src="data:video/mp4;base64,')[1].split('"')[0])
    assert data.endswith(b"ftypmp42\x05")


def test_parameters_are_validated_with_the_cli_message(fakes):
    with pytest.raises(figures.ParamError, match=r"^--n: must be an integer in 1\.\.9 \(got 12\)$"):
        notebook.figure("diagram fake", n=12)
    with pytest.raises(figures.ParamError, match="unknown parameter 'colour'"):
        notebook.figure("diagram fake", colour=1)
    # Python spelling and command-line spelling are both accepted
    assert notebook.figure("diagram fake", base_case="mask").values["base_case"] == "mask"
    assert notebook.figure("diagram fake", **{"base-case": "mask"}).values["base_case"] == "mask"


def test_save_writes_the_file(fakes, tmp_path):
    fig = notebook.figure("diagram fake", n=2)
    out = fig.save(tmp_path / "fig.svg")
    assert out.read_text() == SVG.format(n=2)
    with pytest.raises(figures.ParamError, match="cannot tell the format"):
        fig.save(tmp_path / "fig.jpeg")


def test_shape_displays_as_a_table():
    bundle = notebook.figure("shape", input="21x12", kernel="4x5", stride=4, in_channels=3,
                             filters=8)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "text/markdown"}
    page = bundle["text/html"]
    assert page.startswith("<table") and "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5" in page
    assert "weight 8×3×4×5" in page
    assert "-> out 5x2" in bundle["text/plain"]
    # and the reference's own geometry object shows the same table
    assert conv.conv_geometry((21, 12), (4, 5), 4)._repr_html_() in page


@pytest.mark.render
def test_real_diagram_svg(tmp_path, monkeypatch):
    pytest.importorskip("diagrams.figures", reason="diagram renderer not written yet")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    svg = notebook.figure("diagram gated-rnn", view="cell")._repr_mimebundle_()["image/svg+xml"]
    assert "<svg" in svg and "</svg>" in svg


@pytest.mark.render
def test_real_animation_is_an_inline_mp4(tmp_path, monkeypatch):
    import io

    av = pytest.importorskip("av")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    page = notebook.figure("animate conv", input=3, kernel=3, stride=1, channels=1)._repr_mimebundle_()["text/html"]
    data = base64.b64decode(page.split('src="data:video/mp4;base64,')[1].split('"')[0])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (854, 480)
        assert sum(1 for _ in container.decode(stream)) > 10
