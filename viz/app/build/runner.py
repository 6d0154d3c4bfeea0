"""Rendering figures: one task per figure, in worker processes that die with the build.

- `render_task` renders the stale formats of one figure and never raises for a renderer's error;
  what the renderer prints goes to ``OUT/.viz-logs/NAME.log`` when it fails.
- `run_local`: a fork pool of `jobs` processes (Manim's config is process-global, so one figure per
  process at a time). Each worker asks the kernel for SIGTERM when the build dies
  (``prctl(PR_SET_PDEATHSIG)``, even on SIGKILL), ignores SIGINT (the build stops it), and on SIGTERM
  unwinds the figure it is rendering (its temporary files go) and exits.
- `run_dask`: the same tasks on a `dask.distributed` scheduler, each figure in a fresh
  Python process on the worker (`subprocess_main`) (OUT must be a folder every worker sees).
- `stop_signals`: SIGTERM and SIGHUP raise `Interrupted`, a KeyboardInterrupt, like SIGINT does.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from viz.app import registry as figures
from viz.io import atomic_path, write_text_atomic

from .cache import file_sha256
from .manifest import LOG_DIR

PR_SET_PDEATHSIG = 1
DASK_CONNECT_TIMEOUT = "10s"


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    key: str
    values: dict
    formats: tuple[str, ...]      # the stale ones only
    out_dir: str


@dataclasses.dataclass
class Result:
    name: str
    files: dict                   # fmt -> sha256 of the written file
    errors: dict                  # fmt -> one-line message
    seconds: float
    log: str = ""                 # path of the failure log, if any


class Interrupted(KeyboardInterrupt):
    """The build was asked to stop (SIGINT, SIGTERM, SIGHUP); `status` is the usual 128 + signal."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.status = 128 + signum


@contextlib.contextmanager
def stop_signals():
    """SIGTERM and SIGHUP raise Interrupted in the main thread, as SIGINT raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted(signum)

    saved = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------------------------------------------
# One figure


@contextlib.contextmanager
def _captured_output():
    """Send everything the renderer prints (Python and C level, stdout and stderr) to a temporary
    file, so worker output does not garble the progress bar; yields a list that holds its tail."""
    tail: list[str] = []
    with tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = []
        text = io.TextIOWrapper(sink, encoding="utf-8", errors="replace", write_through=True)
        try:
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield tail
        finally:
            text.flush()
            text.detach()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            tail.append(sink.read()[-20000:].decode("utf-8", "replace"))


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or message}"
    if isinstance(err, (ValueError, figures.ParamError)) or type(err).__name__ == "MissingProgram":
        return message or type(err).__name__
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _render_one(kind, task: Task, fmt: str, tracebacks: list) -> tuple[str | None, str | None]:
    """(sha256, None) or (None, message). An OSError is tried once more: it can be a race between
    processes over a shared cache (Manim's text SVGs); anything else is the figure's own error."""
    target = Path(task.out_dir) / f"{task.name}.{fmt}"
    for attempt in (1, 2):
        try:
            with atomic_path(target) as tmp:
                kind.render_to(dict(task.values), tmp, fmt)
                if not tmp.is_file() or tmp.stat().st_size == 0:
                    raise RuntimeError(f"the renderer wrote nothing to {target.name}")
            return file_sha256(target), None
        except Exception as err:  # one format failing must not stop the others
            tracebacks.append(f"--- {target.name} (attempt {attempt})\n{traceback.format_exc()}")
            if attempt == 2 or not isinstance(err, OSError):
                return None, one_line(err)
    raise AssertionError("unreachable")


def render_task(task: Task) -> Result:
    """Render the stale formats of one figure; never raises for a renderer's error."""
    start = time.perf_counter()
    kind = figures.get(task.key)
    files, errors, tracebacks = {}, {}, []
    with _captured_output() as tail:
        for fmt in task.formats:
            sha, error = _render_one(kind, task, fmt, tracebacks)
            if sha:
                files[fmt] = sha
            else:
                errors[fmt] = error
    log = ""
    if errors:
        log_path = Path(task.out_dir) / LOG_DIR / f"{task.name}.log"
        output = tail[0] if tail else ""
        try:
            write_text_atomic(log_path, "".join(tracebacks) + ("\n--- output\n" + output if output else ""))
            log = str(log_path)
        except OSError as err:   # a full disk must not hide the figure's own error
            errors = {f: f"{m} (no log: {err.strerror or err})" for f, m in errors.items()}
    return Result(task.name, files, errors, time.perf_counter() - start, log)


# ---------------------------------------------------------------------------------------------------
# Worker processes that die with the build


class _Stop(BaseException):
    """Raised in a worker by SIGTERM: unwinds the figure (temporary files removed), then the worker exits."""


_busy = False


def _on_term(signum, frame):
    # Once: the pool SIGTERMs the other workers as soon as one exits, and a second _Stop raised
    # inside a cleanup (a `finally` removing a temporary file) would skip it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _busy:
        raise _Stop()
    os._exit(128 + signum)


def die_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(128 + signal.SIGTERM)


def _worker_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    die_with_parent(parent)


def _worker_task(task: Task) -> Result:
    global _busy
    _busy = True
    try:
        return render_task(task)
    except _Stop:
        os._exit(128 + signal.SIGTERM)
    finally:
        _busy = False


def _pool(jobs: int) -> ProcessPoolExecutor:
    # fork: workers inherit the registry as it is (including kinds registered at run time) and skip
    # re-importing NumPy; each worker imports its heavy renderer once and keeps it for later figures.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                               initializer=_worker_init, initargs=(os.getpid(),))


def _stop_pool(pool: ProcessPoolExecutor, timeout: float = 10.0) -> None:
    """SIGTERM every worker (each removes its temporary files), wait for them, SIGKILL stragglers."""
    processes = list(getattr(pool, "_processes", {}).values())
    for p in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
    pool.shutdown(wait=False, cancel_futures=True)


def run_local(tasks: list[Task], jobs: int, on_start, on_done, on_tick) -> None:
    """Run tasks, at most `jobs` at once; a crashed worker process gets its figure one retry."""
    if jobs <= 1:
        for task in tasks:
            on_start(task)
            on_done(render_task(task))
        return
    pending = deque(tasks)
    attempts: dict[str, int] = {}
    pool = _pool(jobs)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < jobs:
                task = pending.popleft()
                attempts[task.name] = attempts.get(task.name, 0) + 1
                inflight[pool.submit(_worker_task, task)] = task
                on_start(task)
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                task = inflight.pop(future)
                try:
                    on_done(future.result())
                except BrokenProcessPool:
                    broken = True
                    if attempts[task.name] < 2:
                        pending.appendleft(task)
                    else:
                        msg = "the worker process died (crash or out of memory)"
                        on_done(Result(task.name, {}, {f: msg for f in task.formats}, 0.0))
            if not done:
                on_tick()
            if broken:
                pending.extendleft(inflight.values())   # they died with the pool: run them again
                inflight.clear()
                _stop_pool(pool)
                pool = _pool(jobs)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


# ---------------------------------------------------------------------------------------------------
# dask.distributed: each figure in a fresh process on a worker


def render_in_subprocess(task: Task) -> Result:
    """Run `render_task(task)` in a new Python process (Manim's config is process-global, and a dask
    worker runs tasks in threads); the task and its result travel as pickles over stdin/stdout."""
    import subprocess

    # -c, not -m: under -m this module would be __main__ and its Result would not unpickle here
    done = subprocess.run([sys.executable, "-c", "from viz.app.build.runner import subprocess_main; "
                           "subprocess_main()"], input=pickle.dumps(task), capture_output=True)
    if done.returncode != 0:
        message = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return Result(task.name, {}, {f: f"the render process failed ({message})" for f in task.formats}, 0.0)
    return pickle.loads(done.stdout)


def dask_client(address: str):
    """A client of the scheduler at `address`, or ParamError naming --executor (checked before
    anything renders or is written)."""
    try:
        from distributed import Client
    except ImportError:
        raise figures.ParamError("executor", "--executor: dask:// needs dask.distributed "
                                 "(pip install 'viz[dask]')") from None
    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except OSError as err:
        raise figures.ParamError("executor", f"--executor: cannot reach the dask scheduler at {address} "
                                 f"({err})") from None


def run_dask(tasks: list[Task], client, on_start, on_done, on_tick) -> None:
    """Submit every task to the dask `client`'s scheduler; results arrive as they finish."""
    from distributed import as_completed

    futures = {}
    for task in tasks:
        futures[client.submit(render_in_subprocess, task, pure=False, key=f"viz-{task.name}-{os.getpid()}")] = task
        on_start(task)
    try:
        for future in as_completed(list(futures), loop=client.loop):
            task = futures[future]
            try:
                on_done(future.result())
            except Exception as err:   # the worker itself was lost
                on_done(Result(task.name, {}, {f: one_line(err) for f in task.formats}, 0.0))
    except BaseException:
        client.cancel(list(futures))
        raise


def subprocess_main() -> None:
    """The render process of `render_in_subprocess`: a pickled Task on stdin, a pickled Result on stdout."""
    die_with_parent(os.getppid())
    task = pickle.loads(sys.stdin.buffer.read())
    result = render_task(task)
    sys.stdout.buffer.write(pickle.dumps(result))

