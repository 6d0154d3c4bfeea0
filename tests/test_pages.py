"""Figures inside lecture notes, with the real tools: the viz fence, `mkdocs build --strict`,
`sphinx-build -W` (HTML and LaTeX), and a notebook executed by nbclient."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest

from viz.app.fence import FenceError, parse_fence, parse_header

BIN = Path(sys.executable).parent
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")

DIAGRAM = "diagram attention-rnn --view cell --k 2"
ANIMATION = "animate conv --input 5 --channels 1 --kernel 3 --stride 2"
SHAPE = "shape --input 21x12 --kernel 4x5 --stride 4"


# ---- the fence ---------------------------------------------------------------------------------------

def test_fence_body_is_the_command_line():
    req = parse_fence("viz " + DIAGRAM, {"format": "svg", "caption": "one step"})
    assert req.kind.key == "diagram attention-rnn" and req.values["view"] == "cell" and req.values["k"] == 2
    assert req.fmt == "svg" and req.caption == "one step"
    assert parse_fence(SHAPE).fmt == "md" and parse_fence(ANIMATION).fmt == "mp4"
    assert parse_fence("diagram gated-rnn --steps=3").values["steps"] == 3
    assert parse_header('format="svg" caption="a b"') == {"format": "svg", "caption": "a b"}


@pytest.mark.parametrize("body, options, message", [
    ("diagram gated-rnn --steps 0", {}, r"^--steps: must be an integer in 1\.\.64 \(got 0\)$"),
    ("diagram nope", {}, r"^unknown figure kind 'diagram nope'"),
    ("", {}, r"^the viz fence is empty"),
    ("diagram gated-rnn --colour red", {}, r"^--colour: no such option of diagram gated-rnn"),
    ("diagram gated-rnn -o x.svg", {}, r"^-o: the site decides"),
    ("diagram gated-rnn --steps", {}, r"^--steps: needs a value"),
    ("diagram gated-rnn", {"format": "mp4"}, r"^format=: diagram gated-rnn writes svg, png"),
    ("diagram gated-rnn", {"size": "3"}, r"^viz fence header: 'size'"),
    ("animate conv --input 5", {"step": "0"}, r"^step=: must be a step number"),
    ("diagram gated-rnn", {"width": "wide"}, r"^width=: must be like 600"),
    ("shape --input 3 --kernel 4 --stride 2", {}, r"^kernel too large on axis 1"),
])
def test_bad_fences_get_one_line(body, options, message):
    with pytest.raises(FenceError, match=message) as err:
        parse_fence(body, options)
    assert "\n" not in str(err.value)


# ---- MkDocs ------------------------------------------------------------------------------------------

def _mkdocs_site(root: Path, directory_urls: bool, body: str) -> subprocess.CompletedProcess:
    (root / "docs" / "notes").mkdir(parents=True)
    (root / "mkdocs.yml").write_text(f"site_name: notes\nuse_directory_urls: {str(directory_urls).lower()}\n"
                                     "plugins: [viz]\n")
    (root / "docs" / "index.md").write_text("# Home\n\nSee [the notes](notes/conv.md).\n")
    (root / "docs" / "notes" / "conv.md").write_text(body)
    return subprocess.run([str(BIN / "mkdocs"), "build", "--strict"], cwd=root, capture_output=True, text=True,
                          timeout=600)


NOTES = f"""# Convolution

```viz format="svg" caption="AttentionRNN(2), one step"
{DIAGRAM}
```

```viz caption="Three windows"
{ANIMATION}
```

```viz
{SHAPE}
```

```viz step="2" caption="The second window"
{ANIMATION}
```
"""


@needs_dot
@pytest.mark.render
@pytest.mark.parametrize("directory_urls", [True, False])
def test_mkdocs_strict_site_with_fences(tmp_path, monkeypatch, directory_urls):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = _mkdocs_site(tmp_path, directory_urls, NOTES)
    assert run.returncode == 0, run.stderr[-3000:]
    page = tmp_path / "site" / "notes" / ("conv/index.html" if directory_urls else "conv.html")
    html = page.read_text()
    page_url = "http://site/notes/conv/" if directory_urls else "http://site/notes/conv.html"
    # every URL the figures use resolves, relative to the page, to a file of the site
    figures = "".join(re.findall(r'<figure class="viz-figure">.*?</figure>', html, re.S))
    urls = re.findall(r'(?:src|poster)="([^"]+)"', figures)
    assert len(urls) >= 4, urls                          # svg, mp4, its poster, its captions track
    for url in urls:
        path = urljoin(page_url, url).removeprefix("http://site/")
        assert (tmp_path / "site" / path).is_file(), url
    img = re.search(r'<img src="[^"]+\.svg" alt="([^"]+)"', html)
    assert img and len(img.group(1)) > 20                 # alt text, not empty
    video = re.search(r"<video[^>]*>.*?</video>", html, re.S).group(0)
    assert 'poster="' in video and '<track kind="captions"' in video and 'aria-label="' in video
    assert "<figcaption>Three windows</figcaption>" in html
    assert "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5" in html      # the shape table, inline
    still = re.search(r'<img src="([^"]+\.svg)" alt="[^"]+"[^>]*><figcaption>The second window', html)
    assert still, "step=2 shows the still of step 2"


@pytest.mark.render
def test_mkdocs_strict_fails_on_a_bad_fence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = _mkdocs_site(tmp_path, True, "# Bad\n\n```viz\ndiagram gated-rnn --steps 0\n```\n")
    assert run.returncode != 0
    assert "--steps: must be an integer in 1..64 (got 0)" in run.stderr
    assert "Traceback" not in run.stderr


# ---- Sphinx ------------------------------------------------------------------------------------------

SPHINX_CONF = 'project = "notes"\nextensions = ["myst_parser", "viz.sphinx"]\nmyst_fence_as_directive = ["viz"]\n'
SPHINX_PAGE = f"""# Notes

```{{viz}}
:format: svg
:caption: AttentionRNN(2), one step

{DIAGRAM}
```

```{{viz}}
{SHAPE}
```

```{{viz}}
:step: 2
:caption: The second window

{ANIMATION}
```
"""


def _sphinx(root: Path, builder: str, page: str = SPHINX_PAGE) -> subprocess.CompletedProcess:
    (root / "conf.py").write_text(SPHINX_CONF)
    (root / "index.md").write_text(page)
    return subprocess.run([str(BIN / "sphinx-build"), "-W", "-q", "-b", builder, ".", f"_build/{builder}"],
                          cwd=root, capture_output=True, text=True, timeout=600)


@needs_dot
@pytest.mark.render
def test_sphinx_html_and_latex(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = _sphinx(tmp_path, "html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (tmp_path / "_build/html/index.html").read_text()
    src = re.search(r'<img src="([^"]+\.svg)" alt="([^"]+)"', html)
    assert src and (tmp_path / "_build/html" / src.group(1)).is_file() and len(src.group(2)) > 20
    assert "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5" in html
    run = _sphinx(tmp_path, "latex")
    assert run.returncode == 0, run.stderr[-3000:]
    tex = next((tmp_path / "_build/latex").glob("*.tex")).read_text()
    pdf = re.search(r"\\sphinxincludegraphics\[[^]]*\]\{([^}]+\.pdf)\}", tex)
    assert pdf and (tmp_path / "_build/latex" / pdf.group(1)).read_bytes().startswith(b"%PDF")
    assert "\\caption{AttentionRNN(2), one step}" in tex
    pdfs = re.findall(r"\\sphinxincludegraphics\[[^]]*\]\{([^}]+\.pdf)\}", tex)
    assert len(pdfs) == 2 and all((tmp_path / "_build/latex" / p).read_bytes().startswith(b"%PDF") for p in pdfs)
    assert "\\caption{The second window}" in tex        # the animation prints as a vector still of step 2


@pytest.mark.render
def test_sphinx_W_fails_on_a_bad_directive(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = _sphinx(tmp_path, "html", "# Bad\n\n```{viz}\ndiagram gated-rnn --steps 0\n```\n")
    assert run.returncode != 0 and "--steps: must be an integer in 1..64 (got 0)" in run.stderr


# ---- notebooks ---------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.render
def test_notebook_outputs_are_clean_and_accessible(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import viz\nviz.figure('diagram gated-rnn', view='cell')"),
                nbformat.v4.new_code_cell("viz.figure('animate conv', input=5, channels=1, kernel=3, stride=2)")]
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    diagram, animation = (cell.outputs for cell in nb.cells)
    for outputs in (diagram, animation):
        assert [o.output_type for o in outputs] == ["execute_result"], outputs   # no stream: no progress, no log
    data = diagram[0].data
    assert data["image/svg+xml"].lstrip().startswith(("<?xml", "<svg", "<!--"))
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    video = animation[0].data["text/html"]
    assert 'poster="data:image/png;base64,' in video and '<track kind="captions"' in video
    assert base64.b64decode(animation[0].data["image/png"]).startswith(b"\x89PNG")


# ---- Quarto / Pandoc: the Lua filter over `viz fence` ---------------------------------------------------

@needs_dot
@pytest.mark.render
def test_pandoc_lua_filter_renders_viz_blocks(tmp_path, monkeypatch):
    """Quarto runs Pandoc Lua filters; the same filter under plain Pandoc (Quarto itself downloads its
    binary at install, which this machine cannot)."""
    if shutil.which("pandoc") is None:
        pytest.skip("pandoc is not installed (apt-get install pandoc)")
    from importlib import resources

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{BIN}:{__import__('os').environ['PATH']}")
    lua = Path(str(resources.files("viz.app") / "quarto" / "viz.lua"))
    (tmp_path / "in.md").write_text(f'# Notes\n\n```{{.viz format="svg" caption="one step"}}\n{DIAGRAM}\n```\n')
    run = subprocess.run(["pandoc", "--lua-filter", str(lua), "-s", "--metadata", "title=n", "-o", "out.html",
                          "in.md"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "out.html").read_text()
    src = re.search(r'<figure class="viz-figure"><img src="(viz-figures/[^"]+\.svg)" alt="([^"]+)"', html)
    assert src and (tmp_path / src.group(1)).is_file()
    assert "<figcaption>one step</figcaption>" in html
    (tmp_path / "bad.md").write_text("```{.viz}\ndiagram gated-rnn --steps 0\n```\n")
    run = subprocess.run(["pandoc", "--lua-filter", str(lua), "-o", "bad.html", "bad.md"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "--steps: must be an integer in 1..64 (got 0)" in run.stderr
