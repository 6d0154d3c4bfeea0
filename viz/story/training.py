"""The training Story: why the loss spikes, and what clipping does (MATH.md section 5).

The same run of `viz.train.clipping_comparison` twice, without and with gradient-norm clipping (same
seed: same initial weights, same batches). Series (x = the reader's step, 1-based; long runs keep each
bin's maximum, so no spike disappears): "loss" and "loss-clipped" (linear, the loss panel), "grad" and
"grad-clipped" (log, the gradient panel: ‖g‖ before clipping, `GRAD_NORM_LABEL`), and the reference
lines "ln4" and "clip".

Steps, the phases worth a pause: "start" (loss ≈ ln 4, accuracy ≈ 25%), one step per labelled spike in
time order (`viz.train.labelled_spikes`, the plot's labels: one definition), "rest" (the rest of the
unclipped run), "clipped" (the clipped run over it). `Step.data["until"]` is the step (x) through
which the unclipped curves are drawn; "clipped" also draws the clipped run. A spike step lights its
peak on "loss" and the step that caused it on "grad" (role "highlight").
"""
from __future__ import annotations

import math

import numpy as np

from viz import train as tr
from viz.story.core import Caption, Claim, Line, Lit, Series, Step, Story
from viz.text import fmt_decade, fmt_norm, fmt_value

GRAD_NORM_NAME = "gradient norm ‖g‖"
BEFORE_CLIPPING = "(before clipping)"
GRAD_NORM_LABEL = f"{GRAD_NORM_NAME} {BEFORE_CLIPPING}"      # the plot's label too
LN4_LABEL = "ln 4 ≈ 1.386 (chance)"
MAX_POINTS = 800                 # longer runs are binned (max per bin) for drawing
MODEL_NAMES = {"vanilla": "vanilla tanh RNN", "gated": "gated RNN"}
ROUNDING = 1e-9


def binned(values: np.ndarray, n_bins: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(first 0-based step of each bin, max of each bin) for at most n_bins bins (identity when short)."""
    n = len(values)
    if n <= n_bins:
        return np.arange(n), values
    edges = np.linspace(0, n, n_bins + 1).astype(int)
    return edges[:-1], np.maximum.reduceat(values, edges[:-1])


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _curve(name, label, role, run, values, scale, axis) -> Series:
    end = run.steps if run.diverged_at is None else run.diverged_at + 1
    steps, ys = binned(np.asarray(values[:end], dtype=float))
    return Series(name, label, role, tuple(float(s + 1) for s in steps), tuple(float(v) for v in ys), scale, **axis)


def _axes(runs, clip: float, n_steps: int) -> tuple[dict, dict]:
    """The loss panel's and the gradient panel's axes (limits, ticks, labels), shared by both runs."""
    finite = np.concatenate([r.loss[np.isfinite(r.loss)] for r in runs])
    loss_top = max(tr.LN4, float(finite.max())) * 1.2
    ystep = _nice_step(loss_top, 4)
    loss_ticks = tuple(float(v) for v in np.arange(0.0, loss_top + 1e-12, ystep))
    norms = np.concatenate([r.grad_norm[np.isfinite(r.grad_norm) & (r.grad_norm > 0)] for r in runs])
    lo = math.floor(math.log10(min(float(norms.min()), clip)))
    hi = max(math.ceil(math.log10(max(float(norms.max()), clip))), lo + 1)
    xstep = max(1.0, _nice_step(n_steps))
    x_ticks = tuple(float(v) for v in np.arange(0.0, n_steps + 1e-9, xstep))
    x_axis = dict(x_ticks=x_ticks, x_tick_labels=tuple(f"{v:g}" for v in x_ticks))
    loss_axis = dict(limits=(0.0, loss_top), ticks=loss_ticks, tick_labels=tuple(f"{v:g}" for v in loss_ticks),
                     **x_axis)
    grad_axis = dict(limits=(10.0 ** lo, 10.0 ** hi), ticks=tuple(10.0 ** d for d in range(lo, hi + 1)),
                     tick_labels=tuple(fmt_decade(d) for d in range(lo, hi + 1)), **x_axis)
    return loss_axis, grad_axis


def _at(series: Series, step: int) -> float:
    """The x of `series` whose point shows the reader's step `step` (its bin, for a binned run)."""
    xs = np.asarray(series.x)
    return float(xs[np.searchsorted(xs, step, side="right") - 1])


def _spike_step(run, spike, index: int, median: float, clip: float, loss: Series, grad: Series):
    above = "above ln 4" if spike.loss > tr.LN4 else "below ln 4"
    lowest = float(np.min(run.loss[:spike.start]))
    lines = (Line(f"step {spike.step + 1}: loss {spike.loss:.2f} ({above}), "
                  f"{spike.loss - lowest:.2f} above its lowest so far", "loss", (spike.loss, spike.loss - lowest)),
             Line(f"exploding gradient: ‖g‖ = {fmt_norm(spike.grad_norm)} at step {spike.cause_step + 1}, "
                  f"{fmt_value(spike.grad_norm / median, integer=True)}× the median", "gradient",
                  (spike.grad_norm, spike.grad_norm / median)))
    step = Step(f"spike-{index + 1}", f"spike at step {spike.step + 1}",
                f"A spike: at step {spike.step + 1} the loss jumps to {spike.loss:.2f}, after a gradient of norm "
                f"{fmt_norm(spike.grad_norm)} at step {spike.cause_step + 1}.", part="unclipped", weight=1.5,
                lit=(Lit("loss", "highlight", (_at(loss, spike.step + 1),)),
                     Lit("grad", "highlight", (_at(grad, spike.cause_step + 1),))),
                lines=lines, data={"until": spike.step + 1, "spike": spike.step, "cause": spike.cause_step})
    window = run.grad_norm[spike.start - 1:spike.step]
    claims = [Claim(f"spike-{spike.step + 1}-jump", f"step {spike.step + 1} is a spike: more than "
                    f"{tr.SPIKE_JUMP:g} above the lowest loss before it", spike.loss - lowest, ">", tr.SPIKE_JUMP),
              Claim(f"spike-{spike.step + 1}-cause", f"‖g‖ at step {spike.cause_step + 1} is the largest of the "
                    "steps leading up to the spike", spike.grad_norm, "==", float(np.max(window))),
              Claim(f"spike-{spike.step + 1}-exploding", "the gradient that caused it is above the median",
                    spike.grad_norm, ">", median)]
    if spike.grad_norm > clip:
        claims.append(Claim(f"spike-{spike.step + 1}-clipped", f"clipping at {clip:g} would scale that step down",
                            spike.grad_norm, ">", clip))
    return step, claims


def training_story(values: dict) -> Story:
    """The Story of `viz animate training` for validated values (model, clip, steps, seed)."""
    model, clip = values.get("model", "vanilla"), values.get("clip", tr.CLIP)
    n_steps, seed = values.get("steps", tr.STEPS), values.get("seed", 0)
    unclipped, clipped = tr.clipping_comparison(model=model, clip=clip, steps=n_steps, seed=seed)
    cfg = unclipped.config
    loss_axis, grad_axis = _axes((unclipped, clipped), clip, n_steps)
    span = (1.0, float(n_steps))
    series = (
        _curve("loss", "loss without clipping", "text", unclipped, unclipped.loss, "linear", loss_axis),
        _curve("loss-clipped", f"loss clipped at ‖g‖ ≤ {clip:g}", "output", clipped, clipped.loss, "linear", loss_axis),
        _curve("grad", GRAD_NORM_LABEL, "gradient", unclipped, unclipped.grad_norm, "log", grad_axis),
        _curve("grad-clipped", f"{GRAD_NORM_LABEL}, clipped run", "output", clipped, clipped.grad_norm, "log", grad_axis),
        Series("ln4", LN4_LABEL, "muted", span, (tr.LN4, tr.LN4), "linear", **loss_axis),
        Series("clip", f"clip = {clip:g}", "kernel", span, (clip, clip), "log", **grad_axis))
    median = float(np.nanmedian(unclipped.grad_norm))
    loss0, acc0 = unclipped.initial_loss, float(unclipped.accuracy[0])
    steps = [Step("start", "start", f"Step 1: the loss is {loss0:.3f} ≈ ln 4 and the accuracy {100 * acc0:.0f}%, "
                  "chance for four classes.", part="start",
                  lit=(Lit("loss", "highlight", (1.0,)),),
                  lines=(Line(f"step 1: loss {loss0:.3f} ≈ ln 4 = {tr.LN4:.3f}, accuracy {100 * acc0:.0f}% (chance 25%)",
                              "text", (loss0, acc0)),), data={"until": 1})]
    captions = [Caption(f"A {MODEL_NAMES[model]} on the temporal-order task (T = {cfg['T']}, {cfg['optimizer'].upper()} "
                        f"lr {cfg['lr']:g}, seed {seed}): the loss starts at {loss0:.3f} ≈ ln 4, chance for four "
                        "classes.",
                        (Claim("starts-at-ln4", "the initial loss is ln 4 (chance)", abs(loss0 - tr.LN4), "<", 0.05,
                               "|loss[1] − ln 4|"),))]
    spikes = sorted(tr.labelled_spikes(unclipped), key=lambda s: s.step)     # the plot's labels, in time order
    spike_claims = []
    for i, spike in enumerate(spikes):
        step, claims = _spike_step(unclipped, spike, i, median, clip, series[0], series[2])
        steps.append(step)
        spike_claims += claims
    n_all = len(unclipped.spikes())
    worst = max(unclipped.loss[np.isfinite(unclipped.loss)][1:], default=loss0)
    if spikes:
        captions.append(Caption(
            f"Without clipping: {n_all} spike{'s' if n_all != 1 else ''} (loss more than {tr.SPIKE_JUMP:g} above its "
            f"lowest value so far), each labelled with the largest ‖g‖ of the steps leading up to it; max loss "
            f"{worst:.2f}.", tuple(spike_claims)))
        steps.append(Step("rest", "the rest of the run", f"The rest of the run without clipping: {n_all} "
                          f"spike{'s' if n_all != 1 else ''}, max loss {worst:.2f}.", part="unclipped",
                          lines=(Line(f"without clipping: {n_all} spike{'s' if n_all != 1 else ''}, max loss {worst:.2f}",
                                      "text", (float(n_all), worst)),), data={"until": n_steps}))
    else:
        k = int(np.nanargmax(unclipped.grad_norm))
        top = float(unclipped.grad_norm[k])
        captions.append(Caption(f"Without clipping this run has no spike: the largest ‖g‖ is {fmt_norm(top)}.",
                                (Claim("no-spike", "no spike without clipping", float(n_all), "==", 0.0),)))
        steps.append(Step("no-spike", "no spike", f"No spike without clipping: the largest ‖g‖ is {fmt_norm(top)} "
                          f"at step {k + 1}.", part="unclipped", lit=(Lit("grad", "highlight", (_at(series[2], k + 1),)),),
                          lines=(Line(f"no spike without clipping: largest ‖g‖ = {fmt_norm(top)} at step {k + 1}",
                                      "gradient", (top,)),), data={"until": n_steps}))
    steps.append(_clipped_step(clipped, clip, cfg["lr"], n_steps))
    captions.append(_clipped_caption(clipped, clip, cfg["lr"]))
    alt = (f"Two panels over {n_steps} training steps of a {MODEL_NAMES[model]}: the loss, from {loss0:.2f} ≈ ln 4"
           + (f", spiking to {spikes[-1].loss:.2f} at step {spikes[-1].step + 1} without clipping" if spikes else "")
           + f"; below, the gradient norm {BEFORE_CLIPPING} on a log scale with the clip value {clip:g}.")
    params = {"model": model, "clip": clip, "steps": n_steps, "seed": seed}
    return Story("animate training", params, f"Why the training loss spikes: a {MODEL_NAMES[model]}",
                 series=series, steps=tuple(steps), captions=tuple(captions), alt=alt,
                 description=" ".join(c.text for c in captions))


def _clipped_step(clipped, clip: float, lr: float, n_steps: int) -> Step:
    n_spikes, n_clipped = len(clipped.spikes()), int(clipped.clipped.sum())
    worst = max(clipped.loss[np.isfinite(clipped.loss)][1:], default=clipped.initial_loss)
    if n_clipped == 0:
        first = f"clipped at ‖g‖ ≤ {clip:g}: the gradient norm never reaches {clip:g}, the runs are the same"
    elif n_spikes == 0:
        first = f"clipped at ‖g‖ ≤ {clip:g}: same weights, same batches, no spike (max loss {worst:.2f})"
    else:
        first = f"clipped at ‖g‖ ≤ {clip:g}: still {n_spikes} spike{'s' if n_spikes > 1 else ''} (max loss {worst:.2f})"
    if n_clipped:
        second = (f"‖g‖ is drawn before clipping: above {clip:g} on {n_clipped} steps, each scaled down to "
                  f"‖Δθ‖ = lr·{clip:g} = {lr * clip:g}")
    else:
        second = f"‖g‖ (drawn before clipping) stays below {clip:g} at every step: clipping never acts"
    return Step("clipped", "clipped run", first[0].upper() + first[1:] + ".", part="clipped", weight=2.0,
                lines=(Line(first, "output", (float(n_spikes), worst)), Line(second, "muted", (float(n_clipped),))),
                data={"until": n_steps})


def _clipped_caption(clipped, clip: float, lr: float) -> Caption:
    n_spikes, n_clipped = len(clipped.spikes()), int(clipped.clipped.sum())
    steps = clipped.step_norm[np.isfinite(clipped.step_norm)]
    claims = [Claim("clip-bounds-steps", "clipping bounds every update: ‖Δθ‖ ≤ lr·clip", float(steps.max()), "<=",
                    lr * clip * (1 + ROUNDING), "max ‖Δθ‖", "lr·clip"),
              Claim("before-clipping", "the norm drawn is before clipping: above the clip exactly where it was scaled",
                    float(np.sum(clipped.grad_norm[:len(steps)] > clip)), "==", float(n_clipped),
                    "steps with ‖g‖ > clip", "steps clipped")]
    if n_spikes == 0:
        claims.append(Claim("clipped-no-spike", "the clipped run has no spike", float(n_spikes), "==", 0.0))
    verdict = ("no spike" if n_spikes == 0 else f"still {n_spikes} spike{'s' if n_spikes != 1 else ''}")
    return Caption(f"Clipped at ‖g‖ ≤ {clip:g} (same weights, same batches): {verdict}. The gradient norm is "
                   f"drawn {BEFORE_CLIPPING}, so it sits above {clip:g} on the {n_clipped} steps that were scaled "
                   f"down to ‖Δθ‖ = lr·{clip:g}.", tuple(claims))
