"""`build`: validate, check OUT, sweep what a killed run left, render the stale files, write the index."""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

from . import cache, outdir
from .index import INDEX_HTML, INDEX_MD, write_index
from .manifest import CACHE_FILE, Manifest, load_manifest, shard
from .progress import Progress
from .runner import Interrupted, Result, Task, dask_client, one_line, run_dask, run_local, stop_signals


@dataclasses.dataclass
class BuildReport:
    rendered: list[str]           # files written
    up_to_date: list[str]         # files the cache kept
    failed: dict                  # file -> one-line message
    logs: dict                    # figure name -> log path
    seconds: float
    errors: list[str] = dataclasses.field(default_factory=list)   # OUT-level problems (cache, index)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" (1 <= I <= N <= 10000) -> (I, N); ValueError naming --shard otherwise."""
    try:
        index, count = (int(x) for x in text.split("/"))
        if 1 <= index <= count <= 10000:
            return index, count
    except ValueError:
        pass
    raise ValueError(f"--shard: must be I/N with 1 <= I <= N <= 10000, e.g. 2/4 (got {text!r})")


def parse_executor(text: str | None) -> str | None:
    """None or "local" -> None (a local process pool); "dask://HOST:PORT" -> "tcp://HOST:PORT"."""
    if text in (None, "", "local"):
        return None
    if text.startswith("dask://") and ":" in text[7:]:
        return "tcp://" + text[7:]
    raise ValueError(f"--executor: must be local or dask://HOST:PORT (got {text!r})")


def _plan(manifest: Manifest, entries, out_dir: Path, records: dict, force: bool):
    keys, stale, kept = {}, {}, []
    for entry in entries:
        for fmt in entry.formats:
            file = entry.file(fmt)
            keys[file] = cache.cache_key(entry.key, entry.values, fmt)
            if not force and cache.up_to_date(out_dir, records.get(file), keys[file]):
                kept.append(file)
            else:
                stale.setdefault(entry.name, []).append(fmt)
    by_name = {e.name: e for e in entries}
    tasks = [Task(name, by_name[name].key, by_name[name].values, tuple(fmts), str(out_dir))
             for name, fmts in stale.items()]
    tasks.sort(key=lambda t: -by_name[t.name].cost)   # slowest first; stable: manifest order within a cost
    return keys, tasks, kept


def _sweep(out_dir: Path, manifest: Manifest, entries) -> None:
    """Remove the temporary files and Manim work folders an earlier killed build left."""
    outdir.sweep(out_dir, [f for e in entries for f in e.files()])
    with cache.locked(out_dir):   # the shared files: no other shard is writing them now
        outdir.sweep(out_dir, [CACHE_FILE, INDEX_MD, INDEX_HTML])
    if any(e.key.startswith("animate") for e in entries):
        from scenes.render import remove_stale_workdirs

        remove_stale_workdirs()


def build(manifest, out_dir, *, jobs: int | None = None, force: bool = False, quality: str | None = None,
          stream=None, source: str | None = None, shard_of: tuple[int, int] | None = None,
          executor: str | None = None) -> BuildReport:
    """Build every figure of `manifest` (a path or a loaded Manifest) into `out_dir`.

    Raises ManifestError (before rendering anything) when the manifest or OUT is unusable, and
    Interrupted on SIGINT/SIGTERM/SIGHUP (workers stopped, their temporary files removed, the cache
    keeps what was finished). shard_of=(I, N): only shard I of N (`shard`). executor: None for
    local processes, or "dask://HOST:PORT". `report.ok` is False when a figure failed (the other
    figures are still rendered).
    """
    stream = stream if stream is not None else sys.stderr
    start = time.perf_counter()
    address = parse_executor(executor)
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest, source=source, quality=quality)
    if not address:
        return _build(manifest, Path(out_dir), jobs, force, stream, shard_of, None, start)
    with dask_client(address) as client:   # the scheduler is reachable before anything is written
        return _build(manifest, Path(out_dir), jobs, force, stream, shard_of, client, start)


def _build(manifest: Manifest, out_dir: Path, jobs, force, stream, shard_of, client, start) -> BuildReport:
    entries = shard(manifest.entries, *shard_of) if shard_of else manifest.entries
    outdir.check_out(out_dir, manifest)
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    _sweep(out_dir, manifest, entries)

    on_disk = cache.read_records(out_dir)
    keys, tasks, kept = _plan(manifest, entries, out_dir, on_disk, force)
    records = cache.Records(out_dir, manifest.files(), on_disk)
    for task in tasks:   # records of stale files go until they are rendered again
        for fmt in task.formats:
            records.drop(f"{task.name}.{fmt}")
    report = BuildReport([], kept, {}, {}, 0.0)
    which = f" (shard {shard_of[0]}/{shard_of[1]})" if shard_of else ""
    total = len(entries)
    if not tasks:
        stream.write(f"viz build: nothing to render{which}: all {total} figures "
                     f"({len(kept)} files) are up to date in {out_dir}\n")
    else:
        _render(tasks, jobs, client, records, keys, report, stream,
                f"rendering {len(tasks)} of {total} figures{which}", kept, out_dir)
    _finish(manifest, out_dir, records, report)
    report.seconds = time.perf_counter() - start
    _summary(report, tasks, kept, out_dir, stream)
    return report


def _save(records: cache.Records, report: BuildReport) -> None:
    try:
        records.save()
    except OSError as err:
        message = f"cannot write {Path(records.out_dir) / CACHE_FILE}: {err.strerror or one_line(err)}"
        if message not in report.errors:
            report.errors.append(message)


def _render(tasks, jobs, client, records, keys, report, stream, what, kept, out_dir) -> None:
    jobs = min(jobs, len(tasks))
    where = (f"on the dask cluster {client.scheduler.address}" if client
             else f"with {jobs} job{'s' if jobs > 1 else ''}")
    stream.write(f"viz build: {what} ({sum(len(t.formats) for t in tasks)} files) into {out_dir} {where}"
                 + (f"; {len(kept)} files up to date" if kept else "") + "\n")
    stream.flush()
    progress = Progress(len(tasks), stream)

    def on_done(result: Result):
        for fmt, sha in result.files.items():
            file = f"{result.name}.{fmt}"
            records.set(file, {"file": file, "key": keys[file], "sha256": sha})
            report.rendered.append(file)
        for fmt, message in result.errors.items():
            file = f"{result.name}.{fmt}"
            records.set(file, {"file": file, "key": keys[file], "error": message})
            report.failed[file] = message
        if result.log:
            report.logs[result.name] = result.log
        _save(records, report)   # after every figure: an interrupted build keeps its work
        if result.errors:
            detail = "FAILED " + "; ".join(f"{fmt}: {m}" for fmt, m in result.errors.items())
        else:
            detail = f"{', '.join(result.files)} in {result.seconds:.1f} s"
        progress.finish(result.name, bool(result.errors), detail)

    try:
        with stop_signals():
            try:
                if client:
                    run_dask(tasks, client, lambda t: progress.start(t.name), on_done, progress.tick)
                else:
                    run_local(tasks, jobs, lambda t: progress.start(t.name), on_done, progress.tick)
            except Interrupted:
                raise
            except KeyboardInterrupt:
                raise Interrupted() from None
    finally:
        progress.close()


def _finish(manifest: Manifest, out_dir: Path, records: cache.Records, report: BuildReport) -> None:
    """Save the cache and write the index (failures from every shard, as the cache records them)."""
    _save(records, report)
    merged = records.merged(cache.read_records(out_dir))
    failed = {f: r["error"] for f, r in merged.items() if "error" in r and f not in report.rendered}
    failed.update(report.failed)
    try:
        with cache.locked(out_dir):
            write_index(manifest, out_dir, failed)
    except OSError as err:
        report.errors.append(f"cannot write the index: {one_line(err)}")


def _summary(report: BuildReport, tasks, kept, out_dir: Path, stream) -> None:
    if tasks:
        stream.write(f"viz build: {len(report.rendered)} files rendered, {len(kept)} up to date, "
                     f"{len(report.failed)} failed in {report.seconds:.1f} s; open "
                     f"{out_dir / INDEX_HTML}\n")
    if report.failed:
        stream.write(f"viz build: {len(report.failed)} file{'s' if len(report.failed) > 1 else ''} failed:\n")
        for file, message in report.failed.items():
            name = file.rsplit(".", 1)[0]
            log = f"  (log: {report.logs[name]})" if name in report.logs else ""
            stream.write(f"  {file}: {message}{log}\n")
    for message in report.errors:
        stream.write(f"viz build: error: {message}\n")
    stream.flush()
