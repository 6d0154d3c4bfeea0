"""Render time of the convolution animations, in seconds of render per second of video, against an
encode-only baseline measured in the same run.

    python benchmarks/bench_scenes.py [--qualities high] [--cases homework-1d ...] [--encoders]

Each case renders ConvSlide ("conv") and ConvBackward ("conv-backward") to mp4 in this process (Manim
imported once beforehand; its import time is reported apart), with the registry's default step time.
The baseline: the same number of frames of the same video, decoded beforehand, encoded with libx264 at
its default settings (crf 23, preset medium) from RGBA arrays as Manim hands them over; only the
encoding is timed. `ratio` = render s/s ÷ baseline s/s: below 1 the whole render costs less than
encoding alone did with x264's defaults (holds are converted to YUV once and encoded with
`scenes.render.H264_OPTIONS`). `--encoders` also measures x264 presets and tunes on those frames:
ms per frame, size, and PSNR of the luma against the source frames.

Target (issue 10): the homework forward and backward at 1080p60 in <= 1.0 s per second of video.
On a machine other jobs share, wall time varies: the best of --repeats is reported.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    "homework-1d": dict(input=(7,), channels=5, kernel=(3,), stride=(2,), padding=((0, 0),), dilation=(1,),
                        seed=0, values="int", bias=False),
    "2d-dilated": dict(input=(7, 7), channels=1, kernel=(3, 3), stride=(1, 1), padding=((0, 0), (0, 0)),
                       dilation=(2, 2), seed=0, values="int", bias=False),
    # several filters in groups: drawn part by part (PartScene) in the forward pass too
    "groups-1d": dict(input=(6,), channels=4, filters=4, groups=2, kernel=(3,), stride=(2,), padding=((0, 0),),
                      dilation=(1,), seed=0, values="int", bias=True),
}
KINDS = ("conv", "conv-backward")
TARGET_S_PER_S = 1.0
ENCODERS = {
    "default (medium)": {"crf": "23"},
    "medium, tune=animation": {"crf": "23", "tune": "animation"},
    "veryfast": {"crf": "23", "preset": "veryfast"},
    "veryfast, tune=animation": {"crf": "23", "preset": "veryfast", "tune": "animation"},
    "ultrafast": {"crf": "23", "preset": "ultrafast"},
}


def decode_rgba(path: Path, every: int = 1, limit: int | None = None):
    """The video's frames as RGBA arrays (every `every`-th, at most `limit`), and its fps."""
    import av
    frames = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        for i, f in enumerate(c.decode(s)):
            if i % every == 0:
                frames.append(f.to_ndarray(format="rgba"))
                if limit and len(frames) >= limit:
                    break
    return frames, fps


def video_seconds(path: Path) -> tuple[float, int]:
    import av
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n / float(s.average_rate), n


def encode_seconds(path: Path, options: dict, keep: int | None = None):
    """Seconds to encode every frame of `path` with libx264 `options` (decoding not timed), the size,
    and (with keep) the first `keep` encoded frames decoded again, for PSNR."""
    import av
    import numpy as np
    buf = io.BytesIO()
    total = 0.0
    with av.open(str(path)) as src, av.open(buf, "w", format="mp4") as out:
        s = src.streams.video[0]
        fps = int(round(float(s.average_rate)))
        st = out.add_stream("libx264", rate=fps, options=dict(options))
        st.pix_fmt, st.width, st.height = "yuv420p", s.codec_context.width, s.codec_context.height
        for i, f in enumerate(src.decode(s)):
            rgba = np.ascontiguousarray(f.to_ndarray(format="rgba"))
            t0 = time.perf_counter()
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in st.encode(frame):
                out.mux(packet)
            total += time.perf_counter() - t0
        t0 = time.perf_counter()
        for packet in st.encode():
            out.mux(packet)
        total += time.perf_counter() - t0
    data = buf.getvalue()
    decoded = None
    if keep:
        with av.open(io.BytesIO(data)) as c:
            decoded = [f.to_ndarray(format="gray") for _, f in zip(range(keep), c.decode(video=0))]
    return total, len(data), decoded


def psnr(a, b) -> float:
    import numpy as np
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def encoder_table(path: Path, n_frames: int) -> list[dict]:
    import av
    with av.open(str(path)) as c:
        source = [f.to_ndarray(format="gray") for _, f in zip(range(240), c.decode(video=0))]
    rows = []
    for name, opts in ENCODERS.items():
        secs, size, decoded = encode_seconds(path, opts, keep=len(source))
        q = min(psnr(a, b) for a, b in zip(source, decoded))
        rows.append({"encoder": name, "ms_per_frame": round(1000 * secs / n_frames, 2),
                     "kB": round(size / 1000), "min_psnr_db": round(q, 1)})
        print(f"  {name:28s} {rows[-1]['ms_per_frame']:6.2f} ms/frame {rows[-1]['kB']:7d} kB  "
              f"min PSNR(Y) over the first {len(source)} frames {q:5.1f} dB (vs the rendered mp4)", flush=True)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qualities", nargs="+", default=["high"], choices=["low", "medium", "high"])
    parser.add_argument("--cases", nargs="+", default=["homework-1d"], choices=list(CASES))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--step-time", type=float, default=None, help="default: the registry's")
    parser.add_argument("--encoders", action="store_true", help="also compare x264 presets and tunes")
    args = parser.parse_args(argv)

    from viz.app.registry import get
    step_time = args.step_time or get("animate conv").param("step_time").default
    start = time.perf_counter()
    from scenes.render import import_manim, render_animation, scene_class
    from scenes.story_scene import StoryScene
    import_manim()
    import_seconds = time.perf_counter() - start

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quality in args.qualities:
            for case in args.cases:
                for kind in args.kinds:
                    params = dict(CASES[case])
                    if issubclass(scene_class(kind), StoryScene):
                        params["step_time"] = step_time
                    out = Path(tmp) / f"{kind}-{case}-{quality}.mp4"
                    walls = []
                    for _ in range(max(1, args.repeats)):
                        t0 = time.perf_counter()
                        render_animation(kind, params, out, "mp4", quality=quality, progress=False)
                        walls.append(time.perf_counter() - t0)
                    video, n = video_seconds(out)
                    enc, _, _ = encode_seconds(out, ENCODERS["default (medium)"])
                    wall = min(walls)
                    r = {"kind": kind, "case": case, "quality": quality, "frames": n, "video_s": round(video, 2),
                         "wall_s": round(wall, 2), "render_s_per_s": round(wall / video, 3),
                         "encode_only_s_per_s": round(enc / video, 3), "ratio": round(wall / enc, 3),
                         "story_scene": "step_time" in params}
                    rows.append(r)
                    print(f"{kind:14s} {case:12s} {quality:6s} {r['wall_s']:7.2f} s wall {r['video_s']:6.2f} s video "
                          f"{r['render_s_per_s']:6.3f} s/s | encode-only {r['encode_only_s_per_s']:6.3f} s/s | "
                          f"ratio {r['ratio']:5.2f}", flush=True)
                    if args.encoders and kind == args.kinds[0]:
                        r["encoders"] = encoder_table(out, n)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"manim import {import_seconds:.2f} s; load average {load:.2f}" if load is not None else "")
    key = [r for r in rows if r["case"] == "homework-1d" and r["quality"] == "high"]
    met = bool(key) and all(r["render_s_per_s"] <= TARGET_S_PER_S for r in key)
    if key:
        print(f"target: homework forward and backward at 1080p60 <= {TARGET_S_PER_S} s/s: "
              + ", ".join(f"{r['kind']} {r['render_s_per_s']:.2f}" for r in key) + f" -> {'met' if met else 'NOT met'}")
    return {"rows": rows, "import_s": round(import_seconds, 2), "load_average": load,
            "target_s_per_s": TARGET_S_PER_S, "met": met}


if __name__ == "__main__":
    main()
