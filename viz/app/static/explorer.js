// viz explorer: the form is generated from the registry's parameter descriptions (/api/explorer);
// every change is sent to the local server, which validates it with the command line's rules and
// answers with the figure's Story (the data the video and the slides draw) or a diagram SVG.
// This page draws (views.js, bptt.js); it never computes a shape, an index or a value. The user's own
// arrays are edited as cells (arrays.js), shaped as the server says, and sent with the parameters.
"use strict";

const $ = (id) => document.getElementById(id);
const { el } = VizViews;
const state = {
  figures: [], figure: null, params: {}, mode: {}, theme: "light", zoom: 1,
  seq: 0, timer: null, answer: null, view: null, playing: null, unused: [],
  arrays: {},        // figure id -> {name: {shape, values}}: the arrays the user edited (sent with each request)
  editor: null,
};
// the user's own numbers (params.USER_DATA_TYPES): arrays are edited as cells below the figure, named
// weights (a file on the command line) not at all; neither is a form field
const isArray = (p) => p.type === "array" || p.type === "weights";

// ---- parameters -> form --------------------------------------------------------------------------

function formatDefault(p) {
  const v = p.default;
  if (v === null || v === undefined) return p.type === "k" ? "inf" : "";
  if (Array.isArray(v)) return v.map((a) => Array.isArray(a) ? a.join(":") : a).join("x");
  if (typeof v === "boolean") return v ? "true" : "false";
  return String(v);
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
  for (const p of fig.params.filter((q) => !isArray(q))) {
    const id = `p-${p.name}`;
    const row = el("div", { class: "row", "data-param": p.name });
    const label = el("label", { for: id, title: p.help, text: p.name.replace(/_/g, " ") });
    const ctl = el("div", { class: "ctl" });
    const value = state.params[fig.id][p.name];
    const set = (v) => { state.params[fig.id][p.name] = v; state.editor.say(""); showApplicable(fig); schedule(); };
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

// A control is shown only when its parameter changes the figure: the registry's Param.applies says so
// at once (k only for the attention model), the server's answer says so for the rest ("unused": the
// steps slider of a one-cell diagram, the base case of AttentionRNN(∞)).
function showApplicable(fig) {
  const values = state.params[fig.id];
  for (const p of fig.params) {
    const row = $("form").querySelector(`[data-param="${p.name}"]`);
    if (!row) continue;
    const applies = Object.entries(p.applies || {}).every(([name, allowed]) => allowed.includes(values[name]));
    row.hidden = !applies || state.unused.includes(p.name);
  }
}

function buildModes(fig) {
  const nav = $("modes");
  nav.replaceChildren();
  nav.hidden = fig.modes.length < 2;
  for (const m of fig.modes) {
    const b = el("button", { type: "button", role: "tab", "data-mode": m.id, text: m.label,
                             "aria-selected": String(m.id === state.mode[fig.id]) });
    b.addEventListener("click", () => { state.mode[fig.id] = m.id; buildModes(fig); schedule(0); });
    nav.append(b);
  }
  const mode = fig.modes.find((m) => m.id === state.mode[fig.id]) || fig.modes[0];
  $("note").textContent = mode.note || fig.note || "";
}

// ---- talking to the server -----------------------------------------------------------------------

function schedule(delay = 60) {
  clearTimeout(state.timer);
  state.timer = setTimeout(request, delay);
}

async function post(path, body) {
  try {
    const res = await fetch(path, { method: "POST", body: JSON.stringify(body),
                                    headers: { "Content-Type": "application/json" } });
    return { status: res.status, answer: await res.json() };
  } catch (err) {
    return { status: 0, answer: { error: `the server did not answer (${err.message}); is viz serve still running?` } };
  }
}

async function request() {
  const fig = state.figure;
  const seq = ++state.seq;
  const body = { figure: fig.id, mode: state.mode[fig.id], params: state.params[fig.id], theme: state.theme };
  const stale = () => seq !== state.seq || fig !== state.figure;   // a newer change is on its way
  $("view").setAttribute("aria-busy", "true");
  let { status, answer } = await dropUnfitting(fig, body);
  if (stale()) return;
  if (status === 200) {
    const edited = state.arrays[fig.id];
    const params = { ...body.params };
    for (const [name, a] of Object.entries(edited)) params[name] = a.values;
    ({ status, answer } = await post("/api/render", { ...body, params }));
    if (stale()) return;
  }
  $("view").removeAttribute("aria-busy");
  if (status !== 200) showError(answer.error || `HTTP ${status}`, answer.param);
  else show(answer);
}

// Before the user's arrays go out with changed parameters: the shapes the server says they must have
// now; an edited array that no longer fits is dropped (one line says so), never sent with a wrong shape.
async function dropUnfitting(fig, body) {
  const edited = state.arrays[fig.id];
  if (!Object.keys(edited).length) return { status: 200, answer: null };
  const { status, answer } = await post("/api/arrays", body);
  if (status !== 200 || fig !== state.figure) return { status, answer };
  const dropped = [];
  for (const [name, a] of Object.entries(edited)) {
    const want = answer.arrays[name];
    if (want && VizArrays.sameShape(want.shape, a.shape)) continue;
    delete edited[name];
    const mine = `Dropped your ${VizArrays.label(name)} (${a.shape.join("×")})`;
    dropped.push(want ? `${mine}: it must be ${want.shape.join("×")} now, for ${want.why}.`
                      : `${mine}: these parameters do not use it.`);
  }
  if (dropped.length) state.editor.say(`${dropped.join(" ")} The seeded example is drawn instead.`);
  return { status, answer };
}

function resetArrays() {
  state.arrays[state.figure.id] = {};
  state.editor.say("");
  schedule(0);
}

function showError(message, param) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  document.querySelectorAll("form .row").forEach((r) =>
    r.classList.toggle("invalid", r.dataset.param === param));
  state.editor.invalid(param, message);
  $("view").classList.add("stale");   // keep the last good figure, dimmed: the page stays usable
  stopPlay();
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  document.querySelectorAll("form .row.invalid").forEach((r) => r.classList.remove("invalid"));
  state.editor.invalid(null, "");
  $("view").classList.remove("stale");
}

// ---- showing an answer ---------------------------------------------------------------------------

function show(answer) {
  clearError();
  state.answer = answer;
  state.unused = answer.unused || [];
  showApplicable(state.figure);
  state.editor.update(answer.arrays, Object.keys(state.arrays[state.figure.id]));
  $("command").textContent = answer.command;
  // drawn here (the explorer zooms), but too small to read in a video: the command says so
  $("video-note").textContent = answer.video_note ? `As a video: ${answer.video_note}` : "";
  $("video-note").hidden = !answer.video_note;
  $("formula").replaceChildren(...answer.formula.map((line) => {
    const div = el("div", { text: line });
    if (line.includes("never read")) div.classList.add("unread");
    return div;
  }));
  const stage = $("stage");
  stage.dataset.kind = answer.kind;
  stage.dataset.mode = answer.mode;
  const keep = state.view && state.view.story && state.view.story.kind === (answer.story || {}).kind
    && state.view.view.id === (answer.view || {}).id ? state.view.position : 0;
  if (answer.story) {
    $("title").textContent = answer.story.title;
    const View = answer.story.series && answer.story.series.length ? VizBptt.BpttView : VizViews.StoryView;
    state.view = new View(stage, answer, { zoom: state.zoom, onPosition: showPosition });
    state.view.position = Math.min(keep, Math.max(0, state.view.length - 1));
    state.view.render();
    $("stepper").hidden = state.view.length < 2;
    $("zoom").hidden = false;
  } else {
    stopPlay();
    state.view = null;
    $("title").textContent = "";
    $("stepper").hidden = true;
    $("zoom").hidden = true;
    const img = el("img", { id: "diagram", alt: `${answer.kind} diagram`,
                            src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(answer.svg) });
    img.addEventListener("click", () => img.classList.toggle("actual"));
    stage.replaceChildren(img);
  }
}

function showPosition(i, n, what) {
  $("position").textContent = `${what} ${i + 1} of ${n}`;
}

// ---- step-through and zoom -----------------------------------------------------------------------

function go(delta) {
  if (!state.view) return;
  state.view.go(state.view.position + delta);
}

function stopPlay() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "▶ Play";
}

function togglePlay() {
  if (state.playing) { stopPlay(); return; }
  if (!state.view) return;
  if (state.view.position >= state.view.length - 1) state.view.go(0);
  $("play").textContent = "❚❚ Pause";
  state.playing = setInterval(() => {
    if (!state.view || state.view.position >= state.view.length - 1) stopPlay(); else go(1);
  }, 650);
}

function setZoom(z) {
  state.zoom = Math.max(0.25, Math.min(4, z));
  $("zoom-level").textContent = `${Math.round(state.zoom * 100)}%`;
  if (state.view) { state.view.zoom = state.zoom; state.view.render(); }
}

// ---- figures and theme ---------------------------------------------------------------------------

function selectFigure(id) {
  const fig = state.figures.find((f) => f.id === id) || state.figures[0];
  state.figure = fig;
  state.unused = [];
  state.editor.say("");
  stopPlay();
  document.querySelectorAll("#figures button").forEach((b) =>
    b.setAttribute("aria-selected", String(b.dataset.id === fig.id)));
  $("summary").textContent = fig.summary;
  buildForm(fig);
  buildModes(fig);
  if (location.hash !== `#${fig.id}`) history.replaceState(null, "", `#${fig.id}`);
  schedule(0);
}

async function init() {
  state.editor = new VizArrays.ArrayEditor($("arrays"), {
    onCommit(name, shape, values) {
      state.arrays[state.figure.id][name] = { shape, values };
      state.editor.say("");       // an earlier "dropped" line is about numbers no longer shown
      schedule(0);
    },
    onInvalid(message, name) { clearTimeout(state.timer); showError(message, name); },
    onReset: resetArrays,
  });
  const res = await fetch("/api/explorer");
  const data = await res.json();
  state.figures = data.figures;
  for (const fig of data.figures) {
    state.params[fig.id] = Object.fromEntries(fig.params.filter((p) => !isArray(p)).map((p) => [p.name, formatDefault(p)]));
    state.arrays[fig.id] = {};
    state.mode[fig.id] = fig.modes[0].id;
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
  $("zoom-in").addEventListener("click", () => setZoom(state.zoom * 1.25));
  $("zoom-out").addEventListener("click", () => setZoom(state.zoom / 1.25));
  $("zoom-fit").addEventListener("click", () => setZoom(1));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea, svg.grid")) return;   // grids move their own focus
    if (e.key === "ArrowLeft") { stopPlay(); go(-1); }
    else if (e.key === "ArrowRight") { stopPlay(); go(1); }
    else if (e.key === " " && !e.target.closest("button")) { e.preventDefault(); togglePlay(); }
  });
  $("form").addEventListener("submit", (e) => e.preventDefault());
  selectFigure(location.hash.slice(1));
}

init().catch((err) => showError(`could not load the explorer: ${err.message}`));
