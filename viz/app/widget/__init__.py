"""The explorer as a Jupyter widget (`pip install viz[widget]`): the page's views in a notebook cell,
talking to the Python reference directly (no server), in JupyterLab, Notebook 7, VS Code and marimo
(anywidget's ESM).

    from viz.app.widget import ExplorerWidget
    ExplorerWidget("conv", mode="backward", input="6x5", stride=2)

The model (synced traits) is the figure, its mode, theme and parameters as the command line spells them;
every change is answered by `viz.app.serve.answers.render_answer`, exactly what `viz serve` answers:
`answer` (the Story as JSON, or a diagram SVG) or `error` (the command line's one-line message, the
last good figure kept). A front end may also ask by message: {"type": "render", "id", "figure", "mode",
"params", "theme"} is answered with {"type": "answer", "id", "answer" | "error", "param"}.
"""
from __future__ import annotations

import re
from importlib import resources

import anywidget
import traitlets

from viz.app.serve import answers

_STATIC = ("views.js", "bptt.js")


def _text(package: str, name: str) -> str:
    return (resources.files(package) / name).read_text(encoding="utf-8")


def bundle() -> str:
    """The widget's ES module: the page's views (views.js, bptt.js), then the widget (widget.js)."""
    return "\n".join([*(_text("viz.app", f"static/{n}") for n in _STATIC), _text("viz.app.widget", "widget.js")])


def stylesheet() -> str:
    """views.css scoped to the widget (no rule leaks into the notebook), with the page's colours."""
    rules = []
    for block in _text("viz.app", "static/views.css").split("}"):
        if "{" not in block:
            continue
        selectors, body = block.split("{", 1)
        selectors = re.sub(r"/\*.*?\*/", "", selectors, flags=re.S).strip()
        scoped = ", ".join(f".viz-widget {s.strip()}".replace(".viz-widget [data-theme", ".viz-widget[data-theme")
                           for s in selectors.split(","))
        rules.append(f"{scoped} {{{body}}}")
    return _text("viz.app.widget", "widget.css") + "\n".join(rules) + "\n"


class ExplorerWidget(anywidget.AnyWidget):
    _esm = traitlets.Unicode(bundle()).tag(sync=True)
    _css = traitlets.Unicode(stylesheet()).tag(sync=True)

    spec = traitlets.Dict().tag(sync=True)              # the figures and their parameters (/api/explorer)
    figure = traitlets.Unicode("conv").tag(sync=True)
    mode = traitlets.Unicode("").tag(sync=True)         # "": the figure's first mode
    theme = traitlets.Unicode("light").tag(sync=True)
    params = traitlets.Dict().tag(sync=True)            # as on the command line: {"stride": "2"}
    answer = traitlets.Dict().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    error_param = traitlets.Unicode("").tag(sync=True)

    def __init__(self, figure: str = "conv", mode: str = "", theme: str = "light", **params):
        self._resetting = True              # no answers while the traits are first set
        super().__init__(spec=answers.explorer_json(), figure=figure, mode=mode, theme=theme,
                         params={k: _plain(v) for k, v in params.items()})
        self._resetting = False
        self.on_msg(self._on_message)
        self._answer()

    @traitlets.observe("figure", "mode", "theme", "params")
    def _changed(self, change) -> None:
        if getattr(self, "_resetting", False):
            return
        if change["name"] == "figure":      # another figure: its first mode, its default parameters
            self._resetting = True
            try:
                self.mode, self.params = "", {}
            finally:
                self._resetting = False
        self._answer()

    def _answer(self) -> None:
        try:
            self.answer = answers.render_answer(self.figure, dict(self.params), self.theme, self.mode or None)
            self.error, self.error_param = "", ""
        except answers.BadRequest as err:
            self.error, self.error_param = str(err), err.param or ""

    def _on_message(self, widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("type") != "render":
            return
        reply = {"type": "answer", "id": content.get("id")}
        try:
            reply["answer"] = answers.render_answer(content.get("figure"), content.get("params", {}),
                                                    content.get("theme", "light"), content.get("mode"))
        except answers.BadRequest as err:
            reply.update(error=str(err), param=err.param)
        self.send(reply)


def _plain(value):
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)
