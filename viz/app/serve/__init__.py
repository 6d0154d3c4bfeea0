"""`viz serve`: the interactive explorer, a local page over the same registry and Stories as the CLI.

    viz serve [--port 8000]        ->  http://127.0.0.1:8000/

`answers` says what to answer (pure functions of the parameters: the registry's validation, the
kind's Story as JSON, the diagram SVG); `http` is the server (127.0.0.1 only, same-origin only);
`limits` bounds its threads, time and memory; `user_arrays` reads and bounds the user's own arrays.
The page (viz/app/static/) is plain HTML and JavaScript with no build step and no network access; it
draws the Story and computes nothing.
"""
from viz.app.serve.answers import (FIGURES, THEMES, BadRequest, ExplorerFigure, Mode, arrays_answer,
                                   bptt_diagram, explorer_json, render_answer, unused_params)
from viz.app.serve.http import ExplorerServer, Handler, make_server, run, static_files
from viz.app.serve import limits  # noqa: F401  (serve.limits.HEAD_TIMEOUT, ...)

__all__ = ["FIGURES", "THEMES", "BadRequest", "ExplorerFigure", "Mode", "arrays_answer", "bptt_diagram",
           "explorer_json", "render_answer", "unused_params", "ExplorerServer", "Handler", "make_server", "run", "static_files"]
