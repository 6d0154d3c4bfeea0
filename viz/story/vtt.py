"""A WebVTT captions track from a Story: one cue per step, the step's narration over the step's time.

    cue k = timeline[k] = (start_k, end_k),  text = steps[k].narration (else its label)

The times are the Story's timeline (`Story.timeline(step_time, intro)`), the one every animation follows,
so a cue appears exactly while its step is on screen. A cue for the intro carries the title.
"""
from __future__ import annotations

from viz.story.core import Story


def timestamp(seconds: float) -> str:
    """WebVTT time: 00:01:02.345 (milliseconds, rounded)."""
    ms = int(round(float(seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _cue_text(text: str) -> str:
    # A cue may not contain "-->" or a blank line; "<" and "&" are markup in WebVTT.
    one = " ".join(text.split()).replace("-->", "→")
    return one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(story: Story, step_time: float, intro: float) -> str:
    """The captions track of the animation of `story` whose steps take weight * step_time seconds."""
    cues = ["WEBVTT", ""]
    if intro > 0:
        cues += ["intro", f"{timestamp(0)} --> {timestamp(intro)}", _cue_text(story.title), ""]
    for step, (start, end) in zip(story.steps, story.timeline(step_time, intro=intro)):
        cues += [f"step-{step.id}", f"{timestamp(start)} --> {timestamp(end)}",
                 _cue_text(step.narration or step.label), ""]
    return "\n".join(cues)


def step_track(step, duration: float) -> str:
    """The track of one step's clip (a slide): its narration over the whole clip."""
    return "\n".join(["WEBVTT", "", f"step-{step.id}", f"{timestamp(0)} --> {timestamp(duration)}",
                      _cue_text(step.narration or step.label), ""])


def parse_webvtt(text: str) -> list[tuple[str, float, float, str]]:
    """(id, start, end, text) of every cue: for tests and for tools that check a track against a video."""
    def seconds(ts: str) -> float:
        h, m, s = ts.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    blocks = [b.strip().splitlines() for b in text.split("\n\n")]
    if not blocks or blocks[0] != ["WEBVTT"]:
        raise ValueError("not a WebVTT file: the first line must be WEBVTT")
    cues = []
    for lines in blocks[1:]:
        if len(lines) < 3:
            continue
        start, _, end = lines[1].partition(" --> ")
        cues.append((lines[0], seconds(start), seconds(end), " ".join(lines[2:])))
    return cues
