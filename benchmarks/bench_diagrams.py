"""Diagrams: time from start to SVG written, with the figure's node and edge counts.

    python benchmarks/bench_diagrams.py [--steps 8 16 32 64] [--repeat 3] [--no-cli]

- in-process: `diagrams.figures.render_diagram` (reference run, graph model, Graphviz layout, frames,
  atomic write), best of --repeat, for the gated RNN unrolled at T = 4 (the baseline) and
  AttentionRNN(∞) unrolled at each T; the ratio to the baseline is reported.
- cli: the same figures through `viz diagram ...` in a fresh process (Python start and imports
  included), once each.
Target: AttentionRNN(∞) at T = 64 under 10 s from command start to SVG written (Graphviz's `dot`
falls off a cliff past a few hundred nodes; the compact layout keeps the figure small).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 10.0


def cases(steps: list[int]) -> list[tuple[str, str, dict]]:
    out = [("gated-rnn unrolled T=4", "gated-rnn", dict(view="unrolled", steps=4))]
    out += [(f"attention-rnn(∞) unrolled T={T}", "attention-rnn", dict(view="unrolled", steps=T, k=None))
            for T in steps]
    return out


def cli_args(kind: str, params: dict, out: Path) -> list[str]:
    args = [sys.executable, "-c", "from viz.app.cli import main; main()", "diagram", kind]
    for key, value in params.items():
        args += [f"--{key.replace('_', '-')}", "inf" if value is None else str(value)]
    return args + ["-o", str(out)]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="skip the subprocess timings")
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print("Graphviz `dot` is not installed: skipped")
        return {"skipped": "Graphviz dot not installed"}

    from diagrams.figures import build_diagram, render_diagram
    from viz.app import registry

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind, raw in cases(args.steps):
            params = registry.get(f"diagram {kind}").validate(
                {k: "inf" if v is None else v for k, v in raw.items()})
            g = build_diagram(kind, params)
            nodes = len(g.nodes)
            edges = sum(e.kind != "invisible" for e in g.edges)
            out = Path(tmp) / "fig.svg"
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                render_diagram(kind, params, out, "svg")
                best = min(best, time.perf_counter() - start)
            cli = None
            if not args.no_cli:
                cli_out = Path(tmp) / "cli.svg"
                start = time.perf_counter()
                done = subprocess.run(cli_args(kind, raw, cli_out), capture_output=True, text=True, cwd=ROOT)
                cli = time.perf_counter() - start if done.returncode == 0 and cli_out.exists() else None
                if cli is None:
                    print(f"  cli failed for {name}: {done.stderr.strip().splitlines()[-1:]}")
            rows.append({"figure": name, "nodes": nodes, "edges": edges,
                         "in_process_s": round(best, 3), "cli_s": None if cli is None else round(cli, 3)})

    base = rows[0]["in_process_s"]
    print(f"{'figure':36} {'nodes':>6} {'edges':>6} {'in-process s':>13} {'x baseline':>11} {'cli s':>8}")
    for r in rows:
        r["ratio"] = round(r["in_process_s"] / base, 2)
        cli = "-" if r["cli_s"] is None else f"{r['cli_s']:.2f}"
        print(f"{r['figure']:36} {r['nodes']:>6} {r['edges']:>6} {r['in_process_s']:>13.3f} "
              f"{r['ratio']:>11.2f} {cli:>8}")
    worst = max([r["in_process_s"] for r in rows] + [r["cli_s"] or 0 for r in rows])
    met = worst < TARGET_S
    print(f"target: every figure under {TARGET_S:g} s from start to SVG written -> {'met' if met else 'NOT met'}")
    return {"rows": rows, "target_s": TARGET_S, "met": met}


if __name__ == "__main__":
    main()
