"""The user's own weights and inputs for the recurrent figures (--weights FILE.npz, --inputs FILE):
the Stories draw exactly those numbers (against the reference, and against torch autograd), every bad
file, key or shape is one line with exit status 2 and no file, manifests read paths relative to
themselves, and Python passes dicts of arrays."""
from __future__ import annotations

import io
import json
import shlex

import numpy as np
import pytest
from click.testing import CliRunner

from tests.oracles import assert_close, torch_or_skip
from viz import rnn
from viz import attention as A
from viz.app import registry
from viz.app.cli import cli

N, M, T = 3, 2, 5


def gated_weights(seed=1, scale=1.0, n=N, m=M) -> dict:
    rng = np.random.default_rng(seed)
    return {"W_c": rng.standard_normal((m, n)) * scale, "W_h": rng.standard_normal((m, m)) * scale,
            "W_x": rng.standard_normal((m, n)) * scale}


def attention_weights(k, seed=2, scale=0.6, n=N) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((n, n)) * scale for name in A.weight_names(k)}


def inputs(steps=T, n=N, seed=3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((steps, n))


def run_cli(args, out):
    r = CliRunner().invoke(cli, [str(a) for a in args] + ["-o", str(out)], prog_name="viz")
    return r


def story_of(tmp_path, args, name="fig"):
    out = tmp_path / f"{name}.story.json"
    r = run_cli(args, out)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())


@pytest.fixture
def files(tmp_path):
    np.savez(tmp_path / "gated.npz", **gated_weights())
    np.savez(tmp_path / "att2.npz", **attention_weights(2))
    np.savez(tmp_path / "attinf.npz", **attention_weights(None))
    np.save(tmp_path / "x.npy", inputs())
    return tmp_path


# ---- the numbers drawn are the numbers given -------------------------------------------------------

def test_bptt_gated_norms_equal_the_reference_run_with_those_weights(files):
    story = story_of(files, ["animate", "bptt", "--model", "gated", "--steps", T, "--n", N, "--m", M,
                             "--weights", files / "gated.npz", "--inputs", files / "x.npy"])
    model = rnn.GatedRNN(N, M)
    model.W_c, model.W_h, model.W_x = (gated_weights()[k] for k in ("W_c", "W_h", "W_x"))
    trace = model.forward(inputs())
    grads = model.backward(trace, rnn.last_step_upstream(T, M, seed=0))
    assert_close(story["series"][0]["y"], grads.delta_norms, what="‖δ[t]‖")
    # a seeded run would draw other numbers: the weights were used
    seeded = story_of(files, ["animate", "bptt", "--steps", T, "--n", N, "--m", M], "seeded")
    assert not np.allclose(seeded["series"][0]["y"], story["series"][0]["y"])


def test_gated_states_and_bptt_norms_equal_torch_autograd(files):
    torch = torch_or_skip()
    w = gated_weights()
    values = registry.get("diagram gated-rnn").validate(
        {"view": "backward", "steps": T, "n": N, "m": M, "weights": str(files / "gated.npz"),
         "inputs": str(files / "x.npy")})
    from viz.story.graphs.figure import run

    r = run("gated-rnn", values)
    W = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
    hs = [torch.zeros(M, dtype=torch.float64, requires_grad=True)]
    for x in torch.tensor(inputs(), dtype=torch.float64):
        c = torch.sigmoid(W["W_c"] @ x + W["W_h"] @ hs[-1])
        hs.append(c * hs[-1] + (1 - c) * (W["W_x"] @ x))
    p = torch.tensor(r.dl_dh[-1], dtype=torch.float64)
    deltas = torch.autograd.grad((p * hs[-1]).sum(), hs[1:])
    assert_close(r.trace.h[1:], torch.stack(hs[1:]).detach().numpy(), what="h[t]")
    assert_close(r.grads.delta_norms, [float(d.norm()) for d in deltas], what="‖δ[t]‖ (torch autograd)")
    story = registry.get("diagram gated-rnn").build_story(values)
    drawn = [ln.numbers[0] for step in story.steps for ln in step.lines if ln.text.startswith("‖δ[")]
    assert_close(drawn, [float(d.norm()) for d in deltas], what="the Story's ‖δ[t]‖ lines")


def _torch_attention_deltas(torch, w: dict, k, xs: np.ndarray, p: np.ndarray):
    """AttentionRNN(k) (base case zeros) / AttentionRNN(∞) written with torch ops, the loss p·h[T];
    returns (h[1..T], δ[1..T]) with δ[t] = dℓ/dh[t] from autograd."""
    W = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in w.items()}
    zero = torch.zeros(N, dtype=torch.float64)
    hs = [zero]
    for t, x in enumerate(torch.tensor(xs, dtype=torch.float64), start=1):
        lags = range(0, t) if k is None else range(0, k + 1)
        logits, values = [], []
        for lag in lags:
            s = x if lag == 0 else (hs[t - lag] if t - lag >= 1 else zero)
            i = min(lag, 1) if k is None else lag
            q, kk, v = W[f"Q_{i}"] @ s, W[f"K_{i}"] @ s, W[f"V_{i}"] @ s
            logits.append(q @ kk)
            values.append(v)
        a = torch.softmax(torch.stack(logits), dim=0)
        h = (a[:, None] * torch.stack(values)).sum(0)
        hs.append(h)
    out = hs[1:]
    deltas = torch.autograd.grad((torch.tensor(p, dtype=torch.float64) * out[-1]).sum(), out,
                                 allow_unused=True)
    deltas = [torch.zeros(N, dtype=torch.float64) if d is None else d for d in deltas]
    return torch.stack(out).detach().numpy(), [float(d.norm()) for d in deltas]


@pytest.mark.parametrize("k, file", [(2, "att2.npz"), (None, "attinf.npz")], ids=["k=2", "k=inf"])
def test_attention_bptt_equals_torch_autograd(files, k, file):
    torch = torch_or_skip()
    story = story_of(files, ["animate", "bptt", "--model", "attention", "--k", "inf" if k is None else k,
                             "--steps", T, "--n", N, "--weights", files / file, "--inputs", files / "x.npy"])
    p = rnn.last_step_upstream(T, N, seed=0)[-1]
    h, norms = _torch_attention_deltas(torch, attention_weights(k), k, inputs(), p)
    assert_close(story["series"][0]["y"], norms, rtol=1e-9, what="‖δ[t]‖ against torch autograd")
    # the diagram of the same weights draws the same states (the weights of the a[t] lines included)
    values = registry.get("diagram attention-rnn").validate(
        {"view": "unrolled", "steps": T, "n": N, "k": k, "weights": str(files / file), "inputs": str(files / "x.npy")})
    from viz.story.graphs.figure import run

    assert_close(run("attention-rnn", values).trace.h[1:], h, what="h[t] against torch")


def test_captions_say_your_weights_and_every_claim_holds(files):
    for args in (["animate", "bptt", "--steps", T, "--n", N, "--m", M, "--weights", files / "gated.npz"],
                 ["animate", "bptt", "--model", "attention", "--k", 2, "--steps", 12, "--n", N,
                  "--weights", files / "att2.npz"],
                 ["diagram", "gated-rnn", "--view", "backward", "--steps", T, "--n", N, "--m", M,
                  "--weights", files / "gated.npz", "--inputs", files / "x.npy"],
                 ["diagram", "attention-rnn", "--k", "inf", "--steps", T, "--weights", files / "attinf.npz"]):
        kind = registry.get(" ".join(str(a) for a in args[:2]))
        raw = {str(args[i]).lstrip("-").replace("-", "_"): str(args[i + 1]) for i in range(2, len(args), 2)}
        story = kind.build_story(kind.validate(raw))
        text = " ".join(c.text for c in story.captions)
        assert "your weights" in text.lower(), text
        assert story.params["preset"] == "your weights"
        assert not story.failed_claims(), [c.id for c in story.failed_claims()]
        ids = {c.id for cap in story.captions for c in cap.claims}
        assert "your_weights" in ids
        # nothing a preset promised: the presets' words and claims are gone
        assert not {"near-identity", "copies", "edge-gain", "skip-paths-keep-gradient"} & ids
        assert "preset" not in text.replace("presets' figures", "")


@pytest.mark.parametrize("scale, verdict", [(0.05, "vanishes"), (1.0, None)])
def test_bptt_verdict_is_computed_from_the_numbers(scale, verdict):
    """Tiny weights vanish; the verdict for any weights is what the measured per-step factor says."""
    kind = registry.get("animate bptt")
    for seed in range(6):
        values = kind.validate({"steps": 8, "n": N, "m": M, "weights": gated_weights(seed, scale)})
        story = kind.build_story(values)
        norms = np.array(story.series[0].y)
        rho = (norms[0] / norms[-1]) ** (1 / 7)
        expected = "vanishes" if rho < 0.9 else "explodes" if rho > 1.1 else "survives"
        assert f"the gradient {expected}" in story.captions[1].text
        assert verdict is None or expected == verdict
        assert not story.failed_claims()


def test_zero_weights_draw_and_claim_only_what_holds():
    """All-zero weights: δ[t] = J ᵀ δ with J = diag(½): nothing divides by zero, every claim holds."""
    kind = registry.get("animate bptt")
    zeros = {k: np.zeros_like(v) for k, v in gated_weights().items()}
    for model, w in (("gated", zeros), ("attention", {k: np.zeros((N, N)) for k in A.weight_names(2)})):
        story = kind.build_story(kind.validate({"model": model, "steps": 6, "n": N, "m": M, "weights": w}))
        assert not story.failed_claims(), (model, [c.id for c in story.failed_claims()])


# ---- bad input: one line, exit 2, no file ----------------------------------------------------------

@pytest.fixture
def bad_files(files):
    w = gated_weights()
    np.savez(files / "wrong_shape.npz", **{**w, "W_h": np.ones((M, M + 1))})
    np.savez(files / "missing.npz", W_c=w["W_c"], W_h=w["W_h"])
    np.savez(files / "extra.npz", **w, W_y=np.ones((M, N)))
    np.savez(files / "nan.npz", **{**w, "W_x": np.full((M, N), np.nan)})
    np.savez(files / "empty.npz")
    (files / "garbage.npz").write_bytes(b"not a zip archive")
    (files / "w.txt").write_text("{}")
    (files / "w.json").write_text(json.dumps({k: v.tolist() for k, v in w.items()}))
    (files / "list.json").write_text("[[1, 2]]")
    np.save(files / "x_short.npy", inputs(steps=T - 1))
    np.save(files / "x_nan.npy", np.full((T, N), np.inf))
    return files


GATED = ["diagram", "gated-rnn", "--steps", T, "--n", N, "--m", M]
BPTT = ["animate", "bptt", "--steps", T, "--n", N, "--m", M]


@pytest.mark.parametrize("args, words", [
    (GATED + ["--weights", "{f}/wrong_shape.npz"], f"--weights: W_h: expected shape {M}x{M} for state size m = {M}, got {M}x{M + 1}"),
    (GATED + ["--weights", "{f}/missing.npz"], "--weights: missing W_x (the gated RNN needs W_c, W_h, W_x; got W_c, W_h)"),
    (GATED + ["--weights", "{f}/extra.npz"], "--weights: unexpected W_y (the gated RNN takes W_c, W_h, W_x only)"),
    (GATED + ["--weights", "{f}/nan.npz"], "--weights: W_x: must be finite (entry (1, 1), 1-based, is nan)"),
    (GATED + ["--weights", "{f}/empty.npz"], "--weights: holds no arrays"),
    (GATED + ["--weights", "{f}/garbage.npz"], "--weights: cannot read"),
    (GATED + ["--weights", "{f}/x.npy"], "must be a .npz or .json file"),
    (GATED + ["--weights", "{f}/w.txt"], "must be a .npz or .json file"),
    (GATED + ["--weights", "{f}/list.json"], "--weights: must be a .npz file, a .json file or JSON object"),
    (GATED + ["--weights", "{f}/nope.npz"], "--weights: no such file"),
    (GATED + ["--weights", "{f}"], "--weights: no such file"),                      # a folder
    (GATED + ["--weights", '{{"W_c": [[1, 2]'], "--weights: not a JSON object"),
    (GATED + ["--weights", '{{"W_c": "x.npy"}}'], "--weights: W_c: must be an array of numbers (got a string)"),
    (["diagram", "gated-rnn", "--steps", T, "--n", N, "--m", 3, "--weights", "{f}/gated.npz"],
     f"--weights: W_c: expected shape 3x{N} for state size m = 3 and input size n = {N}, got {M}x{N}; "
     f"these weights fit --m {M} --n {N}"),
    (GATED + ["--weights", "{f}/gated.npz", "--preset", "explode"], "--preset: does not apply with --weights"),
    (GATED + ["--weights", "{f}/gated.npz", "--scale", "2"], "--scale: does not apply with --weights"),
    (GATED + ["--inputs", "{f}/x_short.npy"], f"--inputs: expected shape {T}x{N} for T = {T} steps (--steps) of "
                                              f"input size n = {N} (--n), got {T - 1}x{N}"),
    (GATED + ["--inputs", "{f}/x_nan.npy"], "--inputs: must be finite"),
    (GATED + ["--inputs", "{f}/nope.csv"], "--inputs: no such file"),
    (["diagram", "attention-rnn", "--k", 3, "--weights", "{f}/att2.npz"],
     "--weights: missing Q_3, K_3, V_3 (AttentionRNN(3) needs Q_0..Q_3, K_0..K_3, V_0..V_3"),
    (["diagram", "attention-rnn", "--k", "inf", "--weights", "{f}/att2.npz"],
     "--weights: unexpected K_2, Q_2, V_2 (AttentionRNN(∞) takes Q_0, Q_1, K_0, K_1, V_0, V_1 only); "
     f"these weights fit --n {N} --k 2"),
    (["diagram", "attention-rnn", "--k", 2, "--weights", "{f}/attinf.npz"],
     f"--weights: missing Q_2, K_2, V_2 (AttentionRNN(2) needs Q_0, Q_1, Q_2, K_0, K_1, K_2, V_0, V_1, V_2; "
     f"got K_0, K_1, Q_0, Q_1, V_0, V_1); these weights fit --n {N} --k 1 or --k inf"),
    (["diagram", "attention-rnn", "--k", 2, "--n", 2, "--weights", "{f}/att2.npz"],
     "--weights: Q_0: expected shape 2x2 for state size n = 2, got 3x3"),
    (BPTT + ["--model", "attention", "--weights", "{f}/gated.npz"], "--weights: missing Q_0"),
    (BPTT + ["--weights", "{f}/att2.npz"], "--weights: missing W_c, W_h, W_x (the gated RNN needs"),
    (BPTT + ["--weights", "{f}/gated.npz", "--preset", "survive"], "--preset: does not apply with --weights"),
    (["animate", "bptt", "--model", "attention", "--k", 2, "--steps", 24, "--weights", "{f}/huge.npz"],
     "the states overflow float64 (h[11] is not finite)"),
])
def test_bad_weights_and_inputs_are_one_line_exit_2_no_file(bad_files, args, words):
    huge = {name: (1e30 if name[0] == "V" else 0.0) * np.eye(N) for name in A.weight_names(2)}   # h grows 1e30-fold
    np.savez(bad_files / "huge.npz", **huge)
    out = bad_files / "out" / "fig.story.json"
    r = run_cli([str(a).format(f=bad_files) for a in args], out)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("viz: error: --") and words in lines[0], r.output
    assert "Traceback" not in r.output and not (bad_files / "out").exists()


def test_json_weights_file_and_literal_draw_the_same_as_the_npz(bad_files):
    base = ["diagram", "gated-rnn", "--view", "backward", "--steps", T, "--n", N, "--m", M]
    npz = story_of(bad_files, base + ["--weights", bad_files / "gated.npz"], "npz")
    from_json = story_of(bad_files, base + ["--weights", bad_files / "w.json"], "json")
    literal = story_of(bad_files, base + ["--weights", (bad_files / "w.json").read_text()], "literal")
    assert npz["steps"] == from_json["steps"] == literal["steps"]
    assert npz["params"]["weights"] == {k: v.tolist() for k, v in gated_weights().items()}


# ---- manifests, Python, the command line that reproduces a figure -----------------------------------

def test_manifest_weights_and_inputs_relative_to_the_manifest(files):
    from viz.app import build

    (files / "notes" / "data").mkdir(parents=True)
    np.savez(files / "notes" / "data" / "w.npz", **gated_weights())
    np.save(files / "notes" / "data" / "x.npy", inputs())
    manifest = files / "notes" / "figures.toml"
    manifest.write_text('[[figure]]\nname = "mine"\nkind = "animate bptt"\nformats = ["story.json"]\n'
                        f'[figure.params]\nsteps = {T}\nn = {N}\nm = {M}\nweights = "data/w.npz"\n'
                        'inputs = "data/x.npy"\n'
                        '[[figure]]\nname = "inline"\nkind = "diagram gated-rnn"\nformats = ["dot"]\n'
                        f'[figure.params]\nsteps = 2\nn = 1\nm = 1\nweights = {{ W_c = [[1.0]], W_h = [[0.5]], '
                        'W_x = [[-1.0]] }\n')
    report = build.build(manifest, files / "site", jobs=1, stream=io.StringIO())
    assert not report.failed
    story = json.loads((files / "site" / "mine.story.json").read_text())
    assert story["params"]["weights"]["W_h"] == gated_weights()["W_h"].tolist()
    assert story["params"]["inputs"] == inputs().tolist()
    assert (files / "site" / "inline.dot").exists()
    manifest.write_text(manifest.read_text().replace('"data/w.npz"', '"data/missing.npz"'))
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(manifest)
    assert err.value.errors[0].startswith('figures.toml:') and "--weights: no such file" in err.value.errors[0]
    assert str(files / "notes" / "data" / "missing.npz") in err.value.errors[0]


def test_python_takes_dicts_of_arrays_and_tensors(files):
    import viz

    torch = torch_or_skip()
    w = gated_weights()
    from_numpy = viz.figure("animate bptt", steps=T, n=N, m=M, weights=w, inputs=inputs())
    from_torch = viz.figure("animate bptt", steps=T, n=N, m=M,
                            weights={k: torch.tensor(v) for k, v in w.items()}, inputs=torch.tensor(inputs()))
    from_file = story_of(files, ["animate", "bptt", "--steps", T, "--n", N, "--m", M, "--weights",
                                 files / "gated.npz", "--inputs", files / "x.npy"])
    assert from_numpy.values == from_torch.values
    assert json.loads(from_numpy.kind.build_story(from_numpy.values).to_json()) == from_file


def test_command_line_reproduces_the_weights():
    kind = registry.get("diagram gated-rnn")
    values = kind.validate({"steps": 2, "n": 1, "m": 1, "weights": {"W_c": [[1.0]], "W_h": [[0.25]],
                                                                    "W_x": [[-1.5]]}, "inputs": [[1], [2]]})
    words = shlex.split(kind.command_line(values))
    assert words[words.index("--weights") + 1] == '{"W_c":[[1.0]],"W_h":[[0.25]],"W_x":[[-1.5]]}'
    given = {w[2:]: words[i + 1] for i, w in enumerate(words) if w.startswith("--")}
    assert kind.validate(given) == values


def test_the_explorer_never_reads_a_weights_path(files):
    from viz.app.serve import BadRequest, render_answer

    with pytest.raises(BadRequest) as err:
        render_answer("gated", {"weights": str(files / "gated.npz")})
    assert "--weights" in str(err.value) and "files are read by the command line only" in str(err.value)


# ---- drawn: a diagram and a BPTT still with the user's weights -----------------------------------------

def test_diagram_png_and_bptt_still_render_with_your_weights(files):
    pytest.importorskip("manim")
    out = files / "drawn"
    r = run_cli(GATED + ["--view", "backward", "--weights", files / "gated.npz", "--inputs", files / "x.npy"],
                out / "gated.png")
    assert r.exit_code == 0, r.output
    assert (out / "gated.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = run_cli(["animate", "bptt", "--steps", 4, "--n", N, "--m", M, "--weights", files / "gated.npz",
                 "--quality", "low"], out / "bptt.png")
    assert r.exit_code == 0, r.output
    assert (out / "bptt.png").stat().st_size > 1000
