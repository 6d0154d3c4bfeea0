"""Run every benchmarks/bench_*.py in one process and print a summary (`./tasks bench`).

    python benchmarks/run_all.py [--only build conv] [--json results.json]

Each module exposes ``main(argv=None) -> dict`` (printing its own table) and is run with no arguments.
The summary lists each benchmark's verdict ("met" when its targets are met), its time, and any
benchmark that crashed; the exit status is 1 only when one crashed (a missed target is a result).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def discover() -> dict[str, Path]:
    return {p.stem[len("bench_"):]: p for p in sorted(HERE.glob("bench_*.py"))}


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    benches = discover()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(benches), help="run only these")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    args = parser.parse_args(argv)

    results, summary = {}, []
    for name, path in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {path.name} ===", flush=True)
        start = time.perf_counter()
        try:
            result = load(name, path).main([])
            verdict = ("skipped: " + str(result["skipped"]) if result.get("skipped")
                       else "met" if result.get("met") else "NOT met" if "met" in result else "done")
        except Exception:
            traceback.print_exc()
            result, verdict = {"crashed": traceback.format_exc(limit=3)}, "CRASHED"
        seconds = time.perf_counter() - start
        results[name] = result
        summary.append((name, verdict, seconds))
        sys.stdout.flush()

    print("\n=== summary ===")
    for name, verdict, seconds in summary:
        print(f"  {name:12} {verdict:24} {seconds:8.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 1 if any(v == "CRASHED" for _, v, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
