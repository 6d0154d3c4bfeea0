// arrays.js: the user's own arrays (x, w, b, ∂ℓ/∂y) as editable cells, one grid of number boxes per
// array the server says the figure draws, shaped as the server says (answer.arrays: shape, why, the
// numbers drawn). The last axis runs right, the one before runs down, leading axes make one panel each
// (as the figure draws channels). Labels are 1-based, as the figure's own ("x[1,2,3]").
// It reads each cell strictly (a decimal literal, as the command line does) only to say at once which
// cell is wrong; the server checks everything again.
"use strict";

const VizArrays = (() => {
  const { el } = VizViews;
  const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
  const DEBOUNCE = 350;        // ms after the last keystroke before an edit is read and sent

  const flag = (name) => `--${name.replace(/_/g, "-")}`;
  const label = (name) => name === "grad_y" ? "∂ℓ/∂y" : name;
  const prod = (shape) => shape.reduce((a, b) => a * b, 1);
  const sameShape = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  const flatten = (v) => Array.isArray(v) ? v.flatMap(flatten) : [v];

  function nest(flat, shape) {
    if (shape.length === 1) return flat.slice(0, shape[0]);
    const step = prod(shape.slice(1));
    return Array.from({ length: shape[0] }, (_, i) => nest(flat.slice(i * step, (i + 1) * step), shape.slice(1)));
  }

  // the 1-based index of flat cell f, "1,2,3"
  function indexOf(f, shape) {
    const idx = [];
    for (let a = shape.length - 1; a >= 0; a--) { idx.unshift(f % shape[a] + 1); f = Math.floor(f / shape[a]); }
    return idx.join(",");
  }

  // A cell's text as a number, or why not (the one-line message names the cell, 1-based).
  function read(name, text, at) {
    const t = text.trim();
    const v = Number(t);
    if (!t) return { error: `${flag(name)}: ${name}[${at}] is empty (give a number like 0.5 or -2)` };
    if (!NUMBER.test(t) || !Number.isFinite(v))
      return { error: `${flag(name)}: ${name}[${at}] must be a finite number like 0.5 or -2 (got ${t})` };
    return { value: v };
  }

  class ArrayEditor {
    // opts.onCommit(name, shape, nestedValues); opts.onInvalid(message, name); opts.onReset()
    constructor(host, opts) {
      this.host = host;
      this.opts = opts;
      this.blocks = new Map();        // name -> {shape key, inputs, block}
      this.timers = new Map();
    }

    // arrays: the answer's {name: {shape, why, given, values | too_many}}; edited: the names sent
    update(arrays, edited) {
      const shown = Object.entries(arrays || {}).filter(([, a]) => a.values || a.too_many);
      this.host.hidden = shown.length === 0;
      if (!shown.length) { this.blocks.clear(); this.host.replaceChildren(); this.list = this.note = this.error = null; return; }
      const keep = new Set();
      const list = this.list || this.build();
      for (const [name, a] of shown) {
        keep.add(name);
        const old = this.blocks.get(name);
        const shapeKey = `${a.shape.join("x")}|${a.too_many ? "many" : "edit"}`;
        if (old && old.shapeKey === shapeKey) this.refresh(old, a);
        else {
          const b = this.block(name, a, shapeKey);
          if (old) old.block.replaceWith(b.block); else list.append(b.block);
          this.blocks.set(name, b);
        }
        this.blocks.get(name).block.classList.toggle("edited", edited.includes(name));
      }
      for (const [name, b] of this.blocks) if (!keep.has(name)) { b.block.remove(); this.blocks.delete(name); }
      // the page's order: as the answer lists them
      for (const [name] of shown) list.append(this.blocks.get(name).block);
      this.reset.disabled = edited.length === 0;
    }

    build() {
      this.reset = el("button", { type: "button", class: "reset", text: "Reset to seeded example",
                                  title: "Forget your numbers: draw the seeded example again" });
      this.reset.addEventListener("click", () => this.opts.onReset());
      this.note = el("p", { class: "arrays-note", role: "status" });
      this.note.hidden = true;
      this.error = el("p", { class: "arrays-error" });
      this.error.hidden = true;
      this.list = el("div", { class: "array-list" });
      const head = el("div", { class: "arrays-head" },
                      el("h2", { text: "Your numbers" }),
                      el("span", { class: "arrays-hint", text: "PyTorch layout, no batch axis; edit a cell, the figure follows" }),
                      this.reset);
      this.host.replaceChildren(head, this.note, this.error, this.list);
      return this.list;
    }

    say(text) {
      if (!this.note) this.build();
      this.note.textContent = text || "";
      this.note.hidden = !text;
    }

    block(name, a, shapeKey) {
      const title = el("div", { class: "array-title" }, el("b", { text: label(name) }),
                       ` ${a.shape.join("×")}`, el("span", { class: "why", text: ` (${a.why})` }),
                       el("span", { class: "badge", text: "yours" }));
      const block = el("div", { class: "array", "data-array": name, role: "group",
                                "aria-label": `${label(name)}, ${a.shape.join("×")}` }, title);
      if (a.too_many) {
        block.append(el("p", { class: "too-many", text: `${prod(a.shape)} numbers, more than the ${a.too_many} ` +
                               `the explorer edits: give ${flag(name)} FILE.npy on the command line.` }));
        return { block, shapeKey, inputs: [], name, shape: a.shape };
      }
      const shape = a.shape;
      const cols = shape[shape.length - 1];
      const rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
      const per = rows * cols;
      const flat = flatten(a.values);
      const inputs = [], grids = [];
      const panels = el("div", { class: "panels" });
      for (let p = 0; p < flat.length / per; p++) {
        const grid = el("div", { class: "cells" });
        grids.push(grid);
        for (let f = p * per; f < (p + 1) * per; f++) {
          const at = indexOf(f, shape);
          const input = el("input", { type: "text", inputmode: "decimal", spellcheck: "false", autocomplete: "off",
                                      value: String(flat[f]), "aria-label": `${name}[${at}]`, title: `${name}[${at}]`,
                                      "data-cell": f });
          input.addEventListener("input", () => { input.classList.remove("bad"); input.removeAttribute("aria-invalid");
                                                  this.fit(this.blocks.get(name)); this.later(name); });
          input.addEventListener("keydown", (e) => this.keydown(e, name, f));
          inputs.push(input);
          grid.append(input);
        }
        const lead = shape.length > 2 ? indexOf(p * per, shape).split(",").slice(0, shape.length - 2) : [];
        const caption = lead.length ? `${label(name)}[${[...lead, ...Array(2).fill("·")].join(",")}]` : "";
        panels.append(el("figure", { class: "panel" }, ...(caption ? [el("figcaption", { text: caption })] : []), grid));
      }
      block.append(panels);
      const b = { block, shapeKey, inputs, grids, name, shape, cols, rows, per };
      this.fit(b);
      return b;
    }

    // Columns as wide as the longest text in the array (in ch of the cells' font): nothing is clipped.
    fit(b) {
      const width = Math.max(2, ...b.inputs.map((i) => i.value.length)) + 2;
      if (width === b.width) return;
      b.width = width;
      for (const g of b.grids) g.style.gridTemplateColumns = `repeat(${b.cols}, ${width}ch)`;  // CSSOM: no style attributes under the CSP
    }

    // The answer's numbers into cells the user is not typing in (a new seed, int/float values).
    refresh(b, a) {
      if (!a.values) return;
      const flat = flatten(a.values);
      b.inputs.forEach((input, f) => {
        if (input === document.activeElement || input.classList.contains("bad")) return;
        const r = read(b.name, input.value, "");
        if (r.value !== flat[f]) input.value = String(flat[f]);
      });
      this.fit(b);
    }

    later(name) {
      clearTimeout(this.timers.get(name));
      this.timers.set(name, setTimeout(() => this.commit(name), DEBOUNCE));
    }

    // Read every cell of `name`; the first bad one is reported (and marked, with the rest), else sent.
    commit(name) {
      clearTimeout(this.timers.get(name));
      const b = this.blocks.get(name);
      if (!b || !b.inputs.length) return;
      let first = null;
      const values = b.inputs.map((input, f) => {
        const r = read(name, input.value, indexOf(f, b.shape));
        input.classList.toggle("bad", !!r.error);
        if (r.error) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
        input.title = r.error || `${name}[${indexOf(f, b.shape)}]`;
        if (r.error && !first) first = r.error;
        return r.value;
      });
      if (first) { this.opts.onInvalid(first, name); return; }
      this.opts.onCommit(name, b.shape, nest(values, b.shape));
    }

    // Arrow keys move between cells (left/right once the caret is at the text's end), Enter sends now.
    keydown(e, name, f) {
      const b = this.blocks.get(name);
      const input = e.target;
      const col = f % b.cols, row = Math.floor(f % b.per / b.cols);
      let to = null;
      if (e.key === "Enter") { e.preventDefault(); this.commit(name); return; }
      if (e.key === "ArrowUp" && row > 0) to = f - b.cols;
      else if (e.key === "ArrowDown" && row < b.rows - 1) to = f + b.cols;
      else if (e.key === "ArrowLeft" && col > 0 && input.selectionStart === 0 && input.selectionEnd === 0) to = f - 1;
      else if (e.key === "ArrowRight" && col < b.cols - 1 && input.selectionStart === input.value.length) to = f + 1;
      if (to === null) return;
      e.preventDefault();
      b.inputs[to].focus();
      b.inputs[to].select();
    }

    // A bad value's one line, beside the cells too (the page's error area may be scrolled away).
    invalid(name, message) {
      for (const [n, b] of this.blocks) b.block.classList.toggle("invalid", n === name);
      if (!this.error) return;
      this.error.textContent = this.blocks.has(name) ? message : "";
      this.error.hidden = !this.error.textContent;
    }
  }

  return { ArrayEditor, sameShape, label };
})();
