"""The Sphinx extension `viz.sphinx`: a `viz` directive (and so MyST's ```` ```{viz} ```` fence).

    extensions = ["viz.sphinx"]            # conf.py (with "myst_parser" for Markdown sources)

    .. viz::
       :format: svg
       :caption: AttentionRNN(2), one step

       diagram attention-rnn --view cell --k 2

The content is the command line as typed in a terminal; the options are the fence's header options
(format, caption, alt, theme, width, step). HTML gets the figure (video with poster and captions
track, alt text from the Story); the LaTeX builder gets a still: the diagram's PDF, or a frame of the
animation. A bad command is a warning (so `sphinx-build -W` fails) and its one-line message is shown.
"""
from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from viz import __version__
from viz.app import embed, registry
from viz.app.fence import HEADER_OPTIONS, FenceError, FigureRequest, parse_fence
from viz.io import MissingProgram, copy_atomic

log = logging.getLogger(__name__)


class viz_figure(nodes.General, nodes.Element):
    """A figure of the registry; its files are rendered when a builder writes the page."""


class VizDirective(SphinxDirective):
    has_content = True
    option_spec = {name: directives.unchanged for name in HEADER_OPTIONS}

    def run(self):
        try:
            request = parse_fence("\n".join(self.content), dict(self.options))
        except FenceError as err:
            message = " ".join(str(err).split())
            log.warning(f"viz: {message}", location=self.get_location())
            return [nodes.error("", nodes.paragraph(text=f"viz: error: {message}"))]
        node = viz_figure()
        # plain data only: Sphinx pickles doctrees between reading and writing
        node["viz"] = {"key": request.kind.key, "values": request.values, "fmt": request.fmt,
                       "caption": request.caption, "alt": request.alt, "width": request.width,
                       "step": request.step}
        return [node]


def _request(node) -> FigureRequest:
    data = dict(node["viz"])
    return FigureRequest(registry.get(data.pop("key")), **data)


def _failed(self, node, err) -> None:
    """A figure that could not be rendered: a warning (fails -W) and the one-line message in the page."""
    message = " ".join(str(err).split())
    log.warning(f"viz: {message}", location=node)
    raise nodes.SkipNode


RENDER_ERRORS = (ValueError, MissingProgram, OSError)


def visit_html(self, node):
    try:
        _visit_html(self, node)
    except RENDER_ERRORS as err:
        self.body.append(embed.error_html(" ".join(str(err).split())))
        _failed(self, node, err)


def visit_latex(self, node):
    try:
        _visit_latex(self, node)
    except RENDER_ERRORS as err:
        _failed(self, node, err)


def _visit_html(self, node):
    request = _request(node)
    kind, values = request.kind, request.values
    if kind.writes_text:
        from viz.app.shape_report import shape_html

        self.body.append(f'<figure class="viz-figure viz-shape">{shape_html(values)}</figure>')
        raise nodes.SkipNode
    urls = {}
    for fmt, source in embed.request_files(request).items():       # rendered once, cached
        copy_atomic(source, Path(self.builder.outdir) / self.builder.imagedir / source.name)
        urls[fmt] = f"{self.builder.imgpath}/{source.name}"
    self.body.append(embed.figure_html(kind, values, embed.shown_format(request), urls,
                                       caption=request.caption, alt=request.alt, width=request.width))
    raise nodes.SkipNode


def _visit_latex(self, node):
    request = _request(node)
    kind, values = request.kind, request.values
    fmt = embed.still_format(kind)
    if kind.writes_text or fmt is None:     # a shape report: its table as verbatim text
        from viz.app.shape_report import report

        self.body.append("\n\\begin{sphinxVerbatim}\n" + report(values, "txt") + "\n\\end{sphinxVerbatim}\n")
        raise nodes.SkipNode
    if kind.is_video:                       # print gets a vector still of one step (step=, else the first)
        source = embed.cached_step(kind, values, request.step or 1, "pdf")
    else:
        source = embed.cached(kind, values, fmt)
    copy_atomic(source, Path(self.builder.outdir) / source.name)
    caption = self.encode(request.caption) if request.caption else ""
    self.body.append("\n\\begin{figure}[htbp]\n\\centering\n"
                     f"\\sphinxincludegraphics[width=\\linewidth,keepaspectratio]{{{source.name}}}\n"
                     + (f"\\caption{{{caption}}}\n" if caption else "") + "\\end{figure}\n")
    raise nodes.SkipNode


def visit_text(self, node):
    self.add_text(f"[figure: {_request(node).command}]")
    raise nodes.SkipNode


def setup(app):
    app.add_node(viz_figure, html=(visit_html, None), latex=(visit_latex, None), text=(visit_text, None),
                 man=(visit_text, None), texinfo=(visit_text, None))
    app.add_directive("viz", VizDirective)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": False}
