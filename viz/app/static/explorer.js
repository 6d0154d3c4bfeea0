// viz explorer: the form is generated from the registry's parameter descriptions (/api/explorer);
// every change is sent to the local server, which validates it with the command line's rules and
// answers with the diagram SVG, or the convolution's windows and values from the reference.
// This page draws; it never computes a shape, an index or a value.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const state = {
  figures: [], figure: null, params: {}, theme: "light",
  seq: 0, shown: 0, timer: null, answer: null, step: 0, playing: null,
};

// ---- parameters -> form --------------------------------------------------------------------------

function formatDefault(p) {
  const v = p.default;
  if (v === null || v === undefined) return p.type === "k" ? "inf" : "";
  if (Array.isArray(v)) return v.map((a) => Array.isArray(a) ? a.join(":") : a).join("x");
  if (typeof v === "boolean") return v ? "true" : "false";
  return String(v);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// A slider that edits every axis of a "7x5"-style value at once; the text box edits them one by one.
function uniformOf(text) {
  const parts = String(text).split(/[x×]/);
  const n = parseInt(parts[0], 10);
  return { n: Number.isFinite(n) ? n : null, axes: parts.length };
}

function buildForm(fig) {
  const form = $("form");
  form.replaceChildren();
  for (const p of fig.params) {
    const id = `p-${p.name}`;
    const row = el("div", { class: "row", "data-param": p.name });
    const label = el("label", { for: id, title: p.help, text: p.name.replace(/_/g, " ") });
    const ctl = el("div", { class: "ctl" });
    const value = state.params[fig.id][p.name];
    const set = (v) => { state.params[fig.id][p.name] = v; showApplicable(fig); schedule(); };
    if (p.type === "choice") {
      const select = el("select", { id, name: p.name });
      for (const c of p.choices) select.append(el("option", { value: c, text: c }));
      select.value = value;
      select.addEventListener("change", () => set(select.value));
      ctl.append(select);
    } else if (p.type === "flag") {
      const box = el("input", { id, name: p.name, type: "checkbox" });
      box.checked = value === "true";
      box.addEventListener("change", () => set(box.checked ? "true" : "false"));
      ctl.append(box);
    } else if (p.type === "int" && p.max - p.min <= 64) {
      const range = el("input", { id, name: p.name, type: "range", min: p.min, max: p.max, step: 1, value });
      const out = el("output", { for: id, text: value });
      range.addEventListener("input", () => { out.textContent = range.value; set(range.value); });
      ctl.append(range, out);
    } else if (p.type === "int" || p.type === "float") {
      const num = el("input", { id, name: p.name, type: "number", min: p.min, max: p.max,
                                step: p.type === "int" ? 1 : "any", value });
      num.addEventListener("input", () => set(num.value));
      ctl.append(num);
    } else {  // shape, padding, k: a text box (per-axis values, same, inf) plus a slider for all axes
      const text = el("input", { id, name: p.name, type: "text", value, spellcheck: "false",
                                 "aria-describedby": `${id}-hint` });
      const top = p.type === "k" ? Math.min(p.max, 16) + 1 : Math.min(p.max, p.name === "input" ? 32 : 16);
      const range = el("input", { type: "range", min: p.min, max: top, step: 1, "aria-label": `${p.name} (all axes)`,
                                  "data-for": p.name });
      const sync = () => {
        const u = uniformOf(text.value);
        if (p.type === "k" && /^(inf|∞)$/i.test(text.value.trim())) range.value = top;
        else if (u.n !== null) range.value = u.n;
      };
      sync();
      text.addEventListener("input", () => { sync(); set(text.value); });
      range.addEventListener("input", () => {
        const n = Number(range.value);
        if (p.type === "k") text.value = n === top ? "inf" : String(n);
        else text.value = Array(uniformOf(text.value).axes).fill(n).join("x");
        set(text.value);
      });
      ctl.append(range, text);
    }
    row.append(label, ctl, el("div", { class: "hint", id: `${id}-hint`, text: p.range }));
    form.append(row);
  }
  showApplicable(fig);
}

// A parameter that only matters for some values of another (k for the attention model, the weight
// scale without a preset) is hidden otherwise; the registry says which (Param.applies).
function showApplicable(fig) {
  const values = state.params[fig.id];
  for (const p of fig.params) {
    const row = $("form").querySelector(`[data-param="${p.name}"]`);
    if (!row) continue;
    row.hidden = !Object.entries(p.applies || {}).every(([name, allowed]) => allowed.includes(values[name]));
  }
}

// ---- talking to the server -----------------------------------------------------------------------

function schedule(delay = 60) {
  clearTimeout(state.timer);
  state.timer = setTimeout(request, delay);
}

async function request() {
  const fig = state.figure;
  const seq = ++state.seq;
  const body = JSON.stringify({ figure: fig.id, params: state.params[fig.id], theme: state.theme });
  let answer, status;
  try {
    const res = await fetch("/api/render", { method: "POST", body,
                                             headers: { "Content-Type": "application/json" } });
    status = res.status;
    answer = await res.json();
  } catch (err) {
    status = 0;
    answer = { error: `the server did not answer (${err.message}); is viz serve still running?` };
  }
  if (seq !== state.seq || fig !== state.figure) return;   // a newer change is on its way
  if (status !== 200) showError(answer.error || `HTTP ${status}`, answer.param);
  else show(answer);
}

function showError(message, param) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  document.querySelectorAll("form .row").forEach((r) =>
    r.classList.toggle("invalid", r.dataset.param === param));
  $("stage").classList.add("stale");   // keep the last good figure, dimmed: the page stays usable
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  document.querySelectorAll("form .row.invalid").forEach((r) => r.classList.remove("invalid"));
  $("stage").classList.remove("stale");
}

// ---- showing an answer ---------------------------------------------------------------------------

function show(answer) {
  clearError();
  state.answer = answer;
  $("command").textContent = answer.command;
  const formula = $("formula");
  formula.replaceChildren(...answer.formula.map((line) => {
    const div = el("div", { text: line });
    if (line.includes("never read")) div.classList.add("unread");
    return div;
  }));
  const stage = $("stage");
  if (answer.conv) {
    state.step = Math.min(state.step, answer.conv.steps.length - 1);
    $("stepper").hidden = false;
    drawConv();
  } else {
    stopPlay();
    $("stepper").hidden = true;
    const img = el("img", { id: "diagram", alt: `${answer.kind} diagram`,
                            src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(answer.svg) });
    img.addEventListener("click", () => img.classList.toggle("actual"));
    stage.replaceChildren(img);
  }
  stage.dataset.kind = answer.kind;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Lay out the convolution from the server's data: input grid(s) with padding, the window's taps,
// the kernel, the output. 1-D: one row per channel, the kernel drawn under the taps it multiplies.
function drawConv() {
  const c = state.answer.conv;
  const step = c.steps[state.step];
  const C = c.channels, nd = c.ndim;
  const [H, W] = nd === 1 ? [1, c.padded_shape[0]] : c.padded_shape;
  const never = new Set(c.never_read.map((t) => t.join(",")));
  const tapSet = new Map(step.taps.map((t, j) => [t.join(","), step.padding[j]]));
  const maxW = 760;
  const left = 44;
  let cell;
  const root = svg("svg", { class: "conv", id: "conv-svg", role: "img",
                            "aria-label": `convolution, output ${c.out_shape.join("x")}` });
  const cellRect = (g, x, y, cls, label, extra = {}) => {
    g.append(svg("rect", { x, y, width: cell - 3, height: cell - 3, rx: 3, class: cls, ...extra }));
    if (label !== undefined && label !== null)
      g.append(svg("text", { x: x + (cell - 3) / 2, y: y + (cell - 3) / 2,
                             class: cls.includes("pad") ? "padtext" : "" }, label));
  };
  let y0 = 22, width = 0;
  if (nd === 1) {
    cell = Math.max(22, Math.min(34, Math.floor((maxW - left) / Math.max(W, c.out_shape[0]))));
    const g = svg("g");
    // column numbers (1-based, unpadded positions)
    for (let i = 0; i < W; i++) {
      const pos = i - c.padding[0][0];
      if (pos >= 0 && pos < c.in_shape[0])
        g.append(svg("text", { x: left + i * cell + (cell - 3) / 2, y: y0 - 10, class: "axis" }, pos + 1));
    }
    for (let ch = 0; ch < C; ch++) {
      const y = y0 + ch * cell;
      g.append(svg("text", { x: left - 8, y: y + cell / 2 - 1, class: "label" }, C > 1 ? `x${ch + 1}` : "x"));
      for (let i = 0; i < W; i++) {
        const pad = c.pad_mask[i];
        let cls = pad ? "pad" : "input";
        if (never.has(String(i))) cls += " never";
        cellRect(g, left + i * cell, y, cls, c.x[ch][i]);
      }
    }
    // the window: every tap outlined over all channels; the kernel drawn under its taps
    const ky = y0 + C * cell + 14;
    g.append(svg("text", { x: left - 8, y: ky + (C * cell) / 2, class: "label" }, "w"));
    step.taps.forEach(([i], j) => {
      g.append(svg("rect", { x: left + i * cell - 1, y: y0 - 1, width: cell - 1, height: C * cell - 1, rx: 4,
                             class: "tap" + (step.padding[j] ? " padtap" : "") }));
      for (let ch = 0; ch < C; ch++) cellRect(g, left + i * cell, ky + ch * cell, "kernel", c.w[ch][j]);
    });
    const oy = ky + C * cell + 26;
    g.append(svg("text", { x: left - 8, y: oy + cell / 2 - 1, class: "label" }, "y"));
    for (let o = 0; o < c.out_shape[0]; o++) {
      const done = o <= state.step;
      cellRect(g, left + o * cell, oy, done ? "output" : "empty", done ? c.y[o] : null,
               o === state.step ? { class: "output current" } : {});
      g.append(svg("text", { x: left + o * cell + (cell - 3) / 2, y: oy + cell + 6, class: "axis" }, o + 1));
    }
    root.append(g);
    y0 = oy + cell + 22;
    width = left + Math.max(W, c.out_shape[0]) * cell + 8;
  } else {
    const [oh, ow] = c.out_shape;
    const [kh, kw] = c.kernel;
    const cols = C === 1 ? 1 : Math.min(C, 2);
    const rows = Math.ceil(C / cols);
    cell = Math.max(18, Math.min(36, Math.floor((maxW - 80 - (kw + ow) * 24) / (cols * W + 1))));
    const panelW = W * cell + 18, panelH = H * cell + 24;
    const g = svg("g");
    for (let ch = 0; ch < C; ch++) {
      const px = left + (ch % cols) * panelW, py = y0 + Math.floor(ch / cols) * panelH;
      g.append(svg("text", { x: px - 8, y: py + cell / 2, class: "label" }, C > 1 ? `x${ch + 1}` : "x"));
      for (let r = 0; r < H; r++) for (let q = 0; q < W; q++) {
        const k = r * W + q;
        let cls = c.pad_mask[k] ? "pad" : "input";
        if (never.has(`${r},${q}`)) cls += " never";
        cellRect(g, px + q * cell, py + r * cell, cls, cell >= 26 ? c.x[ch][k] : null);
        if (tapSet.has(`${r},${q}`))
          g.append(svg("rect", { x: px + q * cell - 1, y: py + r * cell - 1, width: cell - 1, height: cell - 1,
                                 rx: 4, class: "tap" + (tapSet.get(`${r},${q}`) ? " padtap" : "") }));
      }
    }
    // kernels (one per channel) and the output, to the right
    const kcell = Math.min(cell, 30);
    const kx = left + cols * panelW + 36;
    for (let ch = 0; ch < C; ch++) {
      const ky = y0 + ch * (kh * kcell + 20);
      g.append(svg("text", { x: kx - 6, y: ky + kcell / 2, class: "label" }, C > 1 ? `w${ch + 1}` : "w"));
      const saved = cell; cell = kcell;
      for (let r = 0; r < kh; r++) for (let q = 0; q < kw; q++)
        cellRect(g, kx + q * kcell, ky + r * kcell, "kernel", c.w[ch][r * kw + q]);
      cell = saved;
    }
    const ox = kx + kw * kcell + 44;
    g.append(svg("text", { x: ox - 6, y: y0 + cell / 2, class: "label" }, "y"));
    const flat = state.step;
    for (let r = 0; r < oh; r++) for (let q = 0; q < ow; q++) {
      const k = r * ow + q, done = k <= flat;
      cellRect(g, ox + q * cell, y0 + r * cell, done ? "output" : "empty", done ? c.y[k] : null,
               k === flat ? { class: "output current" } : {});
    }
    root.append(g);
    width = Math.max(ox + ow * cell + 10, kx + kw * kcell + 10);
    y0 = y0 + Math.max(rows * panelH, C * (kh * kcell + 20), oh * cell + 10) + 10;
  }
  // legend
  const legend = [["input", "input x"], ["pad", "padding (0)"], ["kernel", "kernel w"], ["output", "output y"],
                  ["tap", "window"], ["input never", "never read"]];
  let lx = 8;
  for (const [cls, text] of legend) {
    root.append(svg("rect", { x: lx, y: y0, width: 14, height: 14, rx: 3, class: cls }));
    root.append(svg("text", { x: lx + 20, y: y0 + 7, class: "legend" }, text));
    lx += 30 + text.length * 7;
  }
  const height = y0 + 24;
  width = Math.max(width, lx);
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  root.setAttribute("width", width);
  root.setAttribute("height", height);
  $("stage").replaceChildren(root);

  $("position").textContent = `window ${state.step + 1} of ${c.steps.length}`;
  const name = `y[${step.out.map((v) => v + 1).join(",")}]`;
  const pads = step.padding.filter(Boolean).length;
  const text = $("step-text");
  text.replaceChildren(
    el("div", {}, el("b", { text: `${name} = ${step.y}` }),
       ` reads x at ${step.reads || "(padding only)"}` + (pads ? ` and ${pads} padding tap${pads > 1 ? "s" : ""}` : "")),
    ...step.sums.map((s) => el("div", { text: s })));
}

// ---- step-through --------------------------------------------------------------------------------

function go(delta) {
  if (!state.answer || !state.answer.conv) return;
  const n = state.answer.conv.steps.length;
  state.step = Math.max(0, Math.min(n - 1, state.step + delta));
  drawConv();
}

function stopPlay() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "▶ Play";
}

function togglePlay() {
  if (state.playing) { stopPlay(); return; }
  if (!state.answer || !state.answer.conv) return;
  if (state.step >= state.answer.conv.steps.length - 1) { state.step = 0; drawConv(); }
  $("play").textContent = "❚❚ Pause";
  state.playing = setInterval(() => {
    if (state.step >= state.answer.conv.steps.length - 1) stopPlay(); else go(1);
  }, 650);
}

// ---- figures and theme ---------------------------------------------------------------------------

function selectFigure(id) {
  const fig = state.figures.find((f) => f.id === id) || state.figures[0];
  state.figure = fig;
  stopPlay();
  state.step = 0;
  document.querySelectorAll("#figures button").forEach((b) =>
    b.setAttribute("aria-selected", String(b.dataset.id === fig.id)));
  $("summary").textContent = fig.summary;
  $("note").textContent = fig.note;
  buildForm(fig);
  if (location.hash !== `#${fig.id}`) history.replaceState(null, "", `#${fig.id}`);
  schedule(0);
}

async function init() {
  const res = await fetch("/api/explorer");
  const data = await res.json();
  state.figures = data.figures;
  for (const fig of data.figures) {
    state.params[fig.id] = Object.fromEntries(fig.params.map((p) => [p.name, formatDefault(p)]));
    const b = el("button", { type: "button", role: "tab", "data-id": fig.id, text: fig.label });
    b.addEventListener("click", () => selectFigure(fig.id));
    $("figures").append(b);
  }
  const saved = localStorage.getItem("viz-theme");
  state.theme = saved === "dark" || saved === "light" ? saved
    : (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  $("theme").value = state.theme;
  document.documentElement.dataset.theme = state.theme;
  $("theme").addEventListener("change", () => {
    state.theme = $("theme").value;
    localStorage.setItem("viz-theme", state.theme);
    document.documentElement.dataset.theme = state.theme;
    schedule(0);
  });
  $("prev").addEventListener("click", () => { stopPlay(); go(-1); });
  $("next").addEventListener("click", () => { stopPlay(); go(1); });
  $("play").addEventListener("click", togglePlay);
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return;
    if (e.key === "ArrowLeft") { stopPlay(); go(-1); }
    else if (e.key === "ArrowRight") { stopPlay(); go(1); }
    else if (e.key === " " && !e.target.closest("button")) { e.preventDefault(); togglePlay(); }
  });
  $("form").addEventListener("submit", (e) => e.preventDefault());
  selectFigure(location.hash.slice(1));
}

init().catch((err) => showError(`could not load the explorer: ${err.message}`));
