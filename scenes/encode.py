"""Video post-processing with PyAV: a small GIF with one palette, and a WebM with the same bytes every run."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path


def gif_from_video(src: Path, dst: Path) -> None:
    """Convert a video to a looping GIF with one palette built from all its frames (ffmpeg's
    palettegen, through PyAV), no dithering (flat colours stay flat and compress), and only the
    changed rectangle stored per frame. Two passes over the video, so memory stays one frame."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        palettegen = graph.add("palettegen", "max_colors=256:stats_mode=full")
        sink = graph.add("buffersink")
        source.link_to(palettegen)
        palettegen.link_to(sink)
        graph.configure()
        for frame in inp.decode(stream):
            graph.push(frame)
        graph.push(None)
        palette = graph.pull()
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="gif") as out:
        stream = inp.streams.video[0]
        fps = int(round(float(stream.average_rate)))
        gif = out.add_stream("gif", rate=fps)
        gif.width, gif.height, gif.pix_fmt = stream.codec_context.width, stream.codec_context.height, "pal8"
        gif.time_base = Fraction(1, fps)
        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        palette_in = graph.add_buffer(width=palette.width, height=palette.height, format=palette.format.name,
                                      time_base=Fraction(1, 1))
        paletteuse = graph.add("paletteuse", "dither=none:diff_mode=rectangle")
        sink = graph.add("buffersink")
        source.link_to(paletteuse, 0, 0)
        palette_in.link_to(paletteuse, 0, 1)
        paletteuse.link_to(sink)
        graph.configure()
        palette.pts = 0
        palette_in.push(palette)
        palette_in.push(None)
        written = 0

        def drain():
            nonlocal written
            while True:
                try:
                    frame = graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                frame.pts, frame.time_base = written, Fraction(1, fps)
                written += 1
                for packet in gif.encode(frame):
                    out.mux(packet)

        for frame in inp.decode(stream):
            source.push(frame)
            drain()
        source.push(None)
        drain()
        for packet in gif.encode():
            out.mux(packet)


def bitexact_webm(src: Path, dst: Path) -> None:
    """Copy a WebM's packets into a new file with FFmpeg's bitexact flag: the Matroska muxer then
    writes fixed segment and track ids instead of random ones. Frames are not re-encoded; every
    packet gets the frame period as its duration (so the last frame still lasts one period)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="webm",
                                           container_options={"fflags": "+bitexact"}) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        out.metadata.update(inp.metadata)
        period = round(1 / (stream.average_rate * stream.time_base))
        for packet in inp.demux(stream):
            if packet.dts is None:   # the demuxer's end-of-stream marker
                continue
            packet.stream, packet.duration = copy, period
            out.mux(packet)
