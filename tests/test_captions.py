"""The captions track: one WebVTT cue per Story step, at the times the rendered video shows the step."""
from __future__ import annotations

import pytest

from viz.app import registry
from viz.story.vtt import parse_webvtt, timestamp, webvtt

pytest.importorskip("manim")
from scenes.render import dry_run, scene_class  # noqa: E402

CASES = [
    ("animate conv", dict(input=7, channels=5, kernel=3, stride=2)),
    ("animate conv-backward", dict(input=5, channels=1, kernel=3, stride=2)),
    ("animate bptt", dict(model="gated", steps=4)),
    ("animate training", dict(steps=200)),
]


def test_timestamps_and_escaping():
    assert timestamp(0) == "00:00:00.000" and timestamp(3723.4567) == "01:02:03.457"
    from viz.story.core import Step, Story
    story = Story("k", {}, "T", steps=(Step("a", "A", "x --> y <b> & c"),))
    cues = parse_webvtt(webvtt(story, 2.0, 1.0))
    assert cues == [("intro", 0.0, 1.0, "T"), ("step-a", 1.0, 3.0, "x → y &lt;b&gt; &amp; c")]


@pytest.mark.parametrize("key, raw", CASES, ids=[c[0] for c in CASES])
def test_cues_follow_the_scene_timeline(tmp_path, key, raw):
    kind = registry.get(key)
    values = kind.validate({**raw, "step_time": 2.0})
    out = tmp_path / "c.vtt"
    kind.render_to(values, out, "vtt")
    cues = parse_webvtt(out.read_text())
    story = kind.build_story(values)
    steps = [c for c in cues if c[0] != "intro"]
    assert [c[0] for c in steps] == [f"step-{s.id}" for s in story.steps]
    assert [c[3] for c in steps] == [" ".join(s.narration.split()).replace("&", "&amp;").replace("<", "&lt;")
                                     .replace(">", "&gt;") for s in story.steps]
    params, _ = kind.split(values)
    scene = dry_run(kind.name, {**params, "step_time": 2.0})
    assert len(scene.step_starts) == len(steps)
    for (cue_id, start, end, _), clock in zip(steps, scene.step_starts):
        assert abs(start - clock) <= 0.0015, (cue_id, start, clock)     # the scene began the step there
    assert scene.intro_time == scene_class(kind.name).intro_time


def test_every_slide_video_has_its_step_track(tmp_path):
    from viz.app.slides import deck_slides, write_step_captions
    from viz.story.core import Step, Story

    story = Story("k", {}, "T", steps=(Step("a", "A", "first"), Step("b", "B", "second")))
    html = deck_slides(story)
    assert html.count('<track kind="captions"') == 2 and 'src="media/step-2.vtt"' in html
    write_step_captions(story, [(15, 30, 45), (45, 60, 75)], 15, tmp_path)
    cues = parse_webvtt((tmp_path / "step-1.vtt").read_text())
    assert cues == [("step-a", 0.0, 3.0, "first")]          # step 1's clip starts at frame 0 (the intro)
    assert parse_webvtt((tmp_path / "step-2.vtt").read_text()) == [("step-b", 0.0, 2.0, "second")]
