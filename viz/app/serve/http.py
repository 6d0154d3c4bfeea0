"""The explorer's HTTP server: 127.0.0.1 only, same-origin only, bounded in threads, time and memory.

    GET  /api/explorer              the figures the page offers, each with the registry's parameters
    POST /api/render                {"figure": "conv", "mode": "forward", "params": {"stride": "2"}, "theme": "light"}
                                    (Content-Type: application/json)
    GET  /api/render?figure=conv&mode=forward&stride=2&...   (the same, for curl)
        200 the answer of `answers.render_answer`    400 {"error": "--stride: must be ...", "param": "stride"}
    POST /api/arrays                the same body: {"arrays": {"x": {"shape": [5, 7], "why": "..."}, ...}}, the
                                    shapes the user's arrays must have there (asked before an edited array
                                    is sent into a changed geometry); GET with a query too

Safe on a shared desktop (any web page the user has open is a potential client):
- Only requests for Host 127.0.0.1/localhost (no DNS rebinding), only from this page: an `Origin` other
  than the server's own, or `Sec-Fetch-Site` other than same-origin/none, gets 403 (a top-level
  navigation to the page itself is allowed). A POST must say `Content-Type: application/json`, which a
  cross-site page can only send after a CORS preflight, and no preflight is ever granted (OPTIONS: 405).
- The limits (constants, gate, body reader, answer cache) are in `limits`.
- No thread per client while it dawdles: one gate thread collects every request head with a selector
  (limits.HEAD_TIMEOUT for the whole head, then 408), and only complete heads go to a pool of limits.WORKERS threads;
  a body must keep arriving (limits.BODY_IDLE) and be complete within limits.BODY_TIMEOUT; answers are written within
  limits.WRITE_TIMEOUT. One request per connection.
- The user's arrays are JSON arrays of at most user_arrays.MAX_REQUEST_CELLS numbers (never a path:
  the explorer reads no file); the cache is keyed by a digest of the whole request, arrays included.
- Renders run on limits.RENDERS threads with at most limits.RENDER_QUEUE waiting (else 503 "busy"); a request waits at
  most limits.RENDER_TIMEOUT for its answer (else 503). The answer cache holds encoded answers and is bounded
  in bytes (limits.CACHE_BYTES); identical concurrent requests share one render.
- Every malformed request answers 4xx with a JSON one-liner (bad JSON, too deep, NaN, wrong type, short
  body, no or bad Content-Length, too large, bad method); 500 only for a bug, and the server keeps serving.
"""
from __future__ import annotations

import concurrent.futures as futures
import errno
import hashlib
import io
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from viz import __version__
from viz.app import registry as figures
from viz.app.serve import answers, limits

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
    "Cross-Origin-Opener-Policy": "same-origin",
}
LOCAL_HOSTS = ("127.0.0.1", "localhost")
BadRequest = answers.BadRequest


# ---------------------------------------------------------------------------------------------------
# Requests


def static_files() -> dict[str, Path]:
    """URL path -> file for every asset in viz/app/static (the whitelist; nothing else is served)."""
    import re

    root = Path(str(resources.files("viz.app") / "static"))
    files = {}
    for path in sorted(root.iterdir()):
        if path.is_file() and re.fullmatch(r"[A-Za-z0-9_-]+\.[a-z]+", path.name) \
                and path.suffix in STATIC_TYPES:
            files[f"/static/{path.name}"] = path
    if "/static/index.html" in files:
        files["/"] = files["/static/index.html"]
    return files


def _no_constants(name):
    raise ValueError(f"{name} is not a number here")


def parse_body(data: bytes) -> dict:
    """The JSON object of a request body; BadRequest (400) for anything else."""
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("request body must be JSON like {\"figure\": \"conv\", \"params\": {...}}") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


class Handler(BaseHTTPRequestHandler):
    server_version = f"viz-explorer/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __init__(self, request, client_address, server, head: bytes = b""):
        self.head = head
        super().__init__(request, client_address, server)

    # -- plumbing ---------------------------------------------------------------------------------

    def setup(self):
        self.connection = self.request
        # headers and body go out in two writes: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = io.BufferedReader(limits.Body(self.connection, self.head, time.monotonic() + limits.BODY_TIMEOUT))
        self.wfile = socketserver._SocketWriter(self.connection)

    def handle(self):
        self.close_connection = True
        try:
            self.handle_one_request()
        except OSError:              # the client went away, or stalled past a timeout: nothing to say
            pass

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # quiet: only errors are logged
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.connection.settimeout(limits.WRITE_TIMEOUT)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, body: bytes, extra: dict | None = None) -> None:
        self._send(status, body, "application/json; charset=utf-8", extra)

    def _error(self, status: int, message: str, param: str | None = None) -> None:
        self._json(status, limits.encode({"error": message, "param": param}))

    def send_error(self, code, message=None, explain=None):  # malformed requests, from http.server
        try:
            self.close_connection = True
            if not hasattr(self, "command") or self.command is None:
                self.command = "GET"
            self.request_version = "HTTP/1.1"     # a status line and headers even for an HTTP/0.9 line
            # the client's mistakes are 4xx: an unknown method is 405, an unknown HTTP version 400
            code = {HTTPStatus.NOT_IMPLEMENTED: 405, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: 400}.get(code, code)
            self._error(code, message or HTTPStatus(code).phrase)
        except Exception:
            pass

    # -- who may ask ------------------------------------------------------------------------------

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        return name in LOCAL_HOSTS

    def _origin_refusal(self, api: bool) -> str | None:
        """Why this request comes from another web page (None: it does not)."""
        port = self.server.server_address[1]
        origin = self.headers.get("Origin")
        if origin is not None and origin not in (f"http://{h}:{port}" for h in LOCAL_HOSTS):
            return f"requests from {origin[:80]} are refused: only this explorer's own page may ask"
        site = (self.headers.get("Sec-Fetch-Site") or "none").lower()
        if site in ("same-origin", "none"):
            return None
        if not api and self.headers.get("Sec-Fetch-Mode") == "navigate" \
                and self.headers.get("Sec-Fetch-Dest") == "document":
            return None              # a link to the page itself opens it; its requests are then same-origin
        return f"{site} requests are refused: only this explorer's own page may ask"

    # -- dispatch ---------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        try:
            if not self._host_ok():
                self._error(403, "this server answers only requests for 127.0.0.1 or localhost")
                return
            split = urlsplit(self.path)
            path = split.path
            refusal = self._origin_refusal(api=path.startswith("/api/"))
            if refusal:
                self._error(403, refusal)
                return
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
            self._send(200, file.read_bytes(), STATIC_TYPES[file.suffix])
        except BadRequest as err:
            self._error(err.status, str(err), err.param)
        except OSError:
            pass
        except Exception as err:   # a bug: keep serving, say what happened
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

    def do_OPTIONS(self):            # CORS preflights: never granted
        self._dispatch("OPTIONS")

    def do_PATCH(self):
        self._dispatch("PATCH")

    # -- API --------------------------------------------------------------------------------------

    def _body(self) -> dict:
        if self.headers.get("Transfer-Encoding"):
            raise BadRequest("send the body with a Content-Length, not a Transfer-Encoding", status=411)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise BadRequest("a POST must have Content-Type: application/json", status=415)
        length = (self.headers.get("Content-Length") or "").strip()
        if not length.isdigit() or len(length) > 12:
            raise BadRequest("a POST needs a Content-Length header (a number of bytes)", status=411)
        n = int(length)
        if n > limits.MAX_BODY:
            raise BadRequest(f"request body too large ({n} bytes; at most {limits.MAX_BODY})", status=413)
        try:
            data = self.rfile.read(n)
        except (socket.timeout, TimeoutError):
            data = b""
        if len(data) < n:
            raise BadRequest(f"request body shorter than its Content-Length ({n} bytes)")
        return parse_body(data)

    def _api(self, method: str, path: str, query: str) -> None:
        if path == "/api/explorer" and method in ("GET", "HEAD"):
            self._json(200, self.server.explorer)
            return
        if path == "/api/kinds" and method in ("GET", "HEAD"):
            self._json(200, limits.encode({"kinds": [k.to_json() for k in figures.KINDS.values()]}))
            return
        if path in ("/api/render", "/api/arrays") and method in ("GET", "POST"):
            if method == "POST":
                body = self._body()
            else:
                if len(query) > limits.MAX_BODY:
                    raise BadRequest("query too long", status=414)
                pairs = dict(parse_qsl(query, keep_blank_values=True))
                body = {"figure": pairs.pop("figure", None), "theme": pairs.pop("theme", "light"),
                        "mode": pairs.pop("mode", None), "params": pairs}
            args = (body.get("figure"), body.get("params", {}), body.get("theme", "light"), body.get("mode"))
            try:   # a digest: the key's size does not grow with the arrays (the budget counts answers)
                key = hashlib.sha256(json.dumps([path, *args], sort_keys=True).encode()).hexdigest()
            except (TypeError, ValueError, RecursionError):
                raise BadRequest("request values must be strings, numbers or objects of them") from None
            answer = answers.arrays_answer if path == "/api/arrays" else answers.render_answer
            start = time.perf_counter()
            status, data = self.server.answers.get(key, lambda: limits.compute_answer(*args, answer=answer))
            ms = (time.perf_counter() - start) * 1000
            self._json(status, data, {"Server-Timing": f"render;dur={ms:.1f}"})
            return
        if path in ("/api/explorer", "/api/kinds", "/api/render", "/api/arrays"):
            self._error(405, f"{method} is not allowed on {path}")
            return
        self._error(404, "not found")


class ExplorerServer(HTTPServer):
    """Accepts on 127.0.0.1; the gate reads heads, limits.WORKERS threads answer, limits.RENDERS threads draw."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.static = static_files()
        self.explorer = limits.encode(answers.explorer_json())
        self.answers = limits.AnswerCache()
        self.workers = futures.ThreadPoolExecutor(limits.WORKERS, thread_name_prefix="viz-http")
        self.busy = 0                                  # connections handed to the workers, not yet done
        self.busy_lock = threading.Lock()
        self.gate = limits.Gate(self)
        self.gate.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def process_request(self, request, client_address):
        self.gate.add(request, client_address)

    def dispatch(self, sock, address, head: bytes) -> None:
        with self.busy_lock:
            self.busy += 1
        try:
            self.workers.submit(self._work, sock, address, head)
        except RuntimeError:            # shutting down
            self._done(sock)

    def _work(self, sock, address, head: bytes) -> None:
        try:
            Handler(sock, address, self, head)
        except Exception:
            self.handle_error(sock, address)
        finally:
            self._done(sock)

    def _done(self, sock) -> None:
        with self.busy_lock:
            self.busy -= 1
        self.shutdown_request(sock)

    def shutdown_request(self, request, drain: float = 0.3):
        """Close after the answer; first read what the client still sends (at most `drain` seconds),
        so that closing does not reset the connection before the client has read the answer."""
        end = time.monotonic() + drain
        try:
            request.shutdown(socket.SHUT_WR)
            while (left := end - time.monotonic()) > 0:
                request.settimeout(left)
                if not request.recv(65536):
                    break
        except OSError:
            pass
        request.close()

    def handle_error(self, request, client_address):
        traceback.print_exc(file=sys.stderr)

    def server_close(self):
        super().server_close()
        if hasattr(self, "gate"):           # not when binding failed in __init__
            self.gate.stop()
            self.workers.shutdown(wait=False, cancel_futures=True)
            self.answers.close()


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
