"""Render time of the convolution animations: wall seconds per render, and seconds of render per
second of video.

    python benchmarks/bench_scenes.py [--qualities low medium] [--cases homework-1d 2d ...] [--repeats 1]

Each case renders ConvSlide ("conv") and ConvBackward ("conv-backward") to mp4 in this process
(Manim imported once beforehand; its import time is reported apart). The video's length comes from
decoding the file. On a machine other jobs share, wall time varies: the best of --repeats is
reported. Target: the homework 1-D forward convolution (5 channels x 7, k=3, s=2) renders at
480p15 in under 10 s.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    "homework-1d": dict(input=(7,), channels=5, kernel=(3,), stride=2, padding=0, dilation=1, seed=0,
                        values="int"),
    "2d-strided-dilated-padded": dict(input=(7, 7), channels=1, kernel=(3, 3), stride=2, padding=2,
                                      dilation=2, seed=0, values="int"),
    "28x28": dict(input=(28, 28), channels=1, kernel=(3, 3), stride=1, padding=0, dilation=1, seed=0,
                  values="int"),
}
KINDS = ("conv", "conv-backward")
TARGET_SECONDS = 10.0   # homework-1d, conv, low


def video_seconds(path: Path) -> float:
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return frames / float(s.average_rate)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qualities", nargs="+", default=["low", "medium"], choices=["low", "medium", "high"])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    from scenes.render import import_manim, render_animation
    import_manim()
    import_seconds = time.perf_counter() - start

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quality in args.qualities:
            for case in args.cases:
                for kind in args.kinds:
                    out = Path(tmp) / f"{kind}-{case}-{quality}.mp4"
                    walls = []
                    for _ in range(max(1, args.repeats)):
                        t0 = time.perf_counter()
                        render_animation(kind, CASES[case], out, "mp4", quality=quality, progress=False)
                        walls.append(time.perf_counter() - t0)
                    video = video_seconds(out)
                    wall = min(walls)
                    rows.append({"kind": kind, "case": case, "quality": quality, "wall_s": round(wall, 2),
                                 "video_s": round(video, 2), "render_per_video_s": round(wall / video, 3)})
                    r = rows[-1]
                    print(f"{kind:14s} {case:26s} {quality:6s} {r['wall_s']:7.2f} s wall  "
                          f"{r['video_s']:6.2f} s video  {r['render_per_video_s']:6.3f} s/s", flush=True)

    key = [r for r in rows if r["kind"] == "conv" and r["case"] == "homework-1d" and r["quality"] == "low"]
    met = bool(key) and key[0]["wall_s"] < TARGET_SECONDS
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"manim import {import_seconds:.2f} s; load average {load:.2f}" if load is not None else "")
    if key:
        print(f"target: homework 1-D conv at 480p15 < {TARGET_SECONDS:.0f} s: {key[0]['wall_s']:.2f} s "
              f"-> {'met' if met else 'NOT met'}")
    return {"rows": rows, "import_s": round(import_seconds, 2), "load_average": load,
            "target_s": TARGET_SECONDS, "met": met}


if __name__ == "__main__":
    main()
