"""`viz serve`: the interactive explorer, a local page over the same registry as the command line.

    viz serve [--port 8000]        ->  http://127.0.0.1:8000/

The server binds 127.0.0.1 only and speaks a small JSON API; the page (viz/static/) is plain HTML and
JavaScript with no build step and no network access. The page never computes: every number, index
and message comes from here, and here from the registry and the reference.

    GET  /api/explorer              the figures the page offers, each with the registry's parameters
    POST /api/render                {"figure": "conv", "params": {"stride": "2", ...}}
    GET  /api/render?figure=conv&stride=2&...   (the same, for curl)
        200 {"figure", "kind", "params", "command", "formula": [...], "svg" | "conv": {...}}
        400 {"error": "--stride: must be an integer in 1..16 (got 0)", "param": "stride"}
            the one-line message of the command line, from the registry's validation

Figures: convolution (`animate conv`'s parameters: geometry, channels, example data; the answer holds
the shape formula with numbers and, for a step-through, every window from `viz.conv.windows` with the
output values of `viz.conv.conv`), the gated RNN and AttentionRNN(k/∞) (`diagram ...`: the SVG of
`diagrams.figures.diagram_svg`), and BPTT (`animate bptt`'s parameters, shown as the backward diagram:
videos are too slow for live updates).

Robustness: only the whitelisted files of viz/static are served (exact path match, so no traversal);
request bodies over 64 KiB get 413; bad JSON, unknown figures and bad values get 400 with a message;
an unexpected error gets 500 and the server keeps serving. Requests whose Host is not this machine
are refused (a web page elsewhere cannot reach the API through DNS rebinding).
"""
from __future__ import annotations

import collections
import errno
import json
import re
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from viz import __version__
from viz.app import registry as figures

MAX_BODY = 64 * 1024
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".ico": "image/x-icon"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
LOCAL_HOSTS = ("127.0.0.1", "localhost")
MAX_TERMS_INLINE = 9    # a window with more taps shows "Σ of N products" instead of every product


# ---------------------------------------------------------------------------------------------------
# The figures the explorer offers (each one a registry kind; the form is generated from its params)


@dataclass(frozen=True)
class ExplorerFigure:
    id: str
    label: str
    kind: str                           # registry key whose parameters the form shows
    mode: str                           # "conv" | "diagram" | "bptt": what the answer holds
    hidden: tuple[str, ...] = ()        # registry parameters the page does not show
    note: str = ""

    def to_json(self) -> dict:
        kind = figures.get(self.kind)
        return {"id": self.id, "label": self.label, "kind": kind.key, "mode": self.mode,
                "summary": kind.summary, "note": self.note,
                "params": [p.to_json() for p in kind.params if p.name not in self.hidden]}


FIGURES = {f.id: f for f in (
    ExplorerFigure("conv", "Convolution", "animate conv", "conv", hidden=("quality",),
                   note="Step through the windows: each output reads the input cells under the kernel."),
    ExplorerFigure("gated", "Gated RNN", "diagram gated-rnn", "diagram", hidden=("theme",)),
    ExplorerFigure("attention", "AttentionRNN(k/∞)", "diagram attention-rnn", "diagram", hidden=("theme",)),
    ExplorerFigure("bptt", "BPTT", "animate bptt", "bptt", hidden=("quality",),
                   note="The backward pass as a diagram with the gradient norms; `viz animate bptt` "
                        "renders it as a video."),
)}
THEMES = ("light", "dark")


class BadRequest(Exception):
    """A request the client got wrong: HTTP 400 with a one-line message (and the parameter, if any)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.status = status


def explorer_json() -> dict:
    return {"version": __version__, "themes": list(THEMES),
            "figures": [f.to_json() for f in FIGURES.values()]}


# ---------------------------------------------------------------------------------------------------
# Answers (pure functions of the validated parameters; the HTTP layer only moves JSON)


def _sizes(seq) -> str:
    return "×".join(str(v) for v in seq)


def conv_payload(values: dict) -> dict:
    """Everything the page draws for a convolution, computed by the reference.

    The padded input grid with the example data of the animation (`scenes.common.example_data`), the
    kernel, the output `viz.conv.conv` computes, and for every output position (row-major) the taps
    of `viz.conv.windows` in padded-grid coordinates with their padding flags and a sum written out.
    """
    import numpy as np

    from viz.runs import example_data
    from viz.text import fmt_factor, fmt_value
    from viz import conv

    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    channels, integer = values["channels"], values["values"] == "int"
    data = example_data(g.in_shape, channels, g.kernel, g.out_shape, values["seed"], values["values"])
    x, w = data["x"], data["w"]
    args = dict(stride=g.stride, padding=g.padding, dilation=g.dilation)
    y = conv.conv(x, w, **args)[0]
    per_channel = conv.conv(x, w.reshape(channels, 1, *g.kernel), groups=channels, **args)
    win = conv.windows(g.in_shape, g.kernel, **args)
    xp = conv.pad(x, g.padding)
    pad_mask = conv.pad(np.ones(g.in_shape), g.padding) == 0
    lo = np.array([p[0] for p in g.padding])
    label = lambda v: fmt_value(v, integer)  # noqa: E731
    # labels of every drawn number, once (formatting is most of the cost of a big step-through)
    x_factor = [[fmt_factor(v, integer) for v in xp[c].ravel()] for c in range(channels)]
    w_factor = [[fmt_factor(v, integer) for v in w[0, c].ravel()] for c in range(channels)]
    sum_label = [[label(v) for v in per_channel[c].ravel()] for c in range(channels)]
    y_label = [label(v) for v in y.ravel()]
    flat_taps = np.ravel_multi_index(tuple((win.indices + lo).reshape(-1, g.ndim).T),
                                     xp.shape[1:], mode="clip").reshape(len(y_label), -1)
    n_taps = flat_taps.shape[1]
    steps = []
    for s_, o in enumerate(np.ndindex(*g.out_shape)):
        taps = win.indices[o].reshape(-1, g.ndim) + lo             # coordinates in the padded grid
        pads = win.is_padding[o].ravel()
        sums = []
        for c in range(channels):
            head = f"c{c + 1}: " if channels > 1 else ""
            if n_taps <= MAX_TERMS_INLINE:
                terms = " + ".join(f"{w_factor[c][j]}·{x_factor[c][t]}" for j, t in enumerate(flat_taps[s_]))
            else:   # like the animation: a long sum is named, not written out
                terms = f"Σ of {n_taps} products w·x"
            sums.append(f"{head}{terms} = {sum_label[c][s_]}")
        steps.append({
            "out": [int(v) for v in o],
            "taps": taps.tolist(),
            "padding": pads.tolist(),
            "y": y_label[s_],
            "sums": sums,
            "reads": ", ".join("(" + ",".join(str(int(v) + 1) for v in r) + ")" if g.ndim > 1
                               else str(int(r[0]) + 1) for r in win.reads(o)),
        })
    never = [[int(v) + int(l) for v, l in zip(idx, lo)] for idx in win.never_read]
    return {
        "ndim": g.ndim, "channels": channels,
        "in_shape": list(g.in_shape), "out_shape": list(g.out_shape), "kernel": list(g.kernel),
        "padded_shape": list(xp.shape[1:]),
        "padding": [list(p) for p in g.padding],
        "x": [[label(v) for v in row.ravel()] for row in xp],          # per channel, row-major
        "pad_mask": [bool(v) for v in pad_mask.ravel()],
        "w": [[label(v) for v in w[0, c].ravel()] for c in range(channels)],
        "y": y_label,
        "never_read": never,                                             # padded-grid coordinates
        "read_count": [int(v) for v in win.read_count.ravel()],
        "steps": steps,
    }


def conv_formula(values: dict) -> list[str]:
    """Output shape first, then the formula per axis with the numbers (`ConvGeometry.formula`)."""
    from viz import conv

    g = conv.conv_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                           values["dilation"])
    c = values["channels"]
    lines = [f"output {_sizes(g.out_shape)}   (input {c}×{_sizes(g.in_shape)}, one filter w "
             f"1×{c}×{_sizes(g.kernel)} → output 1×{_sizes(g.out_shape)})",
             "o = floor((i + p_lo + p_hi − d·(k−1) − 1) / s) + 1" + ("   per axis" if g.ndim > 1 else "")]
    for a in range(g.ndim):
        name = "" if g.ndim == 1 else f"axis {a + 1}: "
        unread = g.unread(a)
        note = f"   never read: {', '.join(str(m + 1) for m in unread)}" if unread else ""
        lines.append(f"{name}{g.formula(a)}{note}")
    return lines


def rnn_formula(key: str, values: dict) -> list[str]:
    """The equations and every shape, with the numbers, from the reference's own objects."""
    if key == "diagram gated-rnn":
        from viz.rnn import GatedRNN

        net = GatedRNN(values["n"], values["m"], seed=values["seed"])
        shape = lambda a: "×".join(map(str, a.shape))  # noqa: E731
        return [f"x[t] ∈ ℝ^{net.n},  h[t], c[t] ∈ ℝ^{net.m};  W_c {shape(net.W_c)}, W_x {shape(net.W_x)} "
                f"(m×n),  W_h {shape(net.W_h)} (m×m);  T = {values['steps']}, h[0] = 0",
                "c[t] = σ(W_c x[t] + W_h h[t−1]),   h[t] = c[t] ⊙ h[t−1] + (1 − c[t]) ⊙ W_x x[t]"]
    from viz.attention import AttentionRNN, step_lags

    net = AttentionRNN(values["n"], values["k"], seed=values["seed"], base_case=values["base_case"])
    T, k = values["steps"], values["k"]
    sizes = [len(step_lags(k, net.base_case, t)) for t in range(1, T + 1)]
    a = (f"a[t] ∈ ℝ^{sizes[0]}" if len(set(sizes)) == 1 else
         f"a[1] ∈ ℝ^{sizes[0]} … a[{T}] ∈ ℝ^{sizes[-1]}")
    span = "∞" if k is None else str(k)
    return [f"AttentionRNN({span}):  x[t], h[t] ∈ ℝ^{net.n};  Q, K, V each {'×'.join(map(str, net.param_shape))}"
            f";  {a};  T = {T}, base case {net.base_case}",
            "h[t] = Σ_i a_i[t] v_i,   a[t] = softmax(w_0 … w_k),   w_i = q_iᵀ k_i,   "
            "q_i, k_i, v_i = Q_i h[t−i], K_i h[t−i], V_i h[t−i]  (i = 0: x[t])"]


def diagram_svg(key: str, values: dict) -> str:
    from diagrams.figures import diagram_svg as draw

    return draw(figures.get(key).name, dict(values))


def bptt_diagram(values: dict, theme: str) -> tuple[str, dict]:
    """The backward diagram that shows what `animate bptt` animates: (kind key, its parameters).

    Every parameter the two kinds share (steps, k, n, m, preset, seed, and any added later) is passed
    on; the diagram's own validation applies."""
    key = "diagram gated-rnn" if values["model"] == "gated" else "diagram attention-rnn"
    target = figures.get(key)
    raw = {p.name: values[p.name] for p in target.params if p.name in values}
    raw.update(view="backward", annotate="values", theme=theme)
    return key, target.validate(raw)


def _formatted(kind: figures.FigureKind, values: dict) -> dict:
    return {p.name: p.format(values[p.name]) for p in kind.params if values.get(p.name) is not None}


def render_answer(figure_id, raw_params, theme: str = "light") -> dict:
    """The JSON answer for one parameter change; raises BadRequest with the CLI's message."""
    if not isinstance(figure_id, str) or figure_id not in FIGURES:
        raise BadRequest(f"unknown figure {figure_id!r} (allowed: {', '.join(FIGURES)})", "figure")
    if theme not in THEMES:
        raise BadRequest(f"--theme: must be one of {', '.join(THEMES)} (got {theme})", "theme")
    if not isinstance(raw_params, dict):
        raise BadRequest("params must be an object of parameter values", "params")
    fig = FIGURES[figure_id]
    kind = figures.get(fig.kind)
    raw = {}
    for name, value in raw_params.items():
        if not isinstance(name, str) or len(name) > 64:
            raise BadRequest("parameter names must be short strings", "params")
        if name.replace("-", "_") in fig.hidden:
            continue  # quality, theme: fixed by the page
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and len(value) > 200):
            raise BadRequest(f"--{name.replace('_', '-')}: must be a short string or a number", name)
        raw[name] = value
    if "theme" in {p.name for p in kind.params}:
        raw["theme"] = theme
    try:
        values = kind.validate(raw)
    except figures.ParamError as err:
        raise BadRequest(str(err), err.param) from None
    except ValueError as err:     # a combination the reference rejects (same message as the CLI)
        raise BadRequest(str(err), _param_named(kind, str(err))) from None
    shown = {k: v for k, v in _formatted(kind, values).items() if k not in fig.hidden}
    answer = {"figure": fig.id, "kind": kind.key, "params": shown,
              "command": kind.command_line(values)}
    if fig.mode == "conv":
        answer["formula"] = conv_formula(values)
        answer["conv"] = conv_payload(values)
    elif fig.mode == "diagram":
        answer["formula"] = rnn_formula(kind.key, values)
        answer["svg"] = diagram_svg(kind.key, values)
    else:
        key, diagram_values = bptt_diagram(values, theme)
        answer["formula"] = rnn_formula(key, diagram_values) + [
            f"the backward diagram: {figures.get(key).command_line(diagram_values)}"]
        answer["svg"] = diagram_svg(key, diagram_values)
    return answer


def _param_named(kind: figures.FigureKind, message: str) -> str | None:
    for p in kind.params:
        if re.match(rf"(--)?{p.name}\b", message):
            return p.name
    return None


class AnswerCache:
    """A small LRU of answers: moving a slider back and forth is instant."""

    def __init__(self, size: int = 256):
        self.size = size
        self.data: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key, compute):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        value = compute()
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


# ---------------------------------------------------------------------------------------------------
# HTTP


def static_files() -> dict[str, Path]:
    """URL path -> file for every asset in viz/static (the whitelist; nothing else is served)."""
    root = Path(str(resources.files("viz.app") / "static"))
    files = {}
    for path in sorted(root.iterdir()):
        if path.is_file() and re.fullmatch(r"[A-Za-z0-9_-]+\.[a-z]+", path.name) \
                and path.suffix in STATIC_TYPES:
            files[f"/static/{path.name}"] = path
    if "/static/index.html" in files:
        files["/"] = files["/static/index.html"]
    return files


class Handler(BaseHTTPRequestHandler):
    server_version = f"viz-explorer/{__version__}"
    sys_version = ""
    timeout = 15                      # a client that stops sending does not hold a thread forever
    protocol_version = "HTTP/1.1"

    # -- plumbing ---------------------------------------------------------------------------------

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # quiet: only errors are logged (see _send)
        pass

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=60" if cache else "no-store")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"),
                   "application/json; charset=utf-8")

    def _error(self, status: int, message: str, param: str | None = None) -> None:
        self._json(status, {"error": message, "param": param})

    def send_error(self, code, message=None, explain=None):  # malformed requests, from http.server
        try:
            self.close_connection = True
            self._error(code, message or HTTPStatus(code).phrase)
        except Exception:
            pass

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        return name in LOCAL_HOSTS

    def _dispatch(self, method: str) -> None:
        try:
            if not self._host_ok():
                self._error(403, "this server answers only requests for 127.0.0.1 or localhost")
                return
            split = urlsplit(self.path)
            path = split.path
            if path.startswith("/api/"):
                self._api(method, path, split.query)
                return
            if method not in ("GET", "HEAD"):
                self._error(405, f"{method} is not allowed on {path}")
                return
            file = self.server.static.get(path)
            if file is None:
                self._error(404, "not found")
                return
            self._send(200, file.read_bytes(), STATIC_TYPES[file.suffix], cache=False)
        except BadRequest as err:
            self._error(err.status, str(err), err.param)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:   # keep serving; say what happened
            traceback.print_exc(file=sys.stderr)
            try:
                self._error(500, f"internal error: {type(err).__name__}: {err}".splitlines()[0])
            except Exception:
                pass

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- API --------------------------------------------------------------------------------------

    def _body(self) -> dict:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise BadRequest("a POST needs a Content-Length header", status=411)
        n = int(length)
        if n > MAX_BODY:
            self.close_connection = True
            raise BadRequest(f"request body too large ({n} bytes; at most {MAX_BODY})", status=413)
        data = self.rfile.read(n)
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("request body must be JSON like {\"figure\": \"conv\", \"params\": {...}}") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    def _api(self, method: str, path: str, query: str) -> None:
        if path == "/api/explorer" and method in ("GET", "HEAD"):
            self._json(200, self.server.explorer)
            return
        if path == "/api/kinds" and method in ("GET", "HEAD"):
            self._json(200, {"kinds": [k.to_json() for k in figures.KINDS.values()]})
            return
        if path == "/api/render" and method in ("GET", "POST"):
            if method == "POST":
                body = self._body()
            else:
                if len(query) > MAX_BODY:
                    raise BadRequest("query too long", status=414)
                pairs = dict(parse_qsl(query, keep_blank_values=True))
                body = {"figure": pairs.pop("figure", None), "theme": pairs.pop("theme", "light"),
                        "params": pairs}
            figure_id, params = body.get("figure"), body.get("params", {})
            theme = body.get("theme", "light")
            key = json.dumps([figure_id, params, theme], sort_keys=True, default=str)
            start = time.perf_counter()
            answer = self.server.answers.get(key, lambda: _answer_or_error(figure_id, params, theme))
            if "error" in answer:
                self._json(400, answer)
                return
            self._json(200, {**answer, "ms": round((time.perf_counter() - start) * 1000, 1)})
            return
        if path in ("/api/explorer", "/api/kinds", "/api/render"):
            self._error(405, f"{method} is not allowed on {path}")
            return
        self._error(404, "not found")


def _answer_or_error(figure_id, params, theme) -> dict:
    try:
        return render_answer(figure_id, params, theme)
    except BadRequest as err:
        if err.status != 400:
            raise
        return {"error": str(err), "param": err.param}


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.static = static_files()
        self.explorer = explorer_json()
        self.answers = AnswerCache()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def make_server(port: int = 0) -> ExplorerServer:
    """A server bound to 127.0.0.1:port (0: any free port); call serve_forever() or use `run`."""
    try:
        return ExplorerServer(port)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise figures.ParamError("port", f"--port: {port} is already in use on 127.0.0.1 "
                                             "(choose another, or --port 0 for any free port)") from None
        raise


def run(port: int = 8000) -> None:
    """Serve until Ctrl-C (the `viz serve` command)."""
    server = make_server(port)
    print(f"viz explorer on {server.url}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("viz explorer stopped", file=sys.stderr)
    finally:
        server.server_close()
