"""`viz build`: render every figure a manifest lists, in parallel, with a content-addressed cache.

A manifest is TOML; each ``[[figure]]`` names a kind of the registry (`viz kinds`), its
parameters exactly as the command line takes them, and its output formats::

    title = "Figures for lecture 7"          # optional, heads index.md / gallery.html

    [[figure]]
    name = "gated-unrolled"                  # output files: gated-unrolled.svg, gated-unrolled.png
    kind = "diagram gated-rnn"               # "shape", "diagram ...", "animate ...", "plot ..."
    formats = ["svg", "png"]
    caption = "The gated RNN unrolled over four steps."
    [figure.params]
    view = "unrolled"
    steps = 4

The build, in order (one module each):

1. **Validate everything first** (manifest.py, outdir.py): every problem of every entry, and of the
   output folder, is one line (``figures.toml:12: figure "conv-hw": --stride: must be an integer in
   1..16 (got 0)``); nothing renders when there is one.
2. **Sweep** (outdir.py): temporary files and Manim work folders a killed build left are removed.
3. **Cache** (cache.py): each output file has a key (kind, parameters, format, versions, source);
   the records live in ``OUT/.viz-cache.json``; a file is up to date when its key matches and the
   file on disk still has the recorded hash.
4. **Render** (runner.py) the stale files: one task per figure, in worker processes that die with
   the build, slowest kinds first, or on a dask cluster. A failing figure does not stop the others;
   its traceback and the renderer's output go to ``OUT/.viz-logs/NAME.log``. ``--shard I/N``
   renders one deterministic share of the figures; shards may share OUT.
5. **Index** (index.py): ``index.md`` and ``gallery.html`` embed each figure with its caption and
   the ``viz ...`` command that reproduces it. Deterministic: no timestamps.
"""
from .cache import cache_key, canonical_json, file_sha256, fingerprint, source_hash, tool_version
from .core import BuildReport, build, parse_executor, parse_shard
from .index import INDEX_HTML, INDEX_MD, index_html, index_markdown, write_index
from .manifest import CACHE_FILE, LOG_DIR, Entry, Manifest, ManifestError, load_manifest, packaged_gallery, shard
from .progress import Progress
from .runner import Interrupted, Result, Task, render_task

__all__ = [
    "BuildReport", "CACHE_FILE", "Entry", "INDEX_HTML", "INDEX_MD", "Interrupted", "LOG_DIR", "Manifest",
    "ManifestError", "Progress", "Result", "Task", "build", "cache_key", "canonical_json", "file_sha256",
    "fingerprint", "index_html", "index_markdown", "load_manifest", "packaged_gallery", "parse_executor",
    "parse_shard", "render_task", "shard", "source_hash", "tool_version", "write_index",
]
