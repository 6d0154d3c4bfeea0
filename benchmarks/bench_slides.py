"""A slide deck costs little more than the video: the homework conv deck against its single video.

    python benchmarks/bench_slides.py [--quality high] [--repeats 1] [--kind conv]

Both are measured in this process, one after the other, alternating when --repeats > 1 (the best
of each is reported), Manim imported beforehand:
    video   `viz animate conv ... -o conv.mp4`                 (scenes.render.render_animation)
    deck    `viz slides animate conv ... -o deck/`             (viz.app.slides.build_deck: the same
            render, plus cutting and re-encoding every step's clip, posters, SVG stills, the page)
Target: deck <= 1.2 x video at 1080p60 (--quality high).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HOMEWORK = {"input": "7", "channels": 5, "kernel": 3, "stride": 2}
TARGET_RATIO = 1.2


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", default="high", choices=["low", "medium", "high"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--kind", default="conv", choices=["conv", "conv-backward"])
    args = parser.parse_args(argv)

    from scenes.render import import_manim, render_animation
    from viz.app import registry, slides

    try:
        slides.reveal_dist()
    except Exception as err:  # noqa: BLE001 - a missing reveal.js is a skip, not a crash
        print(err)
        return {"skipped": str(err)}
    import_manim()
    kind = registry.get(f"animate {args.kind}")
    values = kind.validate({**HOMEWORK, "quality": args.quality})
    params, quality = slides.scene_params(kind, values)
    video_s, deck_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            render_animation(kind.name, dict(params), Path(tmp) / f"video-{r}.mp4", "mp4", quality,
                             progress=False)
            video_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            slides.build_deck(kind, values, Path(tmp) / f"deck-{r}", progress=False)
            deck_s.append(time.perf_counter() - t0)
        steps = len(list((Path(tmp) / "deck-0" / "media").glob("step-*.mp4")))
    video, deck = min(video_s), min(deck_s)
    ratio = deck / video
    met = ratio <= TARGET_RATIO
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"{args.kind} homework at {args.quality}: video {video:.2f} s, deck ({steps} clips) {deck:.2f} s, "
          f"ratio {ratio:.3f} (target <= {TARGET_RATIO}) -> {'met' if met else 'NOT met'}; runs: video "
          f"{[round(v, 2) for v in video_s]}, deck {[round(d, 2) for d in deck_s]}"
          + (f"; load average {load:.2f}" if load is not None else ""))
    return {"video_s": round(video, 2), "deck_s": round(deck, 2), "ratio": round(ratio, 3),
            "steps": steps, "quality": args.quality, "target_ratio": TARGET_RATIO, "met": met,
            "video_runs_s": [round(v, 2) for v in video_s], "deck_runs_s": [round(d, 2) for d in deck_s]}


if __name__ == "__main__":
    main()
