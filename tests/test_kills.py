"""Killing `viz build` and `viz animate` at random (seeded) moments: no worker outlives the build, no
temporary file or Manim work folder stays behind, and a rerun finishes the job.

The builds run a slow fake kind (registered by a small launcher script, then `viz.app.cli.main`), so
a kill lands while workers are writing; `viz animate` runs for real. Every process a test starts
is in its own session and is killed (the whole tree) when the test ends, whatever happens.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

LAUNCHER = '''
import os, sys, time
from pathlib import Path
from viz.app import registry as figures

def slow_render(kind, values, out, fmt):
    """Writes its file in 10 chunks over `seconds` (a kill lands mid-file)."""
    with open(out, "wb") as f:
        for i in range(10):
            f.write(f"{fmt} size={values['size']} chunk {i}\\n".encode())
            f.flush()
            time.sleep(values["seconds"] / 10)

figures.KINDS["diagram slow"] = figures.FigureKind(
    command="diagram", name="slow", summary="A slow fake figure.",
    params=(figures.Param("size", "int", 1, "A size.", min=1, max=99),
            figures.Param("seconds", "float", 1.0, "Seconds.", min=0, max=9)),
    formats=("svg", "png"), render="__main__:slow_render")
from viz.app.cli import main
main(sys.argv[1:])
'''

ROOT = Path(__file__).resolve().parents[1]
N_FIGURES = 4


def manifest(tmp_path: Path) -> Path:
    text = "".join(f'[[figure]]\nname = "f{i}"\nkind = "diagram slow"\nformats = ["svg", "png"]\n'
                   f'[figure.params]\nsize = {i + 1}\nseconds = 0.5\n\n' for i in range(N_FIGURES))
    path = tmp_path / "figures.toml"
    path.write_text(text)
    return path


def expected(name: str, fmt: str) -> bytes:
    size = int(name[1:]) + 1
    return b"".join(f"{fmt} size={size} chunk {i}\n".encode() for i in range(10))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the packages the processes run (PYTHONPATH): the cache keys hash the source, and
    the working tree may be edited while the tests run."""
    src = tmp_path_factory.mktemp("src")
    for package in ("viz", "diagrams", "scenes"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


@pytest.fixture
def start(tmp_path, source):
    """start(args) -> Popen of the launcher in its own session; every tree it made dies at teardown."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    cache = tmp_path / "cache"
    started = []

    def run(*args):
        env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(source)}
        p = subprocess.Popen([sys.executable, str(launcher), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
        started.append(p)
        return p

    yield run
    for p in started:
        with_tree = [p.pid]
        try:
            with_tree += [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
        except psutil.Error:
            pass
        for pid in with_tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)   # its session's process group: workers included
        except OSError:
            pass
        p.wait(10)


def descendants(pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def wait_for_workers(p, count: int, timeout: float = 30.0) -> list:
    """The main process's worker processes, once `count` of them run (or the build ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        kids = descendants(p.pid)
        if len(kids) >= count:
            return kids
        time.sleep(0.05)
    return descendants(p.pid)


def alive(procs) -> list:
    gone, still = psutil.wait_procs(procs, timeout=10)
    return [q for q in still if q.status() != psutil.STATUS_ZOMBIE]


def leftovers(out: Path) -> list[str]:
    """Hidden files in OUT that the build does not keep: temporary files."""
    return sorted(n for n in os.listdir(out) if n.startswith(".") and n not in (".viz-cache.json", ".viz-logs"))


def check_rerun(start, path: Path, out: Path) -> dict:
    p = start("build", str(path), "--out", str(out), "--jobs", "2")
    _, err = p.communicate(timeout=120)
    err = err.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    for i in range(N_FIGURES):
        for fmt in ("svg", "png"):
            assert (out / f"f{i}.{fmt}").read_bytes() == expected(f"f{i}", fmt)
    assert leftovers(out) == []
    records = json.loads((out / ".viz-cache.json").read_text())["files"]
    assert sorted(records) == sorted(f"f{i}.{fmt}" for i in range(N_FIGURES) for fmt in ("png", "svg"))
    p = start("build", str(path), "--out", str(out), "--jobs", "2")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0 and "nothing to render" in err.decode()
    return records


# (signal, whom): the main process alone (its workers must follow), or the whole process group (a
# closed terminal, a CI timeout; nothing can clean up, so the rerun must).
CASES = [(signal.SIGTERM, "main", 1), (signal.SIGKILL, "main", 3), (signal.SIGKILL, "group", 5),
         (signal.SIGINT, "group", 6)]


@pytest.mark.parametrize("sig, whom, seed", CASES, ids=[f"{s.name}-{w}-{n}" for s, w, n in CASES])
def test_killed_build_leaves_no_worker_no_temporary_and_recovers(start, tmp_path, sig, whom, seed):
    path, out = manifest(tmp_path), tmp_path / "out"
    p = start("build", str(path), "--out", str(out), "--jobs", "2")
    workers = wait_for_workers(p, 2)
    assert len(workers) == 2, "the build did not start its two workers"
    time.sleep(random.Random(seed).uniform(0.0, 1.2))     # somewhere in the first figures
    if whom == "main":
        os.kill(p.pid, sig)
    else:
        os.killpg(p.pid, sig)
    # the caller's pipes close: nothing (no orphan worker) holds them open
    _, err = p.communicate(timeout=20)
    err = err.decode()
    assert alive(workers) == [], f"workers outlived the build: {workers}"
    if sig != signal.SIGKILL:
        assert p.returncode in (128 + sig, -sig), err
        assert "Traceback" not in err, err
        assert "interrupted" in err
    if not (sig == signal.SIGKILL and whom == "group"):
        # the build or its workers removed their temporary files themselves
        assert leftovers(out) == [], leftovers(out)
    check_rerun(start, path, out)


def test_a_rerun_removes_what_a_killed_build_left(start, tmp_path):
    """A whole process group killed mid-write leaves temporary files; the next build removes them
    (and only them: a user's own hidden file stays)."""
    path, out = manifest(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / ".f1.ab12cd34.svg").write_text("half")            # as a killed worker leaves them
    (out / "..f2.ab12cd34.zz98yx76.png").write_text("half")   # a renderer's own nested temporary
    (out / ".index.qwertyui.md").write_text("half")
    (out / ".viz-probe.abcd1234").write_text("")             # the writability check's file
    (out / ".notes").write_text("mine")
    p = start("build", str(path), "--out", str(out), "--jobs", "2")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    assert leftovers(out) == [".notes"]


def kill_during_gif_conversion(p, folder: Path, sig, seed: int) -> str:
    """Wait until `viz animate -o out.gif` converts to GIF (its `.out.XXXXXXXX.gif` exists), then
    send `sig` a seeded random moment later; returns its stderr."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if [n for n in os.listdir(folder) if n.startswith(".out.") and n.endswith(".gif")]:
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"no GIF conversion seen (exit {p.returncode}): {p.communicate()[1].decode()[-2000:]}")
    time.sleep(random.Random(seed).uniform(0.0, 0.3))
    if p.poll() is not None:
        pytest.skip("the conversion finished before the kill")
    os.kill(p.pid, sig)
    return p.communicate(timeout=30)[1].decode()


@pytest.mark.render
def test_killed_animate_during_the_gif_conversion(start, tmp_path):
    """`viz animate ... -o out.gif` killed while it converts the video to GIF: SIGTERM removes the
    temporary GIF and the Manim work folder at once (exit 143); after SIGKILL (nothing can run) the
    next render removes both, and writes the GIF."""
    out = tmp_path / "out.gif"
    args = ("animate", "conv", "--input", "5", "--channels", "1", "--kernel", "3", "--stride", "2",
            "-o", str(out))
    work = tmp_path / "cache" / "viz" / "manim" / "work"
    temps = lambda: [n for n in os.listdir(tmp_path) if n.startswith(".out.")]   # noqa: E731

    p = start(*args)
    err = kill_during_gif_conversion(p, tmp_path, signal.SIGTERM, 11)
    assert p.returncode in (143, -15), err
    assert "Traceback" not in err
    assert temps() == [] and list(work.iterdir()) == [] and not out.exists()

    p = start(*args)
    kill_during_gif_conversion(p, tmp_path, signal.SIGKILL, 12)
    assert temps() and list(work.glob("render-*")), "a SIGKILL leaves them"

    p = start(*args)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    assert out.stat().st_size > 1000
    assert temps() == [] and list(work.iterdir()) == []
