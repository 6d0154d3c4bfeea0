"""The explorer as a notebook widget (viz.app.widget, anywidget): the kernel-side model answers like the
server, its state round-trips, it answers request messages, it runs in a real notebook (nbclient +
ipykernel), and its ES module renders the linked views in Chromium against a minimal anywidget host."""
from __future__ import annotations

import json
import os

import pytest

anywidget = pytest.importorskip("anywidget")

from viz.app import registry as figures  # noqa: E402
from viz.app.serve import answers  # noqa: E402
from viz.app.widget import ExplorerWidget, bundle, stylesheet  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def test_model_answers_like_the_server():
    w = ExplorerWidget("conv", mode="backward", input="6x5", stride=2, channels=1)
    assert w.answer == answers.render_answer("conv", {"input": "6x5", "stride": 2, "channels": 1}, mode="backward")
    kind = figures.get("animate conv-backward")
    assert w.answer["story"] == kind.build_story(kind.validate({"input": "6x5", "stride": 2, "channels": 1})).to_dict()
    good = w.answer
    w.params = {**w.params, "stride": "0"}          # invalid: the CLI's message, the last figure kept
    with pytest.raises(figures.ParamError) as err:
        figures.get("animate conv").validate({"stride": "0"})
    assert w.error == str(err.value) and w.error_param == "stride" and w.answer == good
    w.params = {"stride": "1"}
    assert w.error == "" and w.answer["command"] == "viz animate conv-backward --stride 1"   # the mode's kind
    w.figure = "bptt"                                  # another figure: its first mode and defaults
    assert w.mode == "" and w.params == {} and w.answer["mode"] == "bptt" and w.answer["story"]["series"]


def test_state_round_trips():
    w = ExplorerWidget("conv", mode="transposed", input="5x4", kernel="2x3", padding="1:0x0:1")
    state = w.get_state()
    json.dumps(state)                                  # what the front end receives is plain JSON
    assert state["figure"] == "conv" and state["mode"] == "transposed" and state["params"]["input"] == "5x4"
    other = ExplorerWidget()
    other.set_state({k: state[k] for k in ("figure", "mode", "theme", "params")})
    assert other.answer == w.answer and other.get_state()["answer"] == state["answer"]
    assert state["answer"]["view"]["part"] == "grad_x" and "export default" in state["_esm"]


def test_answers_request_messages(monkeypatch):
    w = ExplorerWidget()
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append(content))
    w._handle_custom_msg({"type": "render", "id": 7, "figure": "conv", "params": {"stride": "1"}}, [])
    w._handle_custom_msg({"type": "render", "id": 8, "figure": "conv", "params": {"kernel": "9"}}, [])
    w._handle_custom_msg({"type": "something else"}, [])
    assert [m["id"] for m in sent] == [7, 8]
    assert sent[0]["answer"] == answers.render_answer("conv", {"stride": "1"})
    assert sent[1]["error"].startswith("kernel too large on axis 1") and sent[1]["param"] == "kernel"


def test_runs_in_a_notebook():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from viz.app.widget import ExplorerWidget\n"
                                  "w = ExplorerWidget('conv', input='7', stride=1)\nw"),
        nbformat.v4.new_code_cell("w.params = {'stride': '0'}\nprint(repr(w.error))\n"
                                  "w.set_state({'params': {'stride': '3'}})\n"
                                  "print(w.answer['command'], len(w.answer['story']['steps']))"),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False)
    client.execute()
    view = nb.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in view
    model_id = view["application/vnd.jupyter.widget-view+json"]["model_id"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"][model_id]["state"]
    assert state["figure"] == "conv" and state["answer"]["story"]["kind"] == "animate conv"
    text = nb.cells[1].outputs[0]["text"]
    assert "'--stride: must be" in text and "viz animate conv --stride 3 3" in text   # 2 windows + never read


def test_esm_renders_in_chromium(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    sync_api = pytest.importorskip("playwright.sync_api")
    w = ExplorerWidget("conv", input="6", padding="1", stride=2, channels=2)
    state = {k: v for k, v in w.get_state().items() if not k.startswith("_")}
    host = """async ([source, state]) => {
      const listeners = {}; window.saved = [];
      const model = { get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes: () => window.saved.push(
        JSON.parse(JSON.stringify(state.params))), on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
        off: () => {}, send: () => {} };
      window.emit = (name, value) => { state[name] = value; (listeners[`change:${name}`] || []).forEach((f) => f()); };
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      const mod = await import(url);
      mod.default.render({ model, el: document.getElementById("host") });
    }"""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = b.new_page(viewport={"width": 1000, "height": 700})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_content(f"<style>{stylesheet()}</style><div id='host'></div>")
        page.evaluate(host, [bundle(), state])
        page.wait_for_selector(".viz-widget svg.grid")
        lit = page.evaluate("""() => {
          document.querySelector('svg.grid[data-grid="y"] rect[data-cell="1"]')
            .dispatchEvent(new PointerEvent('pointerover', {bubbles: true}));
          return [...document.querySelectorAll('svg.grid[data-grid="x"] rect.lit-window, '
            + 'svg.grid[data-grid="x"] rect.lit-padtap')].map((r) => r.dataset.cell).sort(); }""")
        assert lit == ["0,2", "0,3", "0,4", "1,2", "1,3", "1,4"]       # y[2] reads padded x[·, 3..5]
        assert page.inner_text(".viz-widget .command") == w.answer["command"]
        page.screenshot(path=str(tmp_path / "widget.png"))
        # a parameter edited in the view goes to the model; an error from the kernel dims the view
        page.fill('.viz-form [name="stride"]', "1")
        page.dispatch_event('.viz-form [name="stride"]', "change")
        assert page.evaluate("() => window.saved.at(-1).stride") == "1"
        page.evaluate("() => window.emit('error', '--stride: must be ... (got 0)')")
        assert page.evaluate("() => document.querySelector('.viz-widget').classList.contains('stale')")
        assert page.inner_text(".viz-widget .error") == "--stride: must be ... (got 0)"
        # the transposed convolution's own Story in the widget: an input lights its stamp and products
        t = ExplorerWidget("transpose", mode="scatter", input="3x3", stride=2, padding=1)
        step = next(s for s in t.answer["story"]["steps"] if s["data"].get("input") == [1, 1])
        page.evaluate("(a) => { window.emit('error', ''); window.emit('figure', 'transpose'); "
                      "window.emit('answer', a); }", t.answer)
        lit = page.evaluate("""() => {
          document.querySelector('svg.grid[data-grid="x"] rect[data-cell="0,1,1"]')
            .dispatchEvent(new PointerEvent('pointerover', {bubbles: true}));
          return [...document.querySelectorAll('svg.grid[data-grid="y"] rect.lit-output')]
            .map((r) => r.dataset.cell).sort(); }""")
        assert lit == sorted(",".join(map(str, c)) for c in step["data"]["stamp"])
        assert t.answer["products"][step["id"]][0] in page.inner_text(".viz-widget .info")
        page.screenshot(path=str(tmp_path / "widget-transpose.png"))
        b.close()
    assert errors == []
