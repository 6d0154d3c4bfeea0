"""Every caption claim of every figure in the shipped manifests holds against the numbers its Story
carries, and every figure kind but the text report has a Story (so `-o fig.story.json` works)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from viz.app import registry
from viz.app.build import load_manifest

MANIFESTS = ["gallery.toml", "conv-arithmetic.toml"]


def test_every_figure_kind_has_a_story():
    assert [k for k, kind in registry.KINDS.items() if not kind.story] == ["shape"]   # a text report


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_claim_of_every_shipped_figure_holds(name):
    manifest = load_manifest(Path(str(resources.files("viz.app") / name)))
    checked = 0
    for entry in manifest.entries:
        if not entry.kind.story:
            continue
        story = entry.kind.build_story(entry.values)
        assert story.kind == entry.kind.key
        assert story.alt, entry.name
        failed = story.failed_claims()
        assert not failed, (entry.name, [(c.id, c.lhs, c.relation, c.rhs) for c in failed])
        checked += len(story.claims)
    assert checked > 0


@pytest.mark.parametrize("key, raw", [
    ("animate bptt", {"model": "attention", "k": 2}), ("animate bptt", {"model": "attention", "k": "inf"}),
    ("diagram attention-rnn", {"view": "backward", "steps": 12, "base_case": "mask"}),
    ("diagram attention-rnn", {"view": "backward", "steps": 12, "base_case": "zeros"}),
])
def test_every_attention_figure_states_its_base_case(key, raw):
    kind = registry.get(key)
    story = kind.build_story(kind.validate(raw))
    words = " ".join([story.title, *story.formula, *(c.text for c in story.captions)]).lower()
    assert "base case" in words
    if raw.get("base_case") == "mask" or raw.get("k") == "inf":
        assert "mask" in words
