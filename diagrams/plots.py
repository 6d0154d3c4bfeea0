"""Training curves on the temporal-order task: without vs with gradient-norm clipping (matplotlib).

    render_training_plot({"model": "vanilla", "clip": 1.0, "steps": 1000, "seed": 0},
                         Path("training.svg"), "svg")

Two columns (the same run without and with clipping) and three rows sharing the step axis:

    loss            with the ln 4 reference (chance) and the spikes marked, the largest labelled with
                    the gradient norm that caused them
    gradient norm   before clipping, log scale, with the clip value; the steps that caused the
                    labelled spikes are marked
    accuracy        with the 25% reference (chance)

The numbers come from `viz.train` (training and the spike rule); this module only draws them.
Steps are shown 1-based (step 1 is the fresh model's loss), like every index a person reads.

Deterministic output: a fixed `svg.hashsalt`, no dates or software versions in the metadata, text
drawn as paths. matplotlib is imported inside the functions (importing viz never loads it) and only
through `matplotlib.figure.Figure` with an Agg canvas: no pyplot, no global figure state.
"""
from __future__ import annotations

from pathlib import Path

from diagrams.style import LIGHT
from viz.io import atomic_path
from viz.text import fmt_norm

FORMATS = ("svg", "png", "pdf")

# Colours (light theme, shared roles): the gradient is reddish purple everywhere, spikes are marked
# in vermillion (the animations' loss/warning colour), the clip value is a parameter (orange).
COLORS = {
    "background": LIGHT.background,
    "text": LIGHT.text,
    "muted": LIGHT.muted,
    "loss": LIGHT.text,
    "accuracy": LIGHT.role("state").line,
    "grad": LIGHT.role("gradient").line,
    "spike": LIGHT.role("never_read").line,
    "clip": LIGHT.role("parameter").line,
}
FONT_SIZE = 12                   # a 10 in wide figure shown 700 px wide: about 12 px text

_RC = {
    "svg.hashsalt": "viz-training",      # stable ids in the SVG
    "svg.fonttype": "path",              # text as paths: same picture without the fonts installed
    "font.family": "DejaVu Sans",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "axes.edgecolor": LIGHT.muted,
    "axes.labelcolor": LIGHT.text,
    "xtick.color": LIGHT.muted,
    "ytick.color": LIGHT.muted,
    "text.color": LIGHT.text,
    "path.simplify": False,              # keep every step's value (the spikes are single steps)
}
_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    "png": {"Software": None},
}
MODEL_NAMES = {"vanilla": "Vanilla tanh RNN", "gated": "Gated RNN"}


def _story(unclipped, clipped) -> list[str]:
    """Two sentences saying what the two runs show, from their numbers."""
    clip = clipped.config["clip"]
    first = unclipped.first_spike()
    if first is not None and first.above_initial:
        line1 = (f"Without clipping, an exploding gradient (‖g‖ = {fmt_norm(first.grad_norm)}) "
                 f"sends the loss to {first.loss:.2f} at step {first.step + 1}, above ln 4.")
    elif first is not None:
        line1 = (f"Without clipping, the loss spikes to {first.loss:.2f} at step {first.step + 1} "
                 f"(‖g‖ = {fmt_norm(first.grad_norm)}), below its initial value.")
    else:
        line1 = (f"Without clipping this run has no spike (largest gradient norm "
                 f"{fmt_norm(float(max(unclipped.grad_norm)))}).")
    if not clipped.clipped.any():
        line2 = f"Clipping at {clip:g} never acts here: the two runs are the same."
    elif not clipped.spikes():
        line2 = (f"Clipping the gradient norm at {clip:g} bounds every step: the same run (same "
                 "weights, same batches) has no spike.")
    else:
        n = len(clipped.spikes())
        line2 = (f"Clipped at {clip:g}, the same run (same weights, same batches) still spikes "
                 f"{n} time{'s' if n != 1 else ''}: a smaller clip value bounds the steps more.")
    return [line1, line2]


def training_figure(unclipped, clipped):
    """The matplotlib Figure comparing two TrainingRuns (same seed, without and with clipping)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    from viz.story.training import BEFORE_CLIPPING, GRAD_NORM_NAME
    from viz.train import CHANCE, LN4, SPIKE_JUMP, labelled_spikes

    cfg = unclipped.config
    clip = clipped.config["clip"]
    fig = Figure(figsize=(10, 8.2), facecolor=COLORS["background"])
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, sharex=True, height_ratios=[2.3, 1.25, 1.0],
                        gridspec_kw={"hspace": 0.12, "wspace": 0.08})
    fig.subplots_adjust(left=0.095, right=0.985, top=0.80, bottom=0.065)
    title = (f"{MODEL_NAMES[cfg['model']]} on the temporal-order task "
             f"(T = {cfg['T']}, hidden {cfg['hidden']}, batch {cfg['batch_size']}, "
             f"{cfg['optimizer'].upper()} lr {cfg['lr']:g}, seed {cfg['seed']})")
    fig.suptitle(title, fontsize=FONT_SIZE + 1, y=0.985)
    fig.text(0.5, 0.925, "\n".join(_story(unclipped, clipped)) + "\n"
             f"▼ spike: loss more than {SPIKE_JUMP:g} above its lowest value so far, labelled "
             "with the largest ‖g‖ of the steps leading up to it (○)",
             ha="center", va="center", fontsize=FONT_SIZE - 0.5, color=COLORS["muted"],
             linespacing=1.35)

    runs = (unclipped, clipped)
    finite_loss = np.concatenate([r.loss[np.isfinite(r.loss)] for r in runs])
    loss_top = max(LN4, float(finite_loss.max())) * 1.28
    norms = np.concatenate([r.grad_norm[np.isfinite(r.grad_norm) & (r.grad_norm > 0)]
                            for r in runs])
    norm_lo = min(float(norms.min()), clip) / 2.5
    norm_hi = max(float(norms.max()), clip) * 4.0

    pending = []                                      # spike labels to place at the end
    obstacles = {}                                    # what they must not cover besides curves
    for col, run in enumerate(runs):
        steps = np.arange(1, run.steps + 1)           # 1-based for the reader
        ax_loss, ax_grad, ax_acc = axes[:, col]
        head = "without clipping" if col == 0 else f"gradient norm clipped at {clip:g}"
        spikes = run.spikes()
        n_spikes = len(spikes)
        worst = max(run.loss[np.isfinite(run.loss)][1:], default=run.initial_loss)
        head += (f"\n{n_spikes} spike{'s' if n_spikes != 1 else ''}, max loss {worst:.2f}"
                 f" (initial {run.initial_loss:.3f})")
        ax_loss.set_title(head, color=COLORS["text"], pad=6)

        # --- loss ---------------------------------------------------------------------------
        ax_loss.plot(steps, run.loss, color=COLORS["loss"], lw=0.9, gid=f"loss-{col}")
        ax_loss.axhline(LN4, color=COLORS["muted"], ls="--", lw=1.0, gid=f"ln4-{col}")
        obstacles[ax_loss] = [ax_loss.text(
            0.99, LN4 - 0.04 * loss_top, "ln 4 ≈ 1.386 (chance)",
            transform=ax_loss.get_yaxis_transform(), ha="right", va="top", color=COLORS["muted"],
            fontsize=FONT_SIZE - 1)]
        ax_loss.set_ylim(0, loss_top)
        if spikes:
            obstacles[ax_loss].append(ax_loss.plot(
                [s.step + 1 for s in spikes], [s.loss for s in spikes], "v",
                color=COLORS["spike"], ms=7, mec=COLORS["spike"], zorder=4, gid=f"spikes-{col}")[0])
        # the first spike above the initial loss and the highest others get a label, placed once
        # the axes limits are final where it covers neither the curve nor another label
        labelled = labelled_spikes(run)               # the animation labels the same spikes
        notes = [ax_loss.text(
            s.step + 1, s.loss,
            f"step {s.step + 1}: loss {s.loss:.2f}\n‖g‖ = {fmt_norm(s.grad_norm)} at step "
            f"{s.cause_step + 1}",
            fontsize=FONT_SIZE - 1, color=COLORS["spike"], zorder=5, gid=f"spike-label-{col}-{i}",
            bbox={"boxstyle": "round,pad=0.25", "fc": COLORS["background"], "ec": "none",
                  "alpha": 0.9}) for i, s in enumerate(labelled)]
        pending.append((ax_loss, notes, [(s.step + 1, s.loss) for s in labelled], steps,
                        run.loss))
        if run.diverged_at is not None:
            for ax in (ax_loss, ax_grad, ax_acc):
                ax.axvline(run.diverged_at + 1, color=COLORS["spike"], lw=1.2, ls=":")
            ax_loss.text(run.diverged_at + 1, loss_top * 0.97, f" diverged (overflow) at step "
                         f"{run.diverged_at + 1}", color=COLORS["spike"], va="top",
                         fontsize=FONT_SIZE - 1)

        # --- gradient norm ---------------------------------------------------------------------
        ax_grad.semilogy(steps, run.grad_norm, color=COLORS["grad"], lw=0.8, gid=f"grad-{col}")
        ax_grad.axhline(clip, color=COLORS["clip"], ls="--", lw=1.1, gid=f"clip-{col}")
        clip_note = f"clip = {clip:g}" + (" (not applied)" if col == 0 else
                                           f": {int(run.clipped.sum())} steps scaled down")
        below = clip / norm_lo > 10                   # room under the line for the note
        ax_grad.text(0.99, clip / 1.6 if below else clip * 1.6, clip_note,
                     transform=ax_grad.get_yaxis_transform(), ha="right",
                     va="top" if below else "bottom", color=COLORS["clip"], fontsize=FONT_SIZE - 1,
                     bbox={"boxstyle": "square,pad=0.1", "fc": COLORS["background"], "ec": "none",
                           "alpha": 0.85})
        for s in labelled:
            ax_grad.plot(s.cause_step + 1, s.grad_norm, "o", ms=6, mfc="none",
                         mec=COLORS["spike"], mew=1.6, zorder=4, gid=f"cause-{col}")
        ax_grad.set_ylim(norm_lo, norm_hi)

        # --- accuracy --------------------------------------------------------------------------
        ax_acc.plot(steps, run.accuracy, color=COLORS["accuracy"], lw=0.9, gid=f"accuracy-{col}")
        ax_acc.axhline(CHANCE, color=COLORS["muted"], ls="--", lw=1.0, gid=f"chance-{col}")
        ax_acc.text(0.99, CHANCE, "25% (chance)", transform=ax_acc.get_yaxis_transform(),
                    ha="right", va="bottom", color=COLORS["muted"], fontsize=FONT_SIZE - 1)
        ax_acc.set_ylim(0, 1.05)
        ax_acc.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax_acc.set_xlabel("training step")
        ax_acc.set_xlim(0, run.steps + 1)

        for ax in (ax_loss, ax_grad, ax_acc):
            ax.set_facecolor(COLORS["background"])
            ax.grid(True, color="#E4E6EA", lw=0.6)
            ax.set_axisbelow(True)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            if col == 1:
                ax.tick_params(labelleft=False)
        if col == 0:
            ax_loss.set_ylabel("cross-entropy loss")
            ax_grad.set_ylabel(f"{GRAD_NORM_NAME}\n{BEFORE_CLIPPING}")    # the animation's label too
            ax_acc.set_ylabel("accuracy")
        axes[1, 1].sharey(axes[1, 0])
    axes[0, 1].sharey(axes[0, 0])
    axes[2, 1].sharey(axes[2, 0])
    renderer = fig.canvas.get_renderer()
    for ax, notes, points, xs, ys in pending:
        _place_labels(ax, notes, points, xs, ys,
                      [tuple(b.extents) for a in obstacles[ax] for b in _boxes(a, renderer)],
                      renderer)
    return fig


def _boxes(artist, renderer) -> list:
    """Display-space boxes an artist covers: a text's box, or one box per marker of a line."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import Bbox

    if isinstance(artist, Line2D):
        r = artist.get_markersize() * renderer.points_to_pixels(1.0) / 2 + 1
        pts = artist.get_transform().transform(artist.get_xydata())
        return [Bbox([[x - r, y - r], [x + r, y + r]]) for x, y in pts]
    return [artist.get_window_extent(renderer)]


def _place_labels(ax, notes, points, xs, ys, obstacles, renderer) -> None:
    """Place the texts `notes` (labelling `points`, data coordinates) in the free space of `ax`,
    each joined to its point by a thin line.

    Free: a label's box stays inside the axes and overlaps neither the curve (xs, ys), nor a box in
    `obstacles` (display coordinates: reference texts, markers), nor another label or another
    label's line. Candidates form a grid over the axes; every order of the labels is tried
    greedily (each label takes its free position nearest to its point) and the order that places
    the most labels with the shortest lines wins. A label with no free position is removed (its
    point keeps its marker). Deterministic: no randomness, ties go to the first order tried.
    """
    import itertools

    import numpy as np

    if not notes:
        return
    frame = ax.get_window_extent(renderer)
    (_, _), (ymin, ymax) = ax.get_xlim(), ax.get_ylim()
    curve = ax.transData.transform(np.column_stack([xs, np.nan_to_num(ys, nan=ymin,
                                                                      posinf=ymax)]))
    seg_lo = np.minimum(curve[:-1], curve[1:]) if len(curve) > 1 else curve
    seg_hi = np.maximum(curve[:-1], curve[1:]) if len(curve) > 1 else curve
    pad = 5.0                                    # px around a label (its box has padding too)
    frac = np.linspace(0.0, 1.0, 32)[:, None]

    def hit(box, lo, hi):                        # box overlaps any of the boxes [lo, hi]
        return bool(np.any((hi[:, 0] >= box[0]) & (lo[:, 0] <= box[2])
                           & (hi[:, 1] >= box[1]) & (lo[:, 1] <= box[3])))

    obstacle_arr = np.array(obstacles, dtype=float).reshape(-1, 4)
    labels = []
    for note, point in zip(notes, points):
        note.set_horizontalalignment("left")
        note.set_verticalalignment("top")
        note.set_position(point)
        ext = note.get_window_extent(renderer)
        anchor = ax.transData.transform(point)
        w, h = ext.width, ext.height
        offset = (ext.x0 - anchor[0], ext.y1 - anchor[1])     # text box vs its position
        cands = []
        for top in np.linspace(frame.y1 - pad, frame.y0 + h + pad, 16):
            for left in np.linspace(frame.x0 + pad, frame.x1 - w - pad, 40):
                box = (left - pad, top - h - pad, left + w + pad, top + pad)
                if hit(box, seg_lo, seg_hi) or hit(box, obstacle_arr[:, :2], obstacle_arr[:, 2:]):
                    continue
                end = np.array([min(max(anchor[0], left), left + w),
                                min(max(anchor[1], top - h), top)])
                length = float(np.hypot(*(anchor - end)))
                tip = end + (anchor - end) * max(0.0, 1.0 - 6.0 / max(length, 1e-9))
                cands.append((length, box, end, end + frac * (tip - end)))
        cands.sort(key=lambda c: c[0])
        labels.append((note, point, anchor, offset, cands))

    best = None
    for order in itertools.permutations(range(len(labels))):
        chosen, boxes, lines = {}, [], []
        for i in order:
            for length, box, end, line in labels[i][4]:
                if any(box[0] <= q[2] and box[2] >= q[0] and box[1] <= q[3] and box[3] >= q[1]
                       for q in boxes):
                    continue
                if any(hit(box, seg, seg) for seg in lines):
                    continue
                if any(hit(q, line, line) for q in boxes):
                    continue
                chosen[i] = (length, box, end)
                boxes.append(box)
                lines.append(line)
                break
        score = (len(chosen), -sum(c[0] for c in chosen.values()))
        if best is None or score > best[0]:
            best = (score, chosen)

    to_data = ax.transData.inverted()
    for i, (note, point, anchor, offset, _) in enumerate(labels):
        if i not in best[1]:
            note.remove()
            continue
        _, box, end = best[1][i]
        left, top = box[0] + pad, box[3] - pad
        note.set_position(to_data.transform((left - offset[0], top - offset[1])))
        ax.annotate("", xy=point, xytext=to_data.transform(end),
                    arrowprops={"arrowstyle": "-", "color": note.get_color(), "lw": 0.8,
                                "shrinkA": 0, "shrinkB": 5}, zorder=4)


def render_training_plot(params: dict, out, fmt: str) -> None:
    """Train without and with clipping (viz.train.clipping_comparison) and write the figure.

    params: model "vanilla"|"gated", clip (> 0, the clipped run's clip value), steps, seed.
    fmt: svg | png | pdf. The file appears whole at `out` or not at all (viz.io.atomic_path).
    """
    import matplotlib

    from viz.train import STEPS, clipping_comparison

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)} (got {fmt!r})")
    unclipped, clipped = clipping_comparison(model=params.get("model", "vanilla"),
                                             clip=params.get("clip", 1.0),
                                             steps=params.get("steps", STEPS),
                                             seed=params.get("seed", 0))
    with matplotlib.rc_context(_RC):
        fig = training_figure(unclipped, clipped)
        with atomic_path(Path(out)) as tmp:
            fig.savefig(tmp, format=fmt, metadata=_METADATA[fmt],
                        dpi=100 if fmt == "png" else 72, facecolor=COLORS["background"])
