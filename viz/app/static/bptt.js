// bptt.js: the BPTT mode, drawn from the "animate bptt" Story (viz/story/bptt.py): the states h[0] … h[T]
// on ONE row (it scrolls, it never wraps), the edges a step read (arcs above the row for attention
// lags, all on one baseline), the log-scale bars of ‖δ[t]‖ below their states with the Story's ticks,
// and the Story's steps: the backward sweep t = T … 1, then the path that carries the gradient.
// It computes nothing but pixel positions: values, texts, ticks and the path are the Story's.
"use strict";

const VizBptt = (() => {
  const { el, svg } = VizViews;
  // Story roles -> classes ("hidden": the states the forward pass computes, "loss": what reads h[T])
  const LIT = { highlight: "lit-window", gradient: "lit-output", path: "lit-path", loss: "lit-loss",
                hidden: "lit-forward", window: "lit-window", output: "lit-output" };
  const STEP_X = 70, NODE_R = 17, BAR_H = 150;

  class BpttView {
    constructor(host, answer, opts = {}) {
      this.host = host;
      this.story = answer.story;
      this.view = answer.view || {};
      this.opts = opts;
      this.zoom = opts.zoom || 1;
      this.steps = this.story.steps;
      this.position = 0;
      this.series = this.story.series[0];
      // the texts the Story writes for the bars (Write cells: 0-based point indices)
      this.barText = new Map();
      for (const s of this.steps) for (const w of s.writes || [])
        if (w.target === this.series.name) this.barText.set(w.cell[0], w.text);
    }

    get length() { return this.steps.length; }

    render() {
      const g = this.story.graph || { nodes: [], edges: [] };
      const dx = STEP_X * this.zoom;
      const ranks = g.nodes.map((n) => n.rank);
      const lo = Math.min(0, ...ranks), hi = Math.max(0, ...ranks);
      const xOf = (rank) => 40 + (rank - lo) * dx;
      const spanMax = Math.max(1, ...g.edges.map((e) => Math.abs(this.rank(e.target) - this.rank(e.source))));
      const arcTop = spanMax > 1 ? 24 + Math.min(150, 20 * spanMax) : 12;
      const baseY = arcTop + NODE_R + 10;
      const barTop = baseY + NODE_R + 34, barBottom = barTop + BAR_H;
      const width = xOf(hi) + 60, height = barBottom + 40;
      const root = svg("svg", { class: "bptt", id: "bptt-svg", width, height, viewBox: `0 0 ${width} ${height}`,
                                role: "img", "aria-label": this.story.alt || this.story.title });
      this.els = new Map();
      const nodeX = new Map(g.nodes.map((n) => [n.id, xOf(n.rank)]));
      for (const e of g.edges) {
        const x1 = nodeX.get(e.source), x2 = nodeX.get(e.target);
        if (x1 === undefined || x2 === undefined) continue;
        const span = Math.abs(this.rank(e.target) - this.rank(e.source));
        const rise = (4 / 3) * (baseY - NODE_R - 12) * span / spanMax;    // longer lags arc higher
        const d = span <= 1 ? `M ${x1 + NODE_R} ${baseY} L ${x2 - NODE_R} ${baseY}`
          : `M ${x1} ${baseY - NODE_R} C ${x1} ${baseY - NODE_R - rise}, ` +
            `${x2} ${baseY - NODE_R - rise}, ${x2} ${baseY - NODE_R}`;
        const path = svg("path", { d, class: `edge role-${e.role}`, "data-id": e.id,
                                   "stroke-width": (1 + 2.5 * Math.min(1, Math.abs(e.weight))).toFixed(2) });
        path.append(svg("title", {}, e.label || e.id));
        root.append(path);
        this.els.set(e.id, [path]);
      }
      for (const n of g.nodes) {
        const x = nodeX.get(n.id);
        const w = Math.max(2 * NODE_R, 8 * [...n.label].length + 10);    // the label fits its node
        const c = svg("rect", { x: x - w / 2, y: baseY - NODE_R, width: w, height: 2 * NODE_R, rx: NODE_R,
                                "data-cy": baseY, class: `node role-${n.role}`, "data-id": n.id, tabindex: 0 });
        const t = svg("text", { x, y: baseY, class: "node-label" }, n.label);
        root.append(c, t);
        this.els.set(n.id, [c]);
        const step = this.steps.findIndex((s) => s.part !== "forward" &&
          s.lit.some((l) => l.target === "graph" && l.role === "highlight" && l.cells.includes(n.id)));
        if (step >= 0) {
          c.addEventListener("pointerover", () => this.go(step));
          c.addEventListener("focus", () => this.go(step));
        }
      }
      this.drawBars(root, xOf, barTop, barBottom);
      this.info = el("div", { class: "info", "aria-live": "polite" });
      const wrap = el("div", { class: "grids bptt-wrap" }, root);
      this.host.replaceChildren(wrap, this.info);
      this.go(this.position);
    }

    rank(id) {
      const n = (this.story.graph.nodes || []).find((m) => m.id === id);
      return n ? n.rank : 0;
    }

    // ‖δ[t]‖ as bars on the Story's log axis (Series.limits, ticks and tick texts), under h[t]
    drawBars(root, xOf, top, bottom) {
      const s = this.series;
      const log = s.scale === "log";
      const f = (v) => (log ? Math.log10(v) : v);
      const ys = s.y.filter((v) => v !== null && (!log || v > 0));
      const [a, b] = s.limits && s.limits.length === 2 ? s.limits.map(f) : [Math.min(...ys.map(f)), Math.max(...ys.map(f))];
      const yOf = (v) => bottom - (bottom - top) * Math.max(0, Math.min(1, (f(v) - a) / ((b - a) || 1)));
      const x0 = xOf(Math.min(...s.x)) - 30, x1 = xOf(Math.max(...s.x)) + 30;
      root.append(svg("text", { x: x0, y: top - 14, class: "axis-label" }, s.label));
      (s.ticks || []).forEach((t, i) => {
        root.append(svg("line", { x1: x0, x2: x1, y1: yOf(t), y2: yOf(t), class: "tick" }));
        root.append(svg("text", { x: x0 - 4, y: yOf(t), class: "tick-label" }, (s.tick_labels || [])[i] || ""));
      });
      s.x.forEach((x, i) => {
        const v = s.y[i];
        if (v === null || (log && v <= 0)) return;
        const cx = xOf(x), y = yOf(v);
        const bar = svg("rect", { x: cx - 12, y, width: 24, height: Math.max(1, bottom - y), class: "bar",
                                  "data-x": x });
        bar.append(svg("title", {}, this.barText.get(i) || ""));
        root.append(bar);
        this.els.set(`${s.name}|${x}`, [bar]);
      });
      root.append(svg("line", { x1: x0, x2: x1, y1: bottom, y2: bottom, class: "baseline" }));
    }

    go(i) {
      this.position = Math.max(0, Math.min(this.steps.length - 1, i));
      const s = this.steps[this.position];
      for (const list of this.els.values()) for (const e of list)
        e.classList.remove(...Object.values(LIT));
      for (const lit of s.lit) {
        for (const c of lit.cells) {
          const id = lit.target === "graph" ? c : `${lit.target}|${c}`;
          for (const e of this.els.get(id) || []) e.classList.add(LIT[lit.role] || "lit-window");
        }
      }
      this.info.replaceChildren(el("div", { class: "step-label", text: s.label }),
                                el("div", { class: "narration", text: s.narration }),
                                ...s.lines.map((l) => el("div", { class: `line role-${l.role}`, text: l.text })));
      this.info.dataset.what = s.part;
      if (this.opts.onPosition) this.opts.onPosition(this.position, this.steps.length, "step");
    }
  }

  return { BpttView };
})();
