"""The shipped conv-arithmetic set: it validates, every caption's sizes are the reference's, every case has
its transposed counterpart restoring the input size, and its static figures render."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from viz import conv as V
from viz.app.build import load_manifest

SET = Path(str(resources.files("viz.app") / "conv-arithmetic.toml"))


def test_the_set_validates_and_its_captions_hold():
    manifest = load_manifest(SET)
    entries = {e.name: e for e in manifest.entries}
    forward = [e for e in entries.values() if e.kind.key == "diagram conv"]
    assert len(forward) == 8
    for e in forward:
        v = e.values
        g = V.conv_geometry(v["input"], v["kernel"], v["stride"], v["padding"], v["dilation"])
        i, o = g.in_shape, g.out_shape
        assert f"{i[0]}x{i[1]} input" in e.caption and f"{o[0]}x{o[1]} output" in e.caption, e.caption
        unread = [r + 1 for r in g.unread(0)]
        assert ("never read" in e.caption) == bool(unread)
        # the animation and the transposed counterpart exist, and the transposed one restores i
        anim, back = entries[e.name + "-animation"], entries[e.name + "-transposed"]
        assert anim.caption == e.caption and anim.kind.key == "animate conv"
        t = back.values
        tg = V.conv_transpose_geometry(t["input"], t["kernel"], t["stride"], t["padding"], t["dilation"],
                                       t["output_padding"])
        assert tg.in_shape == o and tg.out_shape == i
        assert re.search(rf"= {i[0]}\)", back.caption), back.caption


def test_static_figures_of_the_set_render(tmp_path):
    from click.testing import CliRunner

    from viz.app.cli import cli

    manifest = load_manifest(SET)
    picked = [e for e in manifest.entries if e.name in ("padding-strides-odd", "padding-strides-odd-transposed")]
    for e in picked:
        out = tmp_path / f"{e.name}.svg"
        words = e.kind.command_line(e.values, "svg", str(out)).split()[1:]
        result = CliRunner().invoke(cli, words)
        assert result.exit_code == 0, result.output
        assert out.read_text().count('<g id="text_') == 9       # 3x3 outputs: 9 windows; 3x3 inputs: 9 stamps
