"""viz build and viz serve: cold and warm gallery builds, and the explorer's request-to-SVG latency.

    python benchmarks/bench_build.py [--jobs 1 2] [--shards 2] [--no-cold] [--requests 15]

- cold: `viz gallery --out TMP --jobs N` in a fresh process (Python start, imports, every figure
  rendered, Manim's text cache empty), for each N; the baseline is --jobs 1, and the speed-up
  jobs 1 / jobs N is reported. The builds run on a snapshot of the source (see `snapshot`).
- shards: `--shards N` cold builds `--shard I/N --jobs 1` started at once into one folder (as a SLURM
  array or GNU parallel runs them), timed until the last ends; compare with cold `--jobs N`.
- warm: the same command again on the finished folder: nothing to render. Target: under 2 s.
- explorer: an in-process `viz serve` on an ephemeral port; each request changes one parameter (a new
  seed or stride, so the answer cache never helps) and the time from sending the request to having
  the SVG / windows JSON is measured. Target: median under 200 ms for diagrams and conv steps.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARM_TARGET_S = 2.0
LATENCY_TARGET_MS = 200.0
COLD_TARGET_S = 120.0  # the whole gallery as shipped (animations at 1080p60, issue 10) on 2 cores


def viz_command(*args) -> list[str]:
    return [sys.executable, "-c", "from viz.app.cli import main; main()", *args]


def snapshot(tmp: Path) -> Path:
    """A copy of the packages: the timed builds run on it (PYTHONPATH), so edits made to the working
    tree while the benchmark runs cannot invalidate the cache between the cold and the warm build."""
    src = tmp / "src"
    for package in ("viz", "diagrams", "scenes"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def timed_gallery(out: Path, jobs: int, force: bool, src: Path, cache: Path) -> dict:
    """`viz gallery` in a fresh process; `cache` is its XDG_CACHE_HOME (Manim's text cache lives there:
    a new folder makes a build cold for Manim too)."""
    cmd = viz_command("gallery", "--out", str(out), "--jobs", str(jobs)) + (["--force"] if force else [])
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env=env)
    seconds = time.perf_counter() - start
    failed = [line.strip() for line in done.stderr.splitlines() if line.startswith("  ") and ": " in line]
    return {"jobs": jobs, "seconds": round(seconds, 2), "exit": done.returncode, "failed": failed,
            "said": (done.stderr.strip().splitlines() or [""])[-1]}


def timed_shards(out: Path, count: int, src: Path, cache: Path) -> dict:
    """`viz gallery --shard I/N --jobs 1` for every I at once, into one folder; wall time of the set."""
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    start = time.perf_counter()
    procs = [subprocess.Popen(viz_command("gallery", "--out", str(out), "--jobs", "1", "--shard", f"{i}/{count}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=out.parent, env=env)
             for i in range(1, count + 1)]
    errs = [p.communicate()[1] for p in procs]
    seconds = time.perf_counter() - start
    failed = [line.strip() for e in errs for line in e.splitlines() if line.startswith("  ") and ": " in line]
    return {"shards": count, "seconds": round(seconds, 2), "exit": [p.returncode for p in procs], "failed": failed}


def explorer_latency(requests: int) -> dict:
    from viz.app import serve

    server = serve.make_server(0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    port = server.server_address[1]
    cases = {
        "conv 1-D (homework)": ("conv", lambda i: {"input": "7", "channels": "5", "kernel": "3", "stride": "2",
                                                   "seed": str(i)}),
        "conv 2-D 7x7 s2 d2 p2": ("conv", lambda i: {"input": "7x7", "channels": "1", "kernel": "3",
                                                     "stride": "2", "dilation": "2", "padding": "2",
                                                     "seed": str(i)}),
        "conv 2-D 28x28 k5 (784 cells)": ("conv", lambda i: {"input": "28x28", "channels": "3", "kernel": "5",
                                                              "stride": "1", "seed": str(i)}),
        "gated RNN unrolled T=4": ("gated", lambda i: {"view": "unrolled", "steps": "4", "seed": str(i)}),
        "AttentionRNN(2) unrolled T=6": ("attention", lambda i: {"view": "unrolled", "k": "2", "steps": "6",
                                                                 "seed": str(i)}),
        "BPTT gated explode T=12": ("bptt", lambda i: {"model": "gated", "preset": "explode", "steps": "12",
                                                       "seed": str(i)}),
    }
    results = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for name, (figure, params) in cases.items():
            times, error = [], None
            for i in range(requests + 1):
                body = json.dumps({"figure": figure, "params": params(i)})
                start = time.perf_counter()
                conn.request("POST", "/api/render", body=body, headers={"Content-Type": "application/json"})
                res = conn.getresponse()
                data = json.loads(res.read())
                elapsed = (time.perf_counter() - start) * 1000
                if res.status != 200:
                    error = data.get("error")
                    break
                if i:  # the first request of a case loads its modules (graphviz, ...): not a change
                    times.append(elapsed)
            if error:
                results.append({"case": name, "error": error})
                continue
            times.sort()
            results.append({"case": name, "requests": len(times), "median_ms": round(statistics.median(times), 1),
                            "p90_ms": round(times[int(0.9 * (len(times) - 1))], 1),
                            "max_ms": round(times[-1], 1)})
    finally:
        conn.close()
        server.shutdown()
        server.server_close()
    return {"cases": results}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shards", type=int, default=0, help="also time N shards run at once (0: skip)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold builds (minutes)")
    parser.add_argument("--requests", type=int, default=15, help="explorer requests per case")
    args = parser.parse_args(argv)

    report: dict = {"name": "build", "cold": [], "warm": None}
    with tempfile.TemporaryDirectory(prefix="viz-bench-") as tmp:
        tmp = Path(tmp)
        src = snapshot(tmp)
        out = cache = None
        if not args.no_cold:
            for jobs in args.jobs:
                out, cache = tmp / f"gallery-j{jobs}", tmp / f"cache-j{jobs}"
                report["cold"].append(timed_gallery(out, jobs, True, src, cache))
        if args.shards and not args.no_cold:
            report["shards"] = timed_shards(tmp / "gallery-shards", args.shards, src, tmp / "cache-shards")
        if out is None:
            out, cache = tmp / "gallery", tmp / "cache"
            timed_gallery(out, max(args.jobs), False, src, cache)
        if report["cold"] and report["cold"][-1]["failed"]:
            # a failed file is rendered again by the next build (as it should): settle first, so the
            # warm build below measures a build with nothing to do
            report["settle"] = timed_gallery(out, max(args.jobs), False, src, cache)
        report["warm"] = timed_gallery(out, max(args.jobs), False, src, cache)
    report["explorer"] = explorer_latency(args.requests)

    print("viz gallery (the default gallery as shipped: animations at 1080p60)")
    base = report["cold"][0]["seconds"] if report["cold"] else None
    for r in report["cold"]:
        speedup = f"  speed-up x{base / r['seconds']:.2f} vs --jobs {report['cold'][0]['jobs']}" if base else ""
        fails = f"  ({len(r['failed'])} files FAILED)" if r["failed"] else ""
        print(f"  cold  --jobs {r['jobs']}: {r['seconds']:7.2f} s{speedup}{fails}")
        for line in r["failed"]:
            print(f"        {line[:160]}")
    if "shards" in report:
        r = report["shards"]
        print(f"  cold  {r['shards']} shards at once: {r['seconds']:7.2f} s  exit {r['exit']}"
              + (f"  ({len(r['failed'])} files FAILED)" if r["failed"] else ""))
    w = report["warm"]
    print(f"  warm  --jobs {w['jobs']}: {w['seconds']:7.2f} s  (target < {WARM_TARGET_S} s): {w['said']}")
    print("explorer: request -> answer, one parameter changed per request (median / p90 / max)")
    for c in report["explorer"]["cases"]:
        if "error" in c:
            print(f"  {c['case']:32} error: {c['error']}")
        else:
            print(f"  {c['case']:32} {c['median_ms']:7.1f} {c['p90_ms']:7.1f} {c['max_ms']:7.1f} ms")
    timed = [c for c in report["explorer"]["cases"] if "error" not in c]
    worst = max((c["median_ms"] for c in timed), default=None)
    cold_ok = all(r["seconds"] < COLD_TARGET_S and not r["failed"] for r in report["cold"]
                  if r["jobs"] == 2) if report["cold"] else None
    report.update({
        "warm_met": w["seconds"] < WARM_TARGET_S and "nothing to render" in w["said"],
        "latency_worst_median_ms": worst,
        "latency_met": worst is not None and worst < LATENCY_TARGET_MS
                       and len(timed) == len(report["explorer"]["cases"]),
        "cold_met": cold_ok,
    })
    report["met"] = bool(report["warm_met"] and report["latency_met"] and cold_ok is not False)
    print(f"targets: warm < {WARM_TARGET_S} s {'met' if report['warm_met'] else 'NOT met'}; explorer median < "
          f"{LATENCY_TARGET_MS:.0f} ms {'met' if report['latency_met'] else 'NOT met'}"
          + ("" if cold_ok is None else f"; cold --jobs 2 < {COLD_TARGET_S:.0f} s {'met' if cold_ok else 'NOT met'}"))
    return report


if __name__ == "__main__":
    main()
