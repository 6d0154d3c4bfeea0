"""Convolution forward + backward: viz's NumPy reference against PyTorch CPU autograd.

    python benchmarks/bench_conv.py [--repeats 31] [--dtype float32|float64|both] [--case conv2d|conv1d]
                                    [--torch-threads N] [--blas-threads N]

Both run on the same data in the same process, interleaved (viz, torch, viz, torch, ...) so that load
from other processes hits both alike; the medians and their ratio viz/torch are printed, with the
fastest run of each as a guide to an unloaded machine. One timed call is a forward pass plus the
backward pass for grad_x and grad_w (no bias), both in the same dtype (float32 and float64 by default).

Threads: both get the same by default, so the ratio compares implementations on equal resources:
torch gets --torch-threads (default: the same as --blas-threads, 1). NumPy's BLAS (OpenBLAS) gets
--blas-threads, 1 by default: the timing runs in a fresh Python process started
with OPENBLAS_NUM_THREADS set, because a BLAS pool spinning on a 2-core machine that other processes
share makes NumPy 5-10x slower and the numbers meaningless (measured: viz forward 1.8 ms with one BLAS
thread, 11-16 ms with two while two other jobs ran). --blas-threads 0 leaves NumPy as it is.
(torch's two-thread pool stalls the same way: with --torch-threads 2 its medians swing by 10x from
run to run here, while its fastest runs are 1.5-2x faster than one thread.) Target: ratio <= 2.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viz.conv import conv, conv_backward  # noqa: E402

CASES = {
    # N=8, C=16, 64x64, F=32, k=3, stride 2, dilation 2, padding 2 -> 8x32x32x32
    "conv2d": dict(x=(8, 16, 64, 64), w=(32, 16, 3, 3), stride=2, padding=2, dilation=2),
    # N=8, C=16, L=4096, F=32, k=5, stride 2, dilation 2, padding 4 -> 8x32x2048
    "conv1d": dict(x=(8, 16, 4096), w=(32, 16, 5), stride=2, padding=4, dilation=2),
}
TARGET = 2.0


def time_case(name: str, dtype: str, repeats: int, seed: int = 0) -> dict:
    import torch
    import torch.nn.functional as F

    case = CASES[name]
    geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    y = conv(x, w, **geo)
    gy = rng.standard_normal(y.shape).astype(dtype)
    torch_conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.ndim - 2]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    gyt = torch.tensor(gy)

    def run_viz():
        y = conv(x, w, **geo)
        gx, gw = conv_backward(x, w, gy, **geo)
        return y, gx, gw

    def run_torch():
        xt.grad = wt.grad = None
        yt = torch_conv(xt, wt, **geo)
        yt.backward(gyt)
        return yt, xt.grad, wt.grad

    # Same numbers (a benchmark of a wrong result is worthless), then warm both up.
    tol = dict(rtol=1e-3, atol=1e-2) if dtype == "float32" else dict(rtol=1e-9, atol=1e-9)
    for mine, theirs, what in zip(run_viz(), run_torch(), ("y", "grad_x", "grad_w")):
        np.testing.assert_allclose(mine, theirs.detach().numpy(), err_msg=f"{name} {what}", **tol)
    for _ in range(2):
        run_viz()
        run_torch()

    t_viz, t_torch = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_viz()
        t1 = time.perf_counter()
        run_torch()
        t2 = time.perf_counter()
        t_viz.append(t1 - t0)
        t_torch.append(t2 - t1)
    viz_ms = float(np.median(t_viz) * 1e3)
    torch_ms = float(np.median(t_torch) * 1e3)
    return {
        "case": name, "dtype": dtype, "x": list(case["x"]), "w": list(case["w"]),
        "out": list(y.shape), **geo, "repeats": repeats, "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "viz_ms": round(viz_ms, 3), "torch_ms": round(torch_ms, 3), "ratio": round(viz_ms / torch_ms, 3),
        "viz_min_ms": round(float(np.min(t_viz) * 1e3), 3), "torch_min_ms": round(float(np.min(t_torch) * 1e3), 3),
        "target": TARGET,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: --blas-threads, or torch's own with 0)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads for NumPy, in a fresh process (0: leave NumPy as it is)")
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> dict:
    """Run the benchmark, print a table, return {"results": [one dict per case and dtype], ...}.

    argv None means the defaults (not sys.argv: a runner calling main() has its own arguments)."""
    argv = list(argv or [])
    args = _parser().parse_args(argv)
    if args.blas_threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        return _in_fresh_process(argv, args.blas_threads)
    try:
        import torch
    except ImportError:
        print("bench_conv: PyTorch is not installed; nothing to compare against (pip install torch)")
        return {"name": "conv", "skipped": "torch not installed", "results": []}
    threads_before = torch.get_num_threads()
    torch_threads = args.blas_threads if args.torch_threads is None else args.torch_threads
    if torch_threads:
        torch.set_num_threads(torch_threads)
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    try:
        results = [time_case(name, dtype, args.repeats) for dtype in dtypes for name in (args.case or list(CASES))]
    finally:
        torch.set_num_threads(threads_before)
    r0 = results[0]
    print(f"conv forward + backward (grad_x, grad_w), median of {args.repeats} interleaved runs; "
          f"torch CPU {r0['torch_threads']} threads, NumPy BLAS threads {r0['blas_threads']}")
    print(f"{'case':8} {'dtype':8} {'output':>12} {'viz ms':>8} {'torch ms':>9} {'viz/torch':>9}"
          f"   {'min viz':>8} {'min torch':>9} {'ratio':>6}")
    for r in results:
        out = "x".join(map(str, r["out"]))
        print(f"{r['case']:8} {r['dtype']:8} {out:>12} {r['viz_ms']:8.2f} {r['torch_ms']:9.2f} {r['ratio']:9.2f}"
              f"   {r['viz_min_ms']:8.2f} {r['torch_min_ms']:9.2f} {r['viz_min_ms'] / r['torch_min_ms']:6.2f}")
    worst = max(r["ratio"] for r in results)
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"target viz/torch (medians) <= {TARGET}: {verdict} (worst {worst:.2f}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    summary = {"name": "conv", "results": results, "worst_ratio": worst, "target": TARGET, "met": worst <= TARGET}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary))
    return summary


def _in_fresh_process(argv: list[str], blas_threads: int) -> dict:
    """Re-run this script with OPENBLAS_NUM_THREADS set (it only acts before NumPy loads)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": str(blas_threads)}
        sys.stdout.flush()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--json-out", str(out)],
                       env=env, check=True)
        return json.loads(out.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
