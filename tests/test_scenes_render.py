"""scenes.render: in-process rendering to exactly `out`, atomically, with Manim's files kept in the cache.

A tiny scene (a square moving, a number) keeps these fast; the convolution scenes' own renders are
in test_scenes_conv.py.
"""
from __future__ import annotations

import builtins
import io
import re
import sys

import numpy as np
import pytest

pytest.importorskip("manim")

from scenes import render  # noqa: E402
from viz.io import MissingProgram  # noqa: E402


def tiny_scene_class():
    m = render.import_manim()
    from scenes.common import text

    class Tiny(m.Scene):
        def __init__(self, fail: bool = False, **kwargs):
            super().__init__(**kwargs)
            self.fail = fail
            self.progress_total = 3

        def construct(self):
            sq = m.Square(1.0, color="#56B4E9", fill_opacity=0.4)
            self.play(m.FadeIn(sq), run_time=0.4)
            if self.fail:
                raise RuntimeError("scene failed on purpose")
            self.play(sq.animate.shift(m.RIGHT * 2), m.FadeIn(text("−1.25", 30)), run_time=0.6)
            self.wait(0.4)

    return Tiny


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A private cache and an empty working directory: renders must touch neither cwd nor ~/.cache."""
    cache = tmp_path / "cache"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(cwd)
    return tmp_path


def test_parameters_are_checked_before_rendering(tmp_path):
    with pytest.raises(ValueError, match="fmt must be one of mp4, gif, webm, png"):
        render.render_scene(lambda: None, tmp_path / "a.avi", "avi")
    with pytest.raises(ValueError, match="quality must be one of low, medium, high"):
        render.render_scene(lambda: None, tmp_path / "a.mp4", "mp4", quality="ultra")
    with pytest.raises(ValueError, match="kind must be one of conv, conv-backward, bptt, training"):
        render.render_animation("nope", {}, tmp_path / "a.mp4", "mp4")
    assert not any(tmp_path.iterdir())


def test_kinds_table_resolves_lazily():
    assert render.SCENES["conv"] == "scenes.conv:ConvSlide"
    from scenes.conv import ConvSlide
    from scenes.conv_backward import ConvBackward
    assert render.scene_class("conv") is ConvSlide
    assert render.scene_class("conv-backward") is ConvBackward
    assert set(render.SCENES) >= {"conv", "conv-backward", "bptt", "training"}   # others add theirs
    assert all(len(target.split(":")) == 2 for target in render.SCENES.values())


def test_missing_cairo_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_manim(name, *args, **kwargs):
        if name == "manim" or name.startswith("manim."):
            raise ImportError("libcairo.so.2: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "manim")
    monkeypatch.setattr(builtins, "__import__", no_manim)
    with pytest.raises(MissingProgram, match=r"apt-get install libcairo2-dev libpango1\.0-dev pkg-config"):
        render.import_manim()


def test_png_lands_exactly_at_out_and_nothing_else(isolated, capsys):
    from PIL import Image

    m = render.import_manim()
    before = {k: m.config[k] for k in ("pixel_width", "pixel_height", "frame_rate", "media_dir", "format",
                                       "background_color", "disable_caching", "verbosity")}
    out = isolated / "figs" / "tiny.png"
    render.render_scene(tiny_scene_class(), out, "png", progress=False)
    assert Image.open(out).size == (854, 480)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.png"]        # no temporary left
    assert not any((isolated / "cwd").iterdir())                              # no media/ in cwd
    assert (isolated / "cache" / "viz" / "manim").is_dir()
    assert not any((isolated / "cache" / "viz" / "manim" / "work").iterdir())  # private folder removed
    assert {k: m.config[k] for k in before} == before                          # config restored
    assert capsys.readouterr().err == ""                                       # progress=False: silent


def test_failed_render_leaves_the_old_file(isolated):
    out = isolated / "keep.mp4"
    out.write_bytes(b"old")
    Tiny = tiny_scene_class()
    with pytest.raises(RuntimeError, match="on purpose"):
        render.render_scene(lambda: Tiny(fail=True), out, "mp4", progress=False)
    assert out.read_bytes() == b"old"
    assert [p.name for p in isolated.iterdir() if p.name.startswith(".keep")] == []


def test_progress_line_on_stderr(isolated, capsys):
    render.render_scene(tiny_scene_class(), isolated / "p.png", "png", name="tiny")
    err = capsys.readouterr().err
    assert "viz: tiny [" in err and "3/3" in err and err.rstrip().endswith("- done")


def test_dry_run_constructs_without_files(isolated):
    Tiny = tiny_scene_class()
    scene = render.dry_run_scene(lambda **kw: Tiny(**kw))
    assert scene.renderer.num_plays == 3          # construct() ran through: two plays and a wait
    assert not any((isolated / "cwd").iterdir())
    assert not any((isolated / "cache" / "viz" / "manim" / "work").iterdir())


def _frames(path):
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s, frames


@pytest.mark.render
@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif"])
def test_video_formats_decode(isolated, fmt):
    out = isolated / f"tiny.{fmt}"
    render.render_scene(tiny_scene_class(), out, fmt, progress=False)
    s, frames = _frames(out)
    assert (s.codec_context.width, s.codec_context.height) == (854, 480)
    assert 12 <= len(frames) <= 30          # 1.4 s at 15 fps = 21 frames
    if fmt != "gif":
        assert s.average_rate == 15
    else:   # one palette, no dithering: small (Manim's own GIF of this scene is ~10x larger)
        assert out.stat().st_size < 400_000


TINY_RENDER = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_scenes_render import tiny_scene_class
from scenes import render
for name in sys.argv[1:]:
    out = Path(name)
    render.render_scene(tiny_scene_class(), out, out.suffix[1:], progress=False)
"""


@pytest.mark.render
def test_every_format_is_byte_identical_across_processes_and_time_zones(isolated):
    # Two processes (as `viz animate` and `viz build` run renders), two time zones, every format in
    # the same order in each. WebM was different on every run before: random Matroska segment and
    # track ids at bytes 284-291 and 435-442.
    import os
    import subprocess
    from pathlib import Path

    script = TINY_RENDER.format(tests=str(Path(__file__).parent))
    for tz in ("UTC", "Asia/Kolkata"):
        outs = [str(isolated / f"{tz.replace('/', '-')}.{fmt}") for fmt in render.FORMATS]
        done = subprocess.run([sys.executable, "-c", script, *outs], capture_output=True, text=True,
                              env={**os.environ, "TZ": tz})
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr   # not even Manim's "webm can be slower" warning
    for fmt in render.FORMATS:
        a, b = (isolated / f"UTC.{fmt}").read_bytes(), (isolated / f"Asia-Kolkata.{fmt}").read_bytes()
        assert a == b, fmt
        assert len(a) > 1000
    s, frames = _frames(isolated / "UTC.webm")
    assert len(frames) == 21 and s.average_rate == 15


@pytest.mark.render
def test_same_frames_in_one_process(isolated):
    c, d = isolated / "c.png", isolated / "d.png"
    render.render_scene(tiny_scene_class(), c, "png", progress=False)
    render.render_scene(tiny_scene_class(), d, "png", progress=False)
    assert c.read_bytes() == d.read_bytes()


@pytest.mark.render
def test_medium_quality_size(isolated):
    from PIL import Image
    out = isolated / "m.png"
    render.render_scene(tiny_scene_class(), out, "png", quality="medium", progress=False)
    assert Image.open(out).size == (1280, 720)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise():
    term = FakeTerminal()
    bar = render.Progress("conv", stream=term)
    bar.tick(1.0, 3)
    bar.tick(0.5, 3)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.getvalue())
    assert "viz: conv" in plain and "2/3" in plain and "1.5 s of video" in plain
    bar.done()
    assert term.getvalue().endswith(" - done\n") and "\x1b[?25h" in term.getvalue()   # cursor shown again
    log = io.StringIO()
    bar = render.Progress("conv", stream=log)
    bar.tick(1.0, 3)
    bar.done()
    assert log.getvalue().startswith("viz: conv [########................] 1/3, 1.0 s of video, ")
    assert "\x1b" not in log.getvalue() and log.getvalue().count("\n") == 1


def test_stale_work_folders_and_temporaries_go_live_ones_stay(isolated):
    from scenes import files

    with files.workdir() as live:
        work = live.parent
        stale = work / "render-killed1"
        stale.mkdir()
        (stale / ".lock").touch()                      # its render was killed: nobody holds the lock
        assert files.remove_stale_workdirs() == [stale]
        assert live.is_dir() and not stale.exists()
    assert not live.exists()
    out = isolated / "out.gif"
    killed, running = isolated / ".out.k1ll3d00.gif", isolated / ".out.runn1ng0.gif"
    killed.write_bytes(b"half")
    running.write_bytes(b"half")
    with files.held(running):
        assert files.remove_stale_temporaries(out) == [killed]
    assert running.exists()


def test_an_unusable_cache_folder_is_one_error_naming_it(isolated, monkeypatch):
    (isolated / "cache").write_text("a file, not a folder")
    with pytest.raises(OSError) as err:
        render.render_scene(tiny_scene_class(), isolated / "x.png", "png", progress=False)
    assert err.value.filename == str(isolated / "cache" / "viz" / "manim" / "work")
    assert err.value.strerror.startswith("cannot use it as the cache folder: a part of the path is a file")
    assert not (isolated / "x.png").exists()
