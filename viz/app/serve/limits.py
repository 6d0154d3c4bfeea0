"""The explorer server's limits: time, size, threads and memory, each a constant here (tests shrink them).

- `Gate`: one thread reads every new connection's request head with a selector, so a client that
  trickles its head holds no thread; complete heads go to the worker pool, stalled ones get 408.
- `Body`: the rest of a request (its body) with a deadline and an idle timeout.
- `AnswerCache`: renders on a bounded pool with a bounded queue and a time limit per request (503
  otherwise), encoded answers kept up to a budget in bytes, identical concurrent requests sharing one.
"""
from __future__ import annotations

import collections
import concurrent.futures as futures
import io
import json
import selectors
import socket
import threading
import time
from http import HTTPStatus

from viz.app.serve import answers

BadRequest = answers.BadRequest

MAX_BODY = 192 * 1024        # a request with the user's arrays: user_arrays.MAX_REQUEST_CELLS numbers
MAX_HEAD = 64 * 1024
HEAD_TIMEOUT = 10.0           # seconds for the request line and headers, however they trickle in
BODY_IDLE = 2.0               # a body that stops arriving for this long is shorter than its Content-Length
BODY_TIMEOUT = 10.0
WRITE_TIMEOUT = 10.0
WORKERS = 8                   # threads handling complete requests
MAX_CONNECTIONS = 256         # connections waiting for their head or a worker; beyond: 503 at once
RENDERS = 2                   # concurrent renders (2 cores)
RENDER_QUEUE = 8
RENDER_TIMEOUT = 30.0
CACHE_BYTES = 48 * 1024 * 1024

def _one_line(status: int, message: str) -> bytes:
    body = json.dumps({"error": message, "param": None}).encode()
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


# ---------------------------------------------------------------------------------------------------
# Answers: rendered on a bounded pool, cached by size


class AnswerCache:
    """Encoded answers (status, bytes), least recently used first out, at most `budget` bytes in all;
    requests for an answer being rendered wait for that render instead of starting another."""

    def __init__(self, budget: int = CACHE_BYTES, workers: int = RENDERS, queue: int = RENDER_QUEUE):
        self.budget, self.queue, self.bytes = budget, queue, 0
        self.data: collections.OrderedDict = collections.OrderedDict()
        self.running: dict = {}
        self.lock = threading.Lock()
        self.pool = futures.ThreadPoolExecutor(workers, thread_name_prefix="viz-render")

    def get(self, key, compute, timeout: float = RENDER_TIMEOUT) -> tuple[int, bytes]:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
            job = self.running.get(key)
            if job is None:
                if len(self.running) >= self.queue:
                    raise BadRequest("the explorer is busy drawing other figures; try again in a moment",
                                     status=503)
                job = self.running[key] = self.pool.submit(self._run, key, compute)
        try:
            return job.result(timeout)
        except futures.TimeoutError:
            raise BadRequest(f"this figure took longer than {timeout:g} s to draw; choose a smaller one",
                             status=503) from None

    def _run(self, key, compute) -> tuple[int, bytes]:
        try:
            answer = compute()
        finally:
            with self.lock:
                self.running.pop(key, None)
        status, body = answer
        if status in (200, 400) and len(body) <= self.budget // 2:      # deterministic answers only
            with self.lock:
                if key not in self.data:
                    self.data[key] = answer
                    self.bytes += len(body)
                while self.bytes > self.budget:
                    _, (_, old) = self.data.popitem(last=False)
                    self.bytes -= len(old)
        return answer

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def encode(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def compute_answer(figure_id, params, theme, mode, answer=answers.render_answer) -> tuple[int, bytes]:
    try:
        return 200, encode(answer(figure_id, params, theme, mode))
    except BadRequest as err:
        return err.status, encode({"error": str(err), "param": err.param})


# ---------------------------------------------------------------------------------------------------
# Connections: the gate collects request heads without a thread per client


class Gate(threading.Thread):
    """Reads every new connection's request head with a selector (no thread per client); a complete
    head (or MAX_HEAD bytes) goes to the worker pool, a head still incomplete after HEAD_TIMEOUT gets 408."""

    def __init__(self, server: "ExplorerServer"):
        super().__init__(name="viz-gate", daemon=True)
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.new: collections.deque = collections.deque()
        self.pending: dict = {}                              # socket -> [head bytes, deadline, address]
        self.stopped = False

    def add(self, sock, address) -> None:
        self.new.append((sock, address))
        self.wake_w.send(b"x")

    def stop(self) -> None:
        self.stopped = True
        self.wake_w.send(b"x")

    def run(self) -> None:
        while not self.stopped:
            for key, _ in self.selector.select(timeout=0.5):
                if key.fileobj is self.wake_r:
                    self.wake_r.recv(4096)
                else:
                    self._read(key.fileobj)
            while self.new:
                self._admit(*self.new.popleft())
            now = time.monotonic()
            for sock in [s for s, (_, deadline, _) in self.pending.items() if deadline < now]:
                self._drop(sock, 408, f"the request head did not arrive within {HEAD_TIMEOUT:g} s")
        for sock in list(self.pending):
            self._drop(sock)

    def _admit(self, sock, address) -> None:
        if len(self.pending) + self.server.busy >= MAX_CONNECTIONS:
            self.pending[sock] = [b"", 0, address]
            self._drop(sock, 503, "too many connections; try again in a moment")
            return
        sock.setblocking(False)
        self.pending[sock] = [b"", time.monotonic() + HEAD_TIMEOUT, address]
        self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock) -> None:
        entry = self.pending[sock]
        try:
            data = sock.recv(MAX_HEAD)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        entry[0] += data
        if b"\r\n\r\n" in entry[0] or b"\n\n" in entry[0] or len(entry[0]) > MAX_HEAD:
            self.selector.unregister(sock)
            del self.pending[sock]
            sock.setblocking(True)
            self.server.dispatch(sock, entry[2], entry[0])

    def _drop(self, sock, status: int | None = None, message: str = "") -> None:
        self.pending.pop(sock, None)
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        try:
            if status is not None:
                sock.send(_one_line(status, message))
        except OSError:
            pass
        self.server.shutdown_request(sock, drain=0)


class Body(io.RawIOBase):
    """The socket's bytes after the head the gate already read; each read waits at most BODY_IDLE and
    all of them end by `deadline` (socket.timeout otherwise)."""

    def __init__(self, sock, head: bytes, deadline: float):
        self.sock, self.head, self.deadline = sock, memoryview(head), deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if len(self.head):
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("request too slow")
        self.sock.settimeout(min(BODY_IDLE, left))
        return self.sock.recv_into(buffer)
