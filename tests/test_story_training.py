"""The training Story (viz.story.training) against viz.train: curves, spikes, claims, JSON.

The two runs are recomputed here with `viz.train.train`; the spikes are checked against the rule
written out again (loss more than SPIKE_JUMP above the running minimum), not against the Story's code.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from viz import train as tr
from viz.story.core import Story
from viz.story.training import BEFORE_CLIPPING, GRAD_NORM_LABEL, binned, training_story

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = {"model": "vanilla", "clip": tr.CLIP, "steps": tr.STEPS, "seed": 0}


@pytest.fixture(scope="module")
def default():
    return training_story(DEFAULT), tr.clipping_comparison(**DEFAULT)


def series(story):
    return {s.name: s for s in story.series}


def test_curves_are_the_runs_records(default):
    story, (unclipped, clipped) = default
    s = series(story)
    steps = tuple(float(k) for k in range(1, tr.STEPS + 1))
    for name, values in (("loss", unclipped.loss), ("loss-clipped", clipped.loss), ("grad", unclipped.grad_norm),
                         ("grad-clipped", clipped.grad_norm)):
        assert s[name].x == steps
        np.testing.assert_array_equal(s[name].y, values)
    assert s["grad"].scale == "log" and s["loss"].scale == "linear"
    assert s["grad"].label == GRAD_NORM_LABEL and BEFORE_CLIPPING in s["grad-clipped"].label
    assert s["ln4"].y == (tr.LN4, tr.LN4) and s["clip"].y == (tr.CLIP, tr.CLIP)
    lo, hi = s["grad"].limits
    assert lo <= min(np.nanmin(unclipped.grad_norm), tr.CLIP) and hi >= np.nanmax(unclipped.grad_norm)
    assert s["loss"].limits[1] >= np.nanmax(unclipped.loss)


def test_spike_steps_follow_the_rule_in_time_order(default):
    story, (unclipped, _) = default
    loss = unclipped.loss
    spikes = [st for st in story.steps if st.id.startswith("spike-")]
    assert [st.data["spike"] for st in spikes] == [112, 232]          # steps 113 and 233, as the plot labels
    for st in spikes:
        peak, cause = st.data["spike"], st.data["cause"]
        assert loss[peak] > np.min(loss[:peak]) + tr.SPIKE_JUMP        # the rule, written out again
        assert cause < peak and unclipped.grad_norm[cause] == pytest.approx(st.lines[1].numbers[0])
        assert st.lit_cells("loss", "highlight") == (float(peak + 1),)
        assert st.lit_cells("grad", "highlight") == (float(cause + 1),)
        assert st.lines[0].numbers[0] == loss[peak]
        assert f"step {peak + 1}:" in st.lines[0].text and f"at step {cause + 1}" in st.lines[1].text
    assert [st.id for st in story.steps] == ["start", "spike-1", "spike-2", "rest", "clipped"]
    assert story.steps[0].lines[0].numbers == (unclipped.initial_loss, unclipped.accuracy[0])
    untils = [st.data["until"] for st in story.steps]
    assert untils == sorted(untils) and untils[-1] == tr.STEPS


CASES = [{**DEFAULT, "seed": 3, "steps": 250}, {**DEFAULT, "model": "gated", "steps": 40},
         {**DEFAULT, "clip": 0.05, "steps": 150}, {**DEFAULT, "clip": 50.0, "steps": 150},
         {**DEFAULT, "steps": 1}, {**DEFAULT, "steps": 2, "seed": 5}]


@pytest.mark.parametrize("values", CASES)
def test_every_claim_holds_and_is_about_the_runs(values):
    story = training_story(values)
    assert story.claims and not story.failed_claims(), [(c.id, c.lhs, c.rhs) for c in story.failed_claims()]
    unclipped, clipped = tr.clipping_comparison(**values)
    claims = {c.id: c for c in story.claims}
    assert claims["starts-at-ln4"].lhs == pytest.approx(abs(unclipped.loss[0] - np.log(4)))
    assert claims["before-clipping"].rhs == clipped.clipped.sum()
    assert claims["clip-bounds-steps"].lhs == pytest.approx(np.nanmax(clipped.step_norm))
    assert ("clipped-no-spike" in claims) == (not clipped.spikes())
    n_spike_steps = sum(st.id.startswith("spike-") for st in story.steps)
    assert n_spike_steps == len(tr.labelled_spikes(unclipped))
    assert ("no-spike" in claims) == (not unclipped.spikes())


def test_a_false_claim_would_fail(default):
    story, _ = default
    assert story.claims and not story.failed_claims()
    claim = next(c for c in story.claims if c.id.endswith("-jump"))
    assert claim.holds() and not replace(claim, lhs=tr.SPIKE_JUMP / 2).holds()


def test_long_runs_are_binned_keeping_every_spike():
    values = np.zeros(2000)
    values[1234] = 5.0
    x, y = binned(values)
    assert len(x) == 800 and y.max() == 5.0 and x[np.argmax(y)] <= 1234 < x[np.argmax(y) + 1]
    x, y = binned(values[:300])
    assert len(x) == 300


def test_json_round_trip_and_command_line(tmp_path):
    values = {**DEFAULT, "model": "gated", "steps": 30}
    story = training_story(values)
    assert Story.from_json(story.to_json()) == story
    out = tmp_path / "t.story.json"
    subprocess.run([sys.executable, "-m", "viz", "animate", "training", "--model", "gated", "--steps", "30",
                    "-o", str(out)], check=True, cwd=ROOT)
    data = json.loads(out.read_text())
    assert data["kind"] == "animate training" and Story.from_dict(data) == story
