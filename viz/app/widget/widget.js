// The explorer as a notebook widget (anywidget ESM: JupyterLab, Notebook 7, VS Code, marimo). Appended
// to views.js and bptt.js into one module by viz/app/widget/__init__.py. The model holds the figure, its
// mode and parameters; the kernel (the Python reference, no server) answers with the Story in `answer`,
// or the command line's one-line message in `error`. Like the page, this draws and computes nothing.

function vizWidgetRender({ model, el: host }) {
  const { el } = VizViews;
  host.classList.add("viz-widget");
  host.dataset.theme = model.get("theme");
  const figures = el("nav", { class: "modes figures", role: "tablist", "aria-label": "Figure" });
  const modes = el("nav", { class: "modes", role: "tablist", "aria-label": "Mode" });
  const form = el("form", { class: "viz-form", autocomplete: "off" });
  const error = el("div", { class: "error", role: "alert", hidden: "" });
  const formula = el("div", { class: "formula" });
  const title = el("p", { class: "title" });
  const stage = el("div", { class: "stage" });
  const position = el("span", { class: "position" });
  const prev = el("button", { type: "button", class: "prev", text: "◀ Previous" });
  const next = el("button", { type: "button", class: "next", text: "Next ▶" });
  const stepper = el("div", { class: "stepper" }, prev, next, position);
  const command = el("code", { class: "command" });
  const videoNote = el("div", { class: "video-note" });
  host.replaceChildren(figures, modes, form, error, formula, title, stage, stepper, command, videoNote);
  let view = null;

  const spec = () => (model.get("spec").figures || []).find((f) => f.id === model.get("figure"));
  const setTrait = (name, value) => { model.set(name, value); model.save_changes(); };

  function tabs(nav, items, current, pick) {
    nav.replaceChildren(...items.map((it) => {
      const b = el("button", { type: "button", role: "tab", "data-id": it.id, text: it.label,
                               "aria-selected": String(it.id === current) });
      b.addEventListener("click", () => pick(it.id));
      return b;
    }));
  }

  function buildForm() {
    const fig = spec();
    if (!fig) return;
    tabs(figures, model.get("spec").figures, fig.id, (id) => { model.set("params", {}); setTrait("figure", id); });
    tabs(modes, fig.modes, model.get("mode") || fig.modes[0].id, (id) => setTrait("mode", id));
    modes.hidden = fig.modes.length < 2;
    const given = model.get("params");
    const unused = (model.get("answer") || {}).unused || [];
    form.replaceChildren(...fig.params.filter((p) => !unused.includes(p.name)).map((p) => {
      const id = `viz-${fig.id}-${p.name}`;
      const shown = (model.get("answer").params || {})[p.name];
      const value = given[p.name] !== undefined ? String(given[p.name]) : (shown !== undefined ? shown : "");
      let ctl;
      if (p.type === "choice" || p.type === "flag") {
        const choices = p.type === "flag" ? ["false", "true"] : p.choices;
        ctl = el("select", { id, name: p.name }, ...choices.map((c) => el("option", { value: c, text: c })));
        ctl.value = value;
      } else {
        ctl = el("input", { id, name: p.name, type: "text", value, size: 7, spellcheck: "false" });
      }
      ctl.addEventListener("change", () => setTrait("params", { ...model.get("params"), [p.name]: ctl.value }));
      const row = el("label", { class: "row", "data-param": p.name, title: `${p.help} (${p.range})` },
                     el("span", { text: p.name.replace(/_/g, " ") }), ctl);
      if (model.get("error") && model.get("error_param") === p.name) row.classList.add("invalid");
      return row;
    }));
  }

  function draw() {
    const answer = model.get("answer");
    host.dataset.theme = model.get("theme");
    const message = model.get("error");
    error.textContent = message;
    error.hidden = !message;
    host.classList.toggle("stale", Boolean(message));   // the last good figure stays, dimmed
    buildForm();
    if (!answer || !answer.formula) return;
    formula.replaceChildren(...answer.formula.map((line) => el("div", { text: line })));
    if (message) return;
    command.textContent = answer.command;
    videoNote.textContent = answer.video_note ? `As a video: ${answer.video_note}` : "";
    const onPosition = (i, n, what) => { position.textContent = `${what} ${i + 1} of ${n}`; };
    if (answer.story) {
      title.textContent = answer.story.title;
      const View = answer.story.series && answer.story.series.length ? VizBptt.BpttView : VizViews.StoryView;
      view = new View(stage, answer, { onPosition });
      view.render();
      stepper.hidden = view.length < 2;
    } else {
      view = null;
      title.textContent = "";
      stepper.hidden = true;
      stage.replaceChildren(el("img", { class: "diagram", alt: `${answer.kind} diagram`,
                                        src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(answer.svg) }));
    }
  }

  prev.addEventListener("click", () => view && view.go(view.position - 1));
  next.addEventListener("click", () => view && view.go(view.position + 1));
  form.addEventListener("submit", (e) => e.preventDefault());
  for (const name of ["answer", "error", "theme"]) model.on(`change:${name}`, draw);
  draw();
  return () => { for (const name of ["answer", "error", "theme"]) model.off(`change:${name}`, draw); };
}

export default { render: vizWidgetRender };
