"""Training speed on the temporal-order task: viz's NumPy reference against PyTorch on the CPU.

    python benchmarks/bench_train.py [--models vanilla gated] [--steps 200] [--repeats 3]

For each model, the default configuration of `viz.train` (T, hidden size, batch, SGD lr; no
clipping) is trained for --steps steps, best of --repeats, and reported as steps per second:

- viz          `viz.train.train` (NumPy float64: forward trace, BPTT, read-out, SGD)
- torch f64    the same model written with torch ops in float64 and trained with autograd and
               torch.optim.SGD on the same batches (the oracle the tests compare with: its losses are
               checked against viz's here too)
- nn.RNN f64 / f32   (vanilla only) torch.nn.RNN(tanh) + nn.Linear, the fused library cell, in
               float64 and float32

The ratio is viz / torch (above 1: viz is faster). PyTorch runs on one thread (NumPy does not thread
matrices this small); repeats are interleaved and the best of each variant is kept. Batches come from the same NumPy task in every
variant, so data generation costs the same everywhere. Target: the figure's work — the default run
without and with clipping — takes well under a minute (< 30 s) on a laptop CPU.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.oracles import torch_rnn_last_state  # noqa: E402  (the tests' oracle, timed)
from viz import train as tr  # noqa: E402

FIGURE_TARGET_S = 30.0


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def torch_trainer(torch, model: str, steps: int, dtype, fused: bool):
    """A function training the default configuration with PyTorch for `steps` steps; returns losses."""
    cfg = tr.DEFAULTS
    task = tr.TemporalOrderTask(T=cfg["T"], n_distractors=cfg["n_distractors"], seed=0)
    net = tr.SequenceClassifier(model, task.n_symbols, cfg["hidden"], seed=0, scale=cfg["scale"])
    init = {k: torch.tensor(v, dtype=dtype) for k, v in net.params.items()}

    def run():
        if fused:
            rnn = torch.nn.RNN(task.n_symbols, cfg["hidden"], nonlinearity="tanh").to(dtype)
            head = torch.nn.Linear(cfg["hidden"], 4).to(dtype)
            with torch.no_grad():
                rnn.weight_ih_l0.copy_(init["W_x"])
                rnn.weight_hh_l0.copy_(init["W_h"])
                rnn.bias_ih_l0.copy_(init["b"])
                rnn.bias_hh_l0.zero_()
                head.weight.copy_(init["W_o"])
                head.bias.copy_(init["b_o"])
            params = list(rnn.parameters()) + list(head.parameters())
        else:
            p = {k: v.clone().requires_grad_(True) for k, v in init.items()}
            params = list(p.values())
        opt = torch.optim.SGD(params, lr=cfg["lr"])
        losses = []
        for k in range(steps):
            batch = task.make_batch(cfg["batch_size"], k)
            xs = torch.from_numpy(batch.xs).to(dtype)
            labels = torch.from_numpy(batch.labels)
            if fused:
                _, h = rnn(xs)
                logits = head(h[0])
            else:
                h = torch_rnn_last_state(torch, model, p, xs, cfg["hidden"], dtype)
                logits = h @ p["W_o"].T + p["b_o"]
            loss = torch.nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return np.array(losses)

    return run


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=tr.MODELS, default=list(tr.MODELS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    try:
        import torch
        # one thread, like NumPy on these small matrices: a fair comparison that a shared machine
        # does not distort (two threads on two busy cores made torch several times slower here)
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    report: dict = {"name": "train", "steps": args.steps, "config": {**tr.DEFAULTS},
                    "threads": {"torch": torch.get_num_threads() if torch else None,
                                "cpus": os.cpu_count()},
                    "models": {}}
    print(f"training steps per second, default configuration (T = {tr.T_DEFAULT}, hidden "
          f"{tr.HIDDEN}, batch {tr.BATCH_SIZE}, SGD lr {tr.LR}), {args.steps} steps, best of "
          f"{args.repeats}" + (f", torch threads {torch.get_num_threads()}" if torch else ""))
    for model in args.models:
        runners = {"viz": lambda: tr.train(model=model, steps=args.steps)}
        if torch is not None:
            variants = {"torch f64": (torch.float64, False)}
            if model == "vanilla":
                variants.update({"nn.RNN f64": (torch.float64, True),
                                 "nn.RNN f32": (torch.float32, True)})
            for name, (dtype, fused) in variants.items():
                runners[name] = torch_trainer(torch, model, args.steps, dtype, fused)
                runners[name]()                                   # warm-up (allocator, kernels)
        # interleaved repeats: a busy machine slows every variant alike; best of each
        best = {name: float("inf") for name in runners}
        for _ in range(args.repeats):
            for name, run in runners.items():
                best[name] = min(best[name], best_time(run, 1))
        row: dict = {name: args.steps / seconds for name, seconds in best.items()}
        line = f"  {model:8} viz {row['viz']:6.0f}/s"
        for name in runners:
            if name != "viz":
                line += f" | {name} {row[name]:6.0f}/s (viz x{row['viz'] / row[name]:.2f})"
        if torch is not None:
            # the same arithmetic: viz's recorded losses equal the float64 autograd oracle's
            oracle = torch_trainer(torch, model, min(args.steps, 50), torch.float64, False)()
            mine = tr.train(model=model, steps=min(args.steps, 50)).loss
            row["max_loss_diff_vs_torch_f64"] = float(np.abs(oracle - mine).max())
            line += f" | loss diff {row['max_loss_diff_vs_torch_f64']:.1e}"
        row["ratio_vs_torch_f64"] = row["viz"] / row["torch f64"] if "torch f64" in row else None
        report["models"][model] = row
        print(line)

    start = time.perf_counter()
    unclipped, clipped = tr.clipping_comparison()
    figure_s = time.perf_counter() - start
    report["figure_runs_s"] = figure_s
    report["evidence"] = {
        "initial_loss": unclipped.initial_loss, "ln4": tr.LN4,
        "initial_accuracy": float(unclipped.accuracy[0]),
        "max_loss_unclipped": float(np.nanmax(unclipped.loss)),
        "max_loss_clipped_after_step_1": float(np.nanmax(clipped.loss[1:])),
        "first_spike": None if unclipped.first_spike() is None else vars(unclipped.first_spike()),
        "spikes_clipped": len(clipped.spikes()),
    }
    ev = report["evidence"]
    print(f"the figure's two default runs ({tr.STEPS} steps each, vanilla): {figure_s:.2f} s "
          f"(target < {FIGURE_TARGET_S:.0f} s)")
    print(f"  initial loss {ev['initial_loss']:.4f} (ln 4 = {tr.LN4:.4f}), accuracy "
          f"{100 * ev['initial_accuracy']:.0f}%; max loss without clipping "
          f"{ev['max_loss_unclipped']:.2f}, with clip {tr.CLIP:g} {ev['max_loss_clipped_after_step_1']:.3f}"
          f" ({ev['spikes_clipped']} spikes)")
    if ev["first_spike"]:
        s = ev["first_spike"]
        print(f"  first spike: step {s['step'] + 1}, loss {s['loss']:.2f}, gradient norm "
              f"{s['grad_norm']:.3g} at step {s['cause_step'] + 1}")
    report["met"] = figure_s < FIGURE_TARGET_S and ev["first_spike"] is not None \
        and ev["spikes_clipped"] == 0
    if torch is None:
        report["skipped"] = "PyTorch is not installed: no baseline (viz numbers above)"
    return report


if __name__ == "__main__":
    main()
