"""Slides: the deck is cut from one render at the Story's step boundaries, its posters are the steps'
stills, it opens offline in Chromium, and every gallery animation gives one slide per Story step.

A tiny StoryScene (three steps, each lighting one more square, the middle one 1.5x as long) checks
the mechanism fast; the homework convolution checks it on a real scene.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = {"input": "7", "channels": 5, "kernel": 3, "stride": 2}
HOMEWORK_ARGS = ["--input", "7", "--channels", "5", "--kernel", "3", "--stride", "2"]

pytestmark = pytest.mark.render


# ---- a small StoryScene ----------------------------------------------------------------------

def fake_story():
    from viz.story.core import Line, Step, Story

    steps = tuple(Step(id=f"s{k + 1}", label=f"square {k + 1}", narration=f"Square {k + 1} lights.",
                       lines=(Line(f"y[{k + 1}] = {k + 1}·2 = {2 * (k + 1)}", "output",
                                   (k + 1.0, 2.0, 2.0 * (k + 1))),),
                       weight=1.5 if k == 1 else 1.0) for k in range(3))
    return Story(kind="animate fake", params={}, title="Three squares", formula=("y[i] = 2·i",),
                 steps=steps, alt="Three squares light one after the other.")


def fake_scene_class():
    from manim import RIGHT, FadeIn, Square, Text, VGroup

    from scenes.story_scene import StoryScene

    class FakeScene(StoryScene):
        def __init__(self, **kw):
            super().__init__(story=fake_story(), step_time=1.0, **kw)

        def construct(self):
            squares = VGroup(*[Square(1.2) for _ in range(3)]).arrange(RIGHT, buff=0.5)
            self.play(FadeIn(squares), run_time=self.intro_time)
            label = None
            for k, (_, end) in enumerate(self.timeline):
                self.begin_step(k)
                new = Text(f"step {k + 1}", font_size=36).next_to(squares, [0, -1, 0])
                if label is not None:
                    self.remove(label)
                self.play(squares[k].animate.set_fill("#F0E442", opacity=0.8), FadeIn(new), run_time=0.4)
                label = new
                self.hold_until(end)
            self.wait(0.5)          # an outro: not part of any slide

    return FakeScene


def image(path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def differs(a: np.ndarray, b: np.ndarray, n: int = 4) -> float:
    """Fraction of n x n blocks whose mean colour differs by more than video compression explains
    (H.264 at yuv420p smears the colour of 1-px coloured lines over a pixel or two; a different step
    lights other cells and writes other text: a few percent of the blocks)."""
    assert a.shape == b.shape
    h, w = a.shape[0] // n * n, a.shape[1] // n * n

    def mean(x):
        return x[:h, :w].astype(np.float32).reshape(h // n, n, w // n, n, -1).mean(axis=(1, 3))

    return float((np.abs(mean(a) - mean(b)).max(axis=-1) > 32).mean())


def video_frames(path) -> list[np.ndarray]:
    import av
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


@pytest.fixture(scope="module")
def fake_deck(tmp_path_factory):
    from viz.app import slides
    cls = fake_scene_class()
    root = tmp_path_factory.mktemp("fake")
    slides.make_deck(lambda: cls(), root / "deck", "low", handout=root / "handout.pdf", progress=False)
    return root, cls


# ---- the mechanism, on the small scene ---------------------------------------------------------

def test_clips_are_cut_at_the_story_timeline(fake_deck):
    root, _ = fake_deck
    media = root / "deck" / "media"
    full = video_frames(media / "animation.mp4")
    timeline = fake_story().timeline(1.0, intro=1.0)
    fps = 15
    lengths = [len(video_frames(media / f"step-{k + 1}.mp4")) for k in range(3)]
    # step 1 carries the intro; every clip ends where its step ends on the timeline
    expected = [round(timeline[0][1] * fps)] + [round((b - a) * fps) for a, b in timeline[1:]]
    assert all(abs(n - e) <= 1 for n, e in zip(lengths, expected)), (lengths, expected)
    assert sum(lengths) < len(full)                    # the outro is in no clip
    # a clip's frames are the full video's frames at those times (re-encoded)
    start = lengths[0]
    clip2 = video_frames(media / "step-2.mp4")
    assert differs(clip2[0], full[start]) < 0.002 and differs(clip2[-1], full[start + lengths[1] - 1]) < 0.002
    # the clip ends on the step's hold: its last frame shows square 2 lit, square 3 not
    assert differs(clip2[-1], full[start + lengths[1] + lengths[2] - 1]) > 0.005


def test_clips_not_on_a_keyframe_are_re_encoded(fake_deck, tmp_path):
    """Steps normally start a Manim segment (a keyframe) and are copied; cut one frame later, the
    clips must be decoded and re-encoded, and still hold exactly those frames."""
    from scenes.stills import StepSpan
    from viz.app import slides
    root, _ = fake_deck
    full = video_frames(root / "deck" / "media" / "animation.mp4")
    dt = 1 / 15
    spans = [StepSpan(1.0 + dt, 1.6, 2.2), StepSpan(2.2 + dt, 2.8, 3.9)]
    slides.cut_clips(root / "deck" / "media" / "animation.mp4", spans, 15, tmp_path)
    second = video_frames(tmp_path / "step-2.mp4")
    assert len(second) == round(3.9 * 15) - round((2.2 + dt) * 15)
    assert differs(second[0], full[round((2.2 + dt) * 15)]) < 0.002
    assert differs(second[-1], full[round(3.9 * 15) - 1]) < 0.002
    assert differs(image(tmp_path / "step-2.png"), full[(round(2.8 * 15) + round(3.9 * 15) - 1) // 2]) < 0.002


def test_posters_equal_step_stills_and_differ_between_steps(fake_deck, tmp_path):
    from scenes import stills
    root, cls = fake_deck
    media = root / "deck" / "media"
    for k in range(3):
        stills.render_step_still(lambda **kw: cls(**kw), k, tmp_path / f"s{k}.png", "png")
    posters = [image(media / f"step-{k + 1}.png") for k in range(3)]
    still = [image(tmp_path / f"s{k}.png") for k in range(3)]
    for k in range(3):
        assert differs(posters[k], still[k]) < 0.002, k
        for j in range(3):
            if j != k:
                assert differs(posters[k], still[j]) > 0.005, (k, j)


def test_vector_stills_draw_the_same_frame(fake_deck, tmp_path, browser):
    """SVG and PDF stills, rasterised by Chromium, look like the PNG still of the same step."""
    from scenes import stills
    _, cls = fake_deck
    for fmt in ("png", "svg"):
        stills.render_step_still(lambda **kw: cls(**kw), 1, tmp_path / f"s.{fmt}", fmt)
    svg = (tmp_path / "s.svg").read_text()
    assert "<path" in svg and "<image" not in svg          # vectors, not an embedded bitmap
    assert "rgb(94.117647%,89.411765%,25.882353%)" in svg   # #F0E442 as RGB (Manim draws BGR into images)
    page = browser.new_page(viewport={"width": 854, "height": 480})
    page.set_content(f'<body style="margin:0"><img src="data:image/svg+xml;base64,'
                     f'{__import__("base64").b64encode(svg.encode()).decode()}" width="854" height="480"></body>')
    page.screenshot(path=str(tmp_path / "svg.png"))
    page.close()
    assert differs(image(tmp_path / "svg.png"), image(tmp_path / "s.png")) < 0.01
    stills.render_step_still(lambda **kw: cls(**kw), 1, tmp_path / "s.pdf", "pdf")
    pdf = (tmp_path / "s.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"20000101000000" in pdf      # a fixed date: same bytes


def test_notes_handout_and_same_bytes(fake_deck, tmp_path):
    from viz.app import slides
    root, cls = fake_deck
    html = (root / "deck" / "index.html").read_text()
    assert html.count("<section") == 1 + 3
    notes = re.findall(r'<aside class="notes">(.*?)</aside>', html, re.S)
    assert "y[2] = 2·2 = 4" in notes[2] and "Square 2 lights." in notes[2]
    assert "http://" not in html and "https://" not in html
    pdf = (root / "handout.pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 3
    slides.make_deck(lambda: cls(), tmp_path / "deck", "low", handout=tmp_path / "handout.pdf", progress=False)
    for path in sorted((root / "deck").rglob("*")):
        if path.is_file():
            again = tmp_path / "deck" / path.relative_to(root / "deck")
            assert again.read_bytes() == path.read_bytes(), path.name
    assert (tmp_path / "handout.pdf").read_bytes() == pdf
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary left


def test_deck_refuses_a_folder_it_did_not_write(tmp_path):
    from viz.app import slides
    from viz.app.registry import ParamError
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(ParamError, match="not a deck viz wrote"):
        slides.make_deck(lambda: None, tmp_path / "notes")
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"


def test_manim_slides_one_slide_per_step(tmp_path):
    pytest.importorskip("manim_slides")
    from scenes import stills
    name = stills.render_manim_slides(fake_scene_class(), {}, tmp_path / "slides", progress=False)
    config = (tmp_path / "slides" / f"{name}.json").read_text()
    assert config.count('"notes": "Square') == 3 and "y[3] = 3·2 = 6" in config


# ---- the homework convolution ------------------------------------------------------------------

def viz(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "viz", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture(scope="module")
def homework(tmp_path_factory):
    """The homework deck and the `--step k` stills, rendered at low quality through the command line."""
    root = tmp_path_factory.mktemp("homework")
    run = viz("slides", "animate", "conv", *HOMEWORK_ARGS, "-o", str(root / "deck"),
              "--handout", str(root / "handout.pdf"))
    assert run.returncode == 0, run.stderr
    from viz.app import registry
    kind = registry.get("animate conv")
    story = kind.build_story(kind.validate(HOMEWORK))
    return root, story


def test_homework_step_stills_equal_posters(homework):
    root, story = homework
    n = len(story.steps)
    run = viz("animate", "conv", *HOMEWORK_ARGS, "--step", "2", "-o", str(root / "still-2.png"))
    assert run.returncode == 0, run.stderr
    posters = [image(root / "deck" / "media" / f"step-{k}.png") for k in range(1, n + 1)]
    still = image(root / "still-2.png")
    assert differs(posters[1], still) < 0.001                      # the poster of step 2 is its still
    assert all(differs(p, still) > 0.01 for k, p in enumerate(posters) if k != 1)
    assert len(re.findall(rb"/Type\s*/Page\b", (root / "handout.pdf").read_bytes())) == n


@pytest.mark.parametrize("step", ["0", "99"])
def test_step_out_of_range_is_one_line(tmp_path, step):
    run = viz("animate", "conv", *HOMEWORK_ARGS, "--step", step, "-o", str(tmp_path / "s.png"))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr
    assert "--step: must be an integer in 1..3" in run.stderr and not (tmp_path / "s.png").exists()


def test_missing_reveal_is_one_line(tmp_path):
    run = viz("slides", "animate", "conv", "-o", str(tmp_path / "deck"), env={"VIZ_REVEAL_JS": str(tmp_path)})
    assert run.returncode == 2 and "npm install" in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert not list(tmp_path.iterdir())




def test_homework_deck_in_chromium_offline(homework, browser):
    root, story = homework
    n = len(story.steps)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    outside = []

    def route(r):
        if r.request.url.startswith(("file://", "data:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)               # the page and the speaker view's window
    page = context.new_page()
    page.goto((root / "deck" / "index.html").as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()")
    page.screenshot(path=str(root / "title.png"))
    assert story.formula[0] in page.inner_text(".title-slide")
    seen = []
    for press in range(n + 1):
        page.keyboard.press("ArrowRight")
        index = page.evaluate("Reveal.getIndices().h")
        seen.append(index)
        if press >= n:
            continue
        video = page.locator(f"#step-{index} video")
        src, poster = video.get_attribute("src"), video.get_attribute("poster")
        assert (root / "deck" / src).is_file() and (root / "deck" / poster).is_file()
        page.wait_for_function(f"document.querySelector('#step-{index} video').currentTime > 0.2",
                               timeout=15000)
        state = page.evaluate(f"(() => {{ const v = document.querySelector('#step-{index} video');"
                              f" return [v.readyState, v.error, v.loop]; }})()")
        assert state[0] >= 2 and state[1] is None and state[2] is False
        if index == 2:
            page.wait_for_function("document.querySelector('#step-2 video').ended", timeout=20000)
            page.screenshot(path=str(root / "step-2.png"))
    assert seen == list(range(1, n + 1)) + [n]          # → walks title + n steps, then stops
    notes = page.evaluate("Reveal.getSlideNotes(Reveal.getSlide(2))")
    total = next(line for line in story.steps[1].lines if line.role == "output")
    assert total.text in notes and total.text.startswith("y[2] = ")
    page.evaluate("Reveal.slide(2)")
    with context.expect_page() as opened:          # S: reveal.js's speaker view, from file://
        page.keyboard.press("s")
    speaker = opened.value
    speaker.wait_for_function(f"document.body.innerText.includes({total.text!r})", timeout=15000)
    assert outside == []
    context.close()


def test_homework_manim_slides_convert_to_html_and_pptx(tmp_path):
    pytest.importorskip("manim_slides")
    run = viz("slides", "animate", "conv", *HOMEWORK_ARGS, "--manim-slides", str(tmp_path / "slides"))
    assert run.returncode == 0, run.stderr
    [config] = (tmp_path / "slides").glob("*.json")
    convert = subprocess.run([str(Path(sys.executable).parent / "manim-slides"), "convert", "--folder",
                              str(tmp_path / "slides"), config.stem, str(tmp_path / "deck.html")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert convert.returncode == 0, convert.stderr
    html = (tmp_path / "deck.html").read_text()
    from viz.app import registry
    kind = registry.get("animate conv")
    story = kind.build_story(kind.validate(HOMEWORK))
    n = len(story.steps)
    assert len(re.findall(r"<section\b", html)) == n
    convert = subprocess.run([str(Path(sys.executable).parent / "manim-slides"), "convert", "--folder",
                              str(tmp_path / "slides"), config.stem, str(tmp_path / "deck.pptx")],
                             capture_output=True, text=True, cwd=tmp_path)
    assert convert.returncode == 0, convert.stderr
    from pptx import Presentation
    pptx = Presentation(str(tmp_path / "deck.pptx"))
    notes = [slide.notes_slide.notes_text_frame.text for slide in pptx.slides]
    assert len(notes) == n and all(step.narration in text for step, text in zip(story.steps, notes))


# ---- every gallery animation --------------------------------------------------------------------

def gallery_story_animations():
    from viz.app import registry
    gallery = tomllib.loads((ROOT / "viz" / "app" / "gallery.toml").read_text())
    for entry in gallery["figure"]:
        kind = registry.get(entry["kind"])
        if kind.command == "animate" and kind.story:
            yield pytest.param(entry["kind"], entry.get("params", {}), id=entry["name"])


@pytest.mark.parametrize("key, raw", list(gallery_story_animations()))
def test_gallery_slide_count_equals_story_steps(key, raw):
    """The scene begins exactly the Story's steps (a dry run, no frames drawn), and the deck has a
    title slide plus one slide per step."""
    from scenes import render, stills
    from viz.app import registry, slides
    kind = registry.get(key)
    values = kind.validate(raw)
    story = kind.build_story(values)
    params, _ = slides.scene_params(kind, values)
    cls = render.scene_class(kind.name)
    clocks = []

    def factory(**kw):
        scene = cls(**params, **kw)
        clocks.append(stills.StepClock(scene))
        return scene

    render.dry_run_scene(factory)
    assert len(clocks[0].spans()) == len(story.steps) > 0
    assert slides.deck_slides(story).count("<section") == len(story.steps) + 1


def test_single_file_deck_through_a_manifest_in_chromium(tmp_path, browser):
    """`slides.html` as a manifest format: the whole deck in one file (reveal.js inlined, clips, posters
    and captions as data: URIs), cached by the build like any file; it walks like the folder deck and
    asks nothing of the network, nor of the disk around it."""
    manifest = tmp_path / "notes.toml"
    manifest.write_text('[[figure]]\nname = "hw"\nkind = "animate conv"\nformats = ["slides.html"]\n'
                        'caption = "the homework"\n[figure.params]\ninput = 7\nchannels = 5\nkernel = 3\n'
                        'stride = 2\n')
    run = viz("build", str(manifest), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert run.returncode == 0, run.stderr
    deck = tmp_path / "out" / "hw.slides.html"
    again = viz("build", str(manifest), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert again.returncode == 0 and "nothing to render" in again.stderr, again.stderr   # cached
    from viz.app import registry
    kind = registry.get("animate conv")
    n = len(kind.build_story(kind.validate(HOMEWORK)).steps)
    context = browser.new_context()
    outside = []

    def route(r):
        url = r.request.url
        if url == deck.as_uri() or url.startswith("data:"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(deck.as_uri())
    page.wait_for_function("window.Reveal && Reveal.isReady()")
    assert page.locator("section").count() == n + 1
    for k in range(1, n + 1):
        page.keyboard.press("ArrowRight")
        assert page.evaluate("Reveal.getIndices().h") == k
        page.wait_for_function(f"document.querySelector('#step-{k} video').currentTime > 0.2", timeout=15000)
    assert outside == []
    context.close()
