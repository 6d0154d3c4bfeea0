"""A layout that scales: at 1080p no two text or cell objects overlap, all lie inside the frame, and every
number and line keeps digits at least style.MIN_GLYPH_PX (14) pixels tall; sizes the layout cannot draw
legibly are refused by the registry with one line.

The matrix covers every parameter limit of the conv animations (input up to the registry's max,
channels 8, kernel 16, stride/padding/dilation 16, --values float, --bias): each case is either drawn
(dry run, the mobjects on screen after every step's transition are checked) or refused.
"""
from __future__ import annotations

import numpy as np
import pytest

from scenes import conv_layout, style
from viz.app.registry import ParamError, get

PX = conv_layout.PX_1080
HALF_W, HALF_H = conv_layout.FRAME_W / 2, conv_layout.FRAME_H / 2
KIND = get("animate conv-backward")

# drawn (a dry run each, ~1-4 s): the homework, the README's 2-D example, 8x8 stride 2 (the
# flip(w) labels once overlapped), float data with bias, the largest legible sizes found
DRAWN = {
    "homework-1d": dict(input="7", channels=5, kernel=3, stride=2),
    "2d-dilated": dict(input="7x7", channels=1, dilation=2),
    "8x8-stride-2": dict(input="8x8", kernel=3, stride=2, channels=1),
    "8x8-stride-2-channels-2": dict(input="8x8", kernel=3, stride=2, channels=2),
    "1d-float-bias": dict(input="5", channels=2, kernel=3, padding=1, values="float", bias=True),
    "2d-float-bias-channels": dict(input="4x4", channels=2, kernel=2, values="float", bias=True),
    "1d-channels-8": dict(input="6", channels=8, kernel=2, stride=2),
    "1d-kernel-16": dict(input="16", channels=1, kernel=16),
    "2d-padding-dilation": dict(input="5x5", channels=1, kernel=2, padding=1, dilation=3),
    # several filters (and groups): the backward, and the forward drawn by the same part layout
    "1d-filters-4-groups-2": dict(input="6", channels=4, filters=4, groups=2, kernel=3, stride=2, bias=True),
    "2d-filters-3": dict(input="4x4", channels=1, filters=3, kernel=2, stride=2),
    "forward-1d-depthwise-8": dict(kind="animate conv", input="6", channels=8, filters=8, groups=8, kernel=2,
                                   stride=2),
    "forward-2d-filters-3-bias": dict(kind="animate conv", input="5x5", channels=2, filters=3, kernel=3,
                                      stride=1, bias=True),
}
# every limit of the registry: refused unless the layout can draw it legibly
LIMITS = {
    "input-32-1d": dict(input="32", channels=1, kernel=3),
    "input-32-1d-channels-8-float": dict(input="32", channels=8, kernel=5, padding=2, values="float"),
    "input-32x32": dict(input="32x32", channels=1, kernel=3),
    "input-16x16-channels-8": dict(input="16x16", channels=8, kernel=5, padding=2, values="float"),
    "kernel-16x16": dict(input="16x16", channels=1, kernel=16),
    "stride-16": dict(input="32", channels=2, kernel=2, stride=16),
    "padding-16": dict(input="4", channels=1, kernel=3, padding=16),
    "dilation-16": dict(input="32", channels=1, kernel=2, dilation=16),
    "8x8-stride-2-channels-5": dict(input="8x8", kernel=3, stride=2),
    "1d-float-9-channels-3": dict(input="9", channels=3, kernel=4, padding=2, values="float", bias=True),
    "2d-channels-5": dict(input="6x6", channels=5, kernel=3, stride=2, padding=1, dilation=2),
    "filters-8-1d": dict(input="8", channels=8, filters=8, kernel=3),
    "filters-8-depthwise-1d-float": dict(input="12", channels=8, filters=8, groups=8, kernel=3, values="float"),
    "filters-8-2d": dict(input="6x6", channels=2, filters=8, groups=2, kernel=3),
    "forward-filters-8-2d": dict(kind="animate conv", input="6x6", channels=2, filters=8, groups=2, kernel=3),
    "forward-filters-8-1d-float": dict(kind="animate conv", input="16", channels=8, filters=8, kernel=3,
                                       values="float", bias=True),
}


def _kind(raw):
    return get(raw.get("kind", KIND.key))


def _values(raw):
    v = _kind(raw).validate({k: v for k, v in raw.items() if k != "kind"})
    v.pop("quality", None)
    return v


@pytest.fixture(scope="module")
def drawn():
    from scenes.render import dry_run
    return {name: dry_run(_kind(raw).name, _values(raw)) for name, raw in DRAWN.items()}


def _overlaps(boxes: np.ndarray, pad: float = 0.0):
    """Pairs (i, j) of boxes [x0, y0, x1, y1] whose interiors intersect (after shrinking by pad)."""
    b = boxes + np.array([pad, pad, -pad, -pad])
    ox = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    oy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hit = (ox > 0) & (oy > 0)
    np.fill_diagonal(hit, False)
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(hit)))]


def _check_screen(entries, where: str):
    """entries: (kind, name, x0, y0, x1, y1, digit height) of everything on screen at one step."""
    problems = []
    for kind, name, x0, y0, x1, y1, glyph in entries:
        if x0 < -HALF_W or x1 > HALF_W or y0 < -HALF_H or y1 > HALF_H:
            problems.append(f"{where}: {name} leaves the frame ({x0:.2f}, {y0:.2f}, {x1:.2f}, {y1:.2f})")
        if kind in ("text", "line", "numbers") and glyph * PX < style.MIN_GLYPH_PX - 0.01:
            problems.append(f"{where}: {name} digits {glyph * PX:.1f} px < {style.MIN_GLYPH_PX} px")
    # texts and cells must not overlap each other (numbers sit inside their cells by design; one
    # "numbers" mobject merges a grid's numbers, so its box is the grid's: not compared)
    solid = [e for e in entries if e[0] in ("text", "line", "cell")]
    boxes = np.array([e[2:6] for e in solid], dtype=float).reshape(-1, 4)
    for i, j in _overlaps(boxes, pad=0.004):
        problems.append(f"{where}: {solid[i][1]!r} overlaps {solid[j][1]!r}")
    return problems


@pytest.mark.parametrize("name", list(DRAWN))
def test_backward_layout_at_1080p(drawn, name):
    scene = drawn[name]
    assert conv_layout.refusal(scene.story) is None
    assert len(scene.screen) == len(scene.story.steps)
    full = 0
    problems = []
    for k, entries in enumerate(scene.screen):
        kinds = {e[0] for e in entries}
        assert "line" in kinds, f"step {k + 1} shows no text"
        if "cell" in kinds:
            full += 1
            n_cells = sum(1 for e in entries if e[0] == "cell")
            assert n_cells >= 3
        problems += _check_screen(entries, f"{name} step {k + 1} ({scene.story.steps[k].id})")
    assert full >= 2, "the whole screen was checked at fewer than two steps"
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("name", list(DRAWN))
def test_step_starts_follow_the_timeline(drawn, name):
    scene = drawn[name]
    starts = np.array(scene.step_starts)
    expected = np.array([a for a, _ in scene.timeline])
    assert starts.shape == expected.shape
    assert np.max(np.abs(starts - expected)) <= 1.0 / 15 + 1e-9   # within one frame at 480p15


def test_the_checks_can_fail():
    """The overlap, frame and glyph checks flag what they should (so a pass means something)."""
    ok = ("cell", "a", 0.0, 0.0, 0.5, 0.5, 0.0)
    assert _check_screen([ok, ("cell", "b", 0.6, 0.0, 1.0, 0.5, 0.0)], "t") == []
    assert any("overlaps" in p for p in _check_screen([ok, ("text", "b", 0.4, 0.4, 1.0, 1.0, 0.2)], "t"))
    assert any("leaves the frame" in p for p in _check_screen([("cell", "c", 7.0, 0.0, 7.2, 0.2, 0.0)], "t"))
    assert any("px" in p for p in _check_screen([("line", "d", 0.0, 0.0, 1.0, 0.1, 0.09)], "t"))


def test_the_frame_is_used():
    """The homework's panels and lines fill most of the body: no 60 % of the frame left empty."""
    from viz.story.conv_backward import backward_story
    story = backward_story(_values(DRAWN["homework-1d"]))
    for part, pp in conv_layout.plan(story).items():
        if part == "never_read":
            continue
        right = max(p.x + p.cols * pp.pitch for p in pp.panels)
        low = min(p.y - p.rows * pp.pitch for p in pp.panels)
        width_used = (right - (-HALF_W + style.FRAME_MARGIN)) / (conv_layout.FRAME_W - 2 * style.FRAME_MARGIN)
        assert width_used > 0.5 or pp.cell >= style.CELL_SIZE * 0.7, (part, width_used, pp.cell)
        assert low < 0.5, (part, low)      # the panels reach below the middle of the frame


@pytest.mark.parametrize("name", list(LIMITS))
def test_limits_are_drawn_legibly_or_refused_in_one_line(name):
    given = LIMITS[name]
    kind = _kind(given)
    raw = {k: v for k, v in given.items() if k != "kind"}
    from viz.app.registry import _check_conv_animation
    values = {p.name: p.default for p in kind.params}
    values.update({p.name: p.parse(raw[p.name]) for p in kind.params if p.name in raw})
    _check_conv_animation(values)                                    # the geometry itself is valid
    story = kind.build_story(values)
    why = conv_layout.refusal(story)
    if why is None:                                                  # drawn: check every step on screen
        from scenes.render import dry_run
        plan = conv_layout.plan(story)
        assert min(pp.min_glyph_px() for pp in plan.values()) >= style.MIN_GLYPH_PX
        scene = dry_run(kind.name, _values(given))
        problems = [p for k, entries in enumerate(scene.screen) for p in _check_screen(entries, f"{name} step {k + 1}")]
        assert not problems, "\n".join(problems[:20])
    else:
        with pytest.raises(ParamError) as err:
            kind.validate(raw)
        msg = str(err.value)
        assert "\n" not in msg and "--input" in msg and f"{style.MIN_GLYPH_PX} px" in msg, msg


def test_refusal_before_manim_and_exit_status_2(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "big.mp4"
    code = ("import sys\nfrom viz.app.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
            "except SystemExit as e:\n    rc = e.code\n"
            "print('manim' in sys.modules, file=sys.stderr)\nsys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, "animate", "conv-backward", "--input", "32", "--channels", "8",
                        "--kernel", "5", "--padding", "2", "--values", "float", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("viz: error: --input:") and "legibly" in lines[0]
    assert "Traceback" not in r.stderr
    assert lines[-1] == "False"            # refused before Manim was imported
    assert not out.exists()
