// views.js: draws one explorer answer, a Story (viz/story/core.py, JSON schema viz.story/1), with linked
// views: hover, click or focus a cell to light what the Story says it reads or feeds. Shared by the page
// (explorer.js) and the notebook widget (viz/app/widget/), so: plain DOM, no network, no globals but
// `VizViews`. It computes nothing: every number and word shown is the Story's; it only looks up which
// steps light a cell (and, for the transposed view, reads that relation the other way round). In a mode
// with an `owner` grid (a transposed convolution's inputs, a pool's ∂ℓ/∂y) each step is named by its cell
// there, and an output cell lights every step that reaches it.
"use strict";

const VizViews = (() => {
  const SVGNS = "http://www.w3.org/2000/svg";
  const LIT = { window: "lit-window", padding_tap: "lit-padtap", muted: "lit-muted", output: "lit-output",
                never_read: "lit-never", bias: "lit-bias", path: "lit-path", highlight: "lit-max",
                gradient: "lit-output", loss: "lit-output" };
  const READS = new Set(["window", "padding_tap"]);
  const MIN_FONT = 8;          // below this a cell shows no number; hovering it shows the value instead
  const GAP = 2;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const key = (cell) => cell.join(",");

  // A grid's cells as drawn: the last axis runs right, the one before runs down, a leading channel
  // axis (a grid with one more axis than the figure) makes one panel per channel.
  function layout(grid, nd) {
    const shape = grid.shape.length ? grid.shape : [1];
    const channels = shape.length > nd ? shape[0] : 1;
    const spatial = shape.length > nd ? shape.slice(1) : shape;
    const rows = spatial.length >= 2 ? spatial[spatial.length - 2] : 1;
    const cols = spatial[spatial.length - 1] || 1;
    // 1-D: channels stack as rows of one panel; 2-D: panels side by side, wrapping after 4
    const stacked = spatial.length < 2;
    const perRow = stacked ? 1 : Math.min(channels, 4);
    return { shape, channels, rows, cols, stacked, perRow, hasChannel: shape.length > nd };
  }

  function* cells(shape) {
    const n = shape.reduce((a, b) => a * b, 1);
    const idx = shape.map(() => 0);
    for (let f = 0; f < n; f++) {
      yield [f, idx.slice()];
      for (let a = shape.length - 1; a >= 0; a--) {
        if (++idx[a] < shape[a]) break;
        idx[a] = 0;
      }
    }
  }

  class StoryView {
    // answer: {story, view: {part, grids, sources, scatter}}; host: an element; opts.onSelect(info)
    constructor(host, answer, opts = {}) {
      this.host = host;
      this.story = answer.story;
      this.view = answer.view || {};
      this.products = answer.products || {};   // step id -> a text per stamp cell (a scatter's products)
      this.opts = opts;
      this.zoom = opts.zoom || 1;
      const p = this.story.params || {};
      this.nd = Array.isArray(p.input) ? p.input.length : 1;
      const wanted = this.view.grids && this.view.grids.length ? this.view.grids : null;
      this.grids = (this.story.grids || []).filter((g) => !wanted || wanted.includes(g.name));
      if (wanted) this.grids.sort((a, b) => wanted.indexOf(a.name) - wanted.indexOf(b.name));
      this.drawnGrids = new Set(this.grids.map((g) => g.name));
      this.index();
      this.position = 0;
    }

    // ---- what lights what (looked up from the Story's steps) ----------------------------------------
    index() {
      const part = this.view.part;
      this.steps = this.story.steps.filter((s) => !part || s.part === part || s.part === "never_read");
      this.producer = new Map();      // "grid|cell" -> step index (the step writing it)
      this.readers = new Map();       // "grid|cell" -> [step indices] (steps whose window reads it)
      this.never = new Map();         // "grid|cell" -> the never-read step
      this.reachedBy = new Map();     // owner modes: "grid|cell" -> [steps whose output it is]
      const owner = this.view.owner;
      this.steps.forEach((s, i) => {
        const own = this.ownerCell(s);
        if (own) this.producer.set(`${owner}|${key(own)}`, i);
        for (const lit of s.lit) {
          for (const c of lit.cells) {
            const k = `${lit.target}|${key(c)}`;
            if (lit.role === "output" && owner) this.push(this.reachedBy, k, i);
            else if (lit.role === "output") { if (!this.producer.has(k)) this.producer.set(k, i); }
            else if (READS.has(lit.role) && !owner) this.push(this.readers, k, i);
            else if (lit.role === "never_read") this.never.set(k, s);
          }
        }
        for (const c of this.sourcesOf(s)) this.push(this.readers, `${this.view.sources}|${key(c)}`, i);
      });
      this.outputGrids = new Set(owner ? [...this.reachedBy.keys()].map((k) => k.split("|")[0]) : []);
      this.order = this.view.scatter
        ? [...cells(this.gridNamed(this.view.sources).shape)].map(([, c]) => c)
        : this.steps.map((s, i) => i);
    }

    // the cell naming a step in an owner mode: the first it lights on the owner grid (null: none)
    ownerCell(step) {
      const lit = this.view.owner && step.lit.find((l) => l.target === this.view.owner && l.cells.length);
      return lit ? lit.cells[0] : null;
    }

    push(map, k, v) {
      const list = map.get(k);
      if (list) { if (list[list.length - 1] !== v) list.push(v); } else map.set(k, [v]);
    }

    sourcesOf(step) {
      return this.view.sources && step.data && Array.isArray(step.data.sources) ? step.data.sources : [];
    }

    gridNamed(name) {
      return (this.story.grids || []).find((g) => g.name === name) || { shape: [0] };
    }

    // ---- drawing -----------------------------------------------------------------------------------
    baseCell() {
      const width = Math.max(320, (this.host.clientWidth || 900) - 40);
      const widest = Math.max(...this.grids.map((g) => {
        const L = layout(g, this.nd);
        return L.perRow * L.cols + (L.perRow - 1);
      }), 1);
      return Math.max(12, Math.min(40, Math.floor(width / widest)));
    }

    render() {
      this.cellSize = Math.round(this.baseCell() * this.zoom);
      this.rects = new Map();
      const wrap = el("div", { class: "grids", "data-mode": this.view.id || "" });
      for (const g of this.grids) wrap.append(this.drawGrid(g));
      this.info = el("div", { class: "info", "aria-live": "polite" });
      this.host.replaceChildren(wrap, this.info);
      this.wrap = wrap;
      this.enablePan(wrap);
      this.go(this.position);
    }

    drawGrid(g) {
      const L = layout(g, this.nd);
      const cell = this.cellSize, inner = cell - GAP;
      const longest = (g.texts || []).reduce((n, t) => Math.max(n, [...t].length), 1);   // no spread: 10⁵ cells
      const font = Math.min(inner * 0.46, (inner - 4) / (0.62 * longest));
      const showText = font >= MIN_FONT && (g.texts || []).length > 0;
      const panelW = L.cols * cell, panelH = (L.stacked ? L.channels : L.rows) * cell;
      const panelsDown = L.stacked ? 1 : Math.ceil(L.channels / L.perRow);
      const labelH = L.hasChannel && !L.stacked && L.channels > 1 ? 14 : 0;
      // channels the Story names ("x2", "w3[x4]": filter 3's slice for channel 4) are labelled so:
      // above a 2-D channel's panel, left of a 1-D channel's row
      const names = (g.axis_labels && g.axis_labels[0]) || [];
      const named = L.hasChannel && L.channels > 1 && names.length === L.channels &&
                    names.every((n) => n && !/^\d+$/.test(n));
      const rowNameW = L.stacked && named ? 6 + 7 * Math.max(...names.map((n) => [...n].length)) : 0;
      const width = rowNameW + L.perRow * panelW + (L.perRow - 1) * cell / 2 + 2;
      const height = panelsDown * (panelH + labelH) + (panelsDown - 1) * cell / 2 + 2;
      const root = svg("svg", { class: "grid", "data-grid": g.name, "data-role": g.role, tabindex: 0,
                                width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                                "aria-label": `${g.label}: ${g.shape.join("×")} cells; arrow keys move, ` +
                                              "Enter shows what the cell reads" });
      if (showText) root.style.setProperty("--cell-font", `${font.toFixed(1)}px`);
      for (const [f, c] of cells(L.shape)) {
        const ch = L.hasChannel ? c[0] : 0;
        const sp = L.hasChannel ? c.slice(1) : c;
        const col = sp[sp.length - 1] || 0;
        const row = L.stacked ? ch : (sp.length >= 2 ? sp[sp.length - 2] : 0);
        const panel = L.stacked ? 0 : ch;
        const px = rowNameW + (panel % L.perRow) * (panelW + cell / 2) + 1;
        const py = Math.floor(panel / L.perRow) * (panelH + labelH + cell / 2) + labelH + 1;
        if (labelH && row === 0 && col === 0)
          root.append(svg("text", { x: px, y: py - 4, class: "panel-label" }, named ? names[ch] : `${g.label} ${ch + 1}`));
        if (rowNameW && col === 0)
          root.append(svg("text", { x: 1, y: py + row * cell + inner / 2, class: "panel-label row-label" }, names[ch]));
        const x = px + col * cell, y = py + row * cell;
        let cls = `cell role-${g.role}`;
        if (g.padding && g.padding[f]) cls += " pad";
        if (g.muted && g.muted[f]) cls += " muted";
        const k = key(c);
        if (this.never.has(`${g.name}|${k}`)) cls += " never";
        const rect = svg("rect", { x, y, width: inner, height: inner, rx: 3, class: cls, "data-cell": k });
        root.append(rect);
        this.rects.set(`${g.name}|${k}`, rect);
        if (showText && g.texts[f] !== undefined)
          root.append(svg("text", { x: x + inner / 2, y: y + inner / 2, class: "val" }, g.texts[f]));
      }
      root.addEventListener("pointerover", (e) => {
        const k = e.target.dataset && e.target.dataset.cell;
        if (k !== undefined && !this.dragging) this.select(g.name, k);
      });
      root.addEventListener("click", (e) => {
        const k = e.target.dataset && e.target.dataset.cell;
        if (k !== undefined) { this.select(g.name, k); root.focus({ preventScroll: true }); }
      });
      root.addEventListener("focus", () => {
        if (!this.focused || this.focused.grid !== g.name) this.select(g.name, key([...cells(L.shape)][0][1]));
      });
      root.addEventListener("keydown", (e) => this.keydown(e, g, L));
      return el("figure", { class: "grid-block" }, el("figcaption", { text: g.label }), root);
    }

    // Drag the background to pan a big figure (the wheel and scrollbars pan too).
    enablePan(wrap) {
      let start = null;
      wrap.addEventListener("pointerdown", (e) => {
        if (e.button !== 0 || (e.target.dataset && e.target.dataset.cell !== undefined)) return;
        start = { x: e.clientX, y: e.clientY, left: wrap.scrollLeft, top: wrap.scrollTop };
      });
      wrap.addEventListener("pointermove", (e) => {
        if (!start) return;
        this.dragging = true;
        wrap.scrollLeft = start.left - (e.clientX - start.x);
        wrap.scrollTop = start.top - (e.clientY - start.y);
      });
      const stop = () => { start = null; this.dragging = false; };
      wrap.addEventListener("pointerup", stop);
      wrap.addEventListener("pointerleave", stop);
    }

    keydown(e, g, L) {
      if (!this.focused || this.focused.grid !== g.name) return;
      const c = this.focused.cell.split(",").map(Number);
      const axes = c.length;
      const move = { ArrowRight: [axes - 1, 1], ArrowLeft: [axes - 1, -1], ArrowDown: [axes - 2, 1],
                     ArrowUp: [axes - 2, -1], PageDown: [axes - 3, 1], PageUp: [axes - 3, -1] }[e.key];
      if (e.key === "Escape") { this.clear(); this.info.replaceChildren(); e.preventDefault(); return; }
      if (!move) return;
      e.preventDefault();
      e.stopPropagation();
      let [axis, d] = move;
      if (L.stacked && L.hasChannel && (e.key === "ArrowDown" || e.key === "ArrowUp")) axis = 0;
      if (axis < 0) return;
      c[axis] = Math.max(0, Math.min(L.shape[axis] - 1, c[axis] + d));
      this.select(g.name, key(c));
    }

    // ---- lighting ----------------------------------------------------------------------------------
    clear() {
      for (const r of this.lit || []) r.classList.remove(...Object.values(LIT), "focus", "current");
      this.lit = [];
    }

    light(grid, cell, cls) {
      const r = this.rects.get(`${grid}|${key(cell)}`);
      if (r) { r.classList.add(cls); this.lit.push(r); }
    }

    lightStep(s, current = true) {
      const weighed = this.weighed(s);
      for (const lit of s.lit) {
        if (!this.drawnGrids.has(lit.target) || lit.target === weighed) continue;   // lit tap by tap below
        for (const c of lit.cells) this.light(lit.target, c, LIT[lit.role] || "lit-window");
      }
      for (const c of this.sourcesOf(s)) this.light(this.view.sources, c, "lit-window");
      this.lightWeights(s);
      if (current) for (const w of s.writes || []) this.light(w.target, w.cell, "current");
    }

    // The weights a step multiplies: its data.taps lists the cells read in the kernel's row-major
    // order, so the n-th tap pairs with the kernel's n-th cell (every channel): lit like that tap.
    // The kernel grid this step's weights are lit on tap by tap (null: none).
    weighed(s) {
      const name = this.view.kernel;
      const taps = s.data && s.data.taps;
      return name && Array.isArray(taps) && taps.length && this.drawnGrids.has(name) ? name : null;
    }

    lightWeights(s) {
      const name = this.weighed(s);
      if (!name) return;
      const taps = s.data.taps;
      const roles = new Map();
      for (const lit of s.lit) {
        if (!READS.has(lit.role)) continue;
        for (const c of lit.cells) roles.set(key(c.length > taps[0].length ? c.slice(1) : c), lit.role);
      }
      const L = layout(this.gridNamed(name), this.nd);
      const spatial = L.hasChannel ? L.shape.slice(1) : L.shape;
      const kernel = [...cells(spatial)].map(([, c]) => c);
      // several filters: the Story lights the kernel in use (its rows); else every channel's taps
      const own = s.lit.filter((l) => l.target === name).flatMap((l) => l.cells.map((c) => c[0]));
      const rows = own.length ? [...new Set(own)] : [...Array(L.channels).keys()];
      taps.forEach((t, n) => {
        const role = roles.get(key(t));
        if (!READS.has(role) || !kernel[n]) return;
        for (const ch of rows) this.light(name, L.hasChannel ? [ch, ...kernel[n]] : kernel[n], LIT[role]);
      });
    }

    // The name of the channel a cell is in, as the Story names it ("y3", "x2"), else the grid's label.
    channelName(g, k) {
      const L = layout(g, this.nd);
      const names = (g.axis_labels && g.axis_labels[0]) || [];
      const ch = Number(String(k).split(",")[0]);
      return L.hasChannel && L.channels > 1 && names.length === L.channels && names[ch] &&
             !/^\d+$/.test(names[ch]) ? names[ch] : g.label;
    }

    // A cell chosen by hover, click or the keyboard: light what it reads, or what reads it.
    select(grid, k) {
      this.clear();
      this.focused = { grid, cell: k };
      const r = this.rects.get(`${grid}|${k}`);
      if (r) { r.classList.add("focus"); this.lit.push(r); }
      const id = `${grid}|${k}`;
      const g = this.gridNamed(grid);
      const f = this.flatIndex(g, k);
      const value = g.texts && g.texts[f] !== undefined ? g.texts[f] : "";
      const head = el("div", { class: "cell-name" }, el("b", { text: this.channelName(g, k) }),
                      value ? ` = ${value}` : "");
      const lines = [];
      let what = "none";
      if (this.producer.has(id) && !this.view.scatter) {
        const s = this.steps[this.producer.get(id)];
        this.lightStep(s);
        what = "reads";
        lines.push(el("div", { class: "step-label", text: s.label }), ...s.lines.map(this.lineEl),
                   ...this.listed(this.products[s.id] || []).map((t) => el("div", { class: "product", text: t })));
        this.position = this.producer.get(id);
      } else if (this.reachedBy.has(id)) {
        const from = this.reachedBy.get(id).map((i) => this.steps[i]);
        for (const s of from) this.light(this.view.owner, this.ownerCell(s), "lit-window");
        if (r) r.classList.add("lit-output");
        what = "reached-by";
        // each step's own product landing here (a scatter: one per output cell it lights, in order,
        // several maps' cells included), else its first line, else its label
        const parts = from.map((s) => {
          const out = s.lit.find((l) => l.role === "output" && l.target === grid && l.cells.length);
          const at = (out ? out.cells : (s.data || {}).stamp || []).findIndex((c) => key(c) === k);
          return (this.products[s.id] || [])[at] || (s.lines[0] || {}).text || s.label;
        });
        lines.push(el("div", { text: "from" }),
                   ...this.listed(parts).map((t) => el("div", { class: "product", text: `  ${t}` })));
      } else if (this.readers.has(id)) {
        const readers = this.readers.get(id).map((i) => this.steps[i]);
        for (const s of readers)
          for (const lit of s.lit) if (lit.role === "output" && this.drawnGrids.has(lit.target))
            for (const c of lit.cells) this.light(lit.target, c, "lit-output");
        if (r) r.classList.add("lit-window");
        what = "read-by";
        const names = readers.map((s) => s.label);
        const shown = names.slice(0, 12).join(", ") + (names.length > 12 ? `, … (${names.length} in all)` : "");
        const pad = g.padding && g.padding[f];
        const verb = this.view.scatter ? "scatters its stamp of w into" : "is read by";
        const padText = this.view.padding || "padding (a 0)";
        const adds = padText === "padding (a 0)" ? " and add 0" : "";
        lines.push(el("div", { text: pad ? `${padText}: the windows of ${shown} land here${adds}`
                                         : `${verb} ${shown}` }));
        if (this.view.scatter) this.position = this.order.findIndex((c) => key(c) === k);
      } else if (this.never.has(id)) {
        const s = this.never.get(id);
        this.lightStep(s, false);
        what = "never";
        lines.push(...s.lines.map(this.lineEl));
      } else if (this.outputGrids.has(grid)) {
        what = "unreached";
        lines.push(el("div", { text: "nothing reaches it: it stays 0" }));
      } else if (g.padding && g.padding[f]) {
        what = "padding";
        lines.push(el("div", { text: `${this.view.padding || "padding (a 0)"}: no window reaches it` }));
      }
      this.info.replaceChildren(head, ...lines);
      this.info.dataset.what = what;
      this.updatePosition();
      if (this.opts.onSelect) this.opts.onSelect({ grid, cell: k, what });
    }

    listed(texts) {
      return texts.length > 12 ? [...texts.slice(0, 12), `… (${texts.length} in all)`] : texts;
    }

    lineEl(line) {
      return el("div", { class: `line role-${line.role}`, text: line.text });
    }

    flatIndex(g, k) {
      const c = k.split(",").map(Number);
      let f = 0;
      for (let a = 0; a < c.length; a++) f = f * g.shape[a] + c[a];
      return f;
    }

    // ---- stepping (the same order as the video: the Story's steps) --------------------------------
    get length() { return this.order.length; }

    go(i) {
      if (!this.order.length) return;
      this.position = Math.max(0, Math.min(this.order.length - 1, i));
      if (this.view.scatter) {
        this.select(this.view.sources, key(this.order[this.position]));
        return;
      }
      const s = this.steps[this.position];
      const own = this.ownerCell(s);
      if (own && this.rects.has(`${this.view.owner}|${key(own)}`)) {
        this.select(this.view.owner, key(own));
        return;
      }
      const written = (s.writes || [])[0];
      if (written && this.rects.has(`${written.target}|${key(written.cell)}`)) {
        this.select(written.target, key(written.cell));
        return;
      }
      this.clear();
      this.focused = null;
      this.lightStep(s, false);
      this.info.replaceChildren(el("div", { class: "step-label", text: s.label }), ...s.lines.map(this.lineEl));
      this.info.dataset.what = "step";
      this.updatePosition();
    }

    updatePosition() {
      if (this.opts.onPosition) this.opts.onPosition(this.position, this.order.length,
                                                     this.view.scatter ? "stamp" : "step");
    }
  }

  return { StoryView, el, svg };
})();
