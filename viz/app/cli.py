"""The `viz` command line: one click group whose figure commands are generated from `viz.figures.KINDS`.

Errors in what the user typed end the program with one line on stderr naming the parameter and the
allowed range, exit status 2, no traceback, and no output file.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from viz import __version__
from viz.app import registry as figures
from viz.io import MissingProgram


class RegistryType(click.ParamType):
    """A click type that parses through the registry's Param, so every front end shares the message."""

    def __init__(self, param: figures.Param):
        self.param = param
        self.name = param.type

    def get_metavar(self, param, ctx=None):  # click >= 8.2 passes ctx
        p = self.param
        if p.type == "choice":
            return "[" + "|".join(p.choices) + "]"
        return {"int": "INT", "float": "NUMBER", "shape": "SIZES", "padding": "PADDING", "k": "K|inf"}.get(
            p.type, "VALUE")

    def convert(self, value, param, ctx):
        try:
            return self.param.parse(value)
        except figures.ParamError as err:
            raise click.UsageError(str(err), ctx) from None


def _options(kind: figures.FigureKind):
    """click options for every registry parameter; a value not given on the command line stays unset."""
    options = []
    for p in kind.params:
        shown = "" if p.default is None else f" [default: {p.format(p.default)}]"
        if p.type == "flag":
            options.append(click.Option([f"{p.flag}/--no-{p.flag[2:]}"], default=None,
                                        help=p.help + shown))
        else:
            options.append(click.Option([p.flag], type=RegistryType(p), default=None,
                                        help=f"{p.help} Allowed: {p.describe_range()}.{shown}"))
    return options


def _given(values: dict) -> dict:
    """The parameters the user actually typed (a typed value may be None, e.g. --k inf)."""
    ctx = click.get_current_context()
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}


def _output_format(kind: figures.FigureKind, out: Path | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    found = kind.format_for(out) if out else None
    if found:
        return found
    raise click.UsageError(f"--format: cannot tell the format from {str(out)!r}; "
                           f"give --format (one of {', '.join(kind.all_formats)})")


def _figure_command(kind: figures.FigureKind) -> click.Command:
    def callback(output, fmt, step=None, **given):
        try:
            values = kind.validate(_given(given))
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        out = Path(output)
        if step is not None:  # a still of one Story step (viz/app/slides.py)
            from viz.app import slides

            slides.render_step(kind, values, step, out, slides.step_format(out, fmt))
        else:
            fmt = _output_format(kind, out, fmt)
            kind.render_to(values, out, fmt)
        click.echo(f"wrote {out} ({out.stat().st_size / 1024:.1f} KB)", err=True)

    params = _options(kind) + [
        click.Option(["--format", "fmt"], type=click.Choice(kind.all_formats + (("svg", "pdf") if
                     kind.command == "animate" else ())), default=None,
                     help="Output format [default: from the -o suffix]."),
        click.Option(["-o", "--output"], type=click.Path(dir_okay=False), required=True,
                     help="File to write (written atomically: it appears whole or not at all)."),
    ]
    if kind.command == "animate":
        params.append(click.Option(["--step"], type=int, default=None,
                                   help="Write the still of this step (1-based) as png, svg or pdf."))
    return click.Command(kind.name, callback=callback, params=params, help=kind.summary,
                         short_help=kind.summary.split(":")[0])


def _shape_command(kind: figures.FigureKind) -> click.Command:
    def callback(as_json, output, **given):
        from viz.app import shape_report

        try:
            values = kind.validate(_given(given))
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        fmt = "json" if as_json else "txt"
        if output:
            fmt = _output_format(kind, Path(output), None) if not as_json else fmt
            kind.render_to(values, Path(output), fmt)
        else:
            click.echo(shape_report.report(values, fmt), nl=False)

    params = _options(kind) + [
        click.Option(["--json", "as_json"], is_flag=True, help="Print machine-readable JSON."),
        click.Option(["-o", "--output"], type=click.Path(dir_okay=False), default=None,
                     help="Write the report to a file (.txt, .json or .md) instead of printing it."),
    ]
    return click.Command("shape", callback=callback, params=params, help=kind.summary,
                         short_help="Output shape of a convolution, with the formula.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="viz")
def cli():
    """Teaching figures for convolutional and recurrent networks, computed by one gradient-checked
    NumPy reference: Graphviz diagrams, Manim animations and the numbers printed in both."""


def _group(name: str, help: str) -> click.Group:
    group = click.Group(name, help=help)
    cli.add_command(group)
    return group


_GROUPS = {
    "diagram": _group("diagram", "Graphviz computation graphs (svg, png, pdf, dot)."),
    "animate": _group("animate", "Manim animations (mp4, gif, webm, or png for the last frame)."),
    "plot": _group("plot", "Plots of reference runs (svg, png, pdf)."),
}

for _kind in figures.KINDS.values():
    if _kind.command == "shape":
        cli.add_command(_shape_command(_kind))
    else:
        _GROUPS[_kind.command].add_command(_figure_command(_kind))

from viz.app import slides as _slides  # noqa: E402  (light: manim and PyAV load when a deck renders)

cli.add_command(_slides.cli_group(figures.KINDS.values(), _options, _given))


@cli.command("kinds")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def kinds_command(as_json):
    """List every figure kind with its parameters and ranges."""
    import json

    if as_json:
        click.echo(json.dumps([k.to_json() for k in figures.KINDS.values()], indent=2))
        return
    for kind in figures.KINDS.values():
        click.echo(f"viz {kind.key}  ({', '.join(kind.all_formats)})\n    {kind.summary}")
        for p in kind.params:
            click.echo(f"    {p.flag:18} {p.describe_range()}")


_QUALITY_HELP = "Override the quality of every animation: low 480p15, medium 720p30, high 1080p60."


def _run_build(manifest, source, out, jobs, force, quality, shard=None, executor=None):
    from viz.app import build

    try:
        report = build.build(manifest, out, jobs=jobs, force=force, quality=quality, source=source,
                             shard_of=build.parse_shard(shard) if shard else None, executor=executor)
    except build.ManifestError as err:
        for line in err.errors:
            click.echo(line, err=True)
        n = len(err.errors)
        click.echo(f"viz: error: {n} problem{'s' if n > 1 else ''} in the manifest or --out; nothing was "
                   "rendered", err=True)
        sys.exit(2)  # (ctx.exit would be swallowed by click's standalone_mode=False in main)
    except build.Interrupted as stop:   # SIGINT/SIGTERM/SIGHUP: workers stopped, finished figures cached
        click.echo(f"viz build: interrupted ({stop}); the figures already finished are kept: run it again "
                   "to finish", err=True)
        sys.exit(stop.status)
    except ValueError as err:   # --shard, --executor
        raise click.UsageError(str(err)) from None
    if not report.ok:
        sys.exit(1)


def _build_options(func):
    func = click.option("--quality", type=click.Choice(["low", "medium", "high"]), default=None,
                        help=_QUALITY_HELP)(func)
    func = click.option("--force", is_flag=True, help="Render everything again, ignoring the cache.")(func)
    func = click.option("--shard", metavar="I/N", default=None,
                        help="Render only shard I of N (1 <= I <= N), a deterministic share of the figures; "
                             "shards may share --out and together write one index (SLURM arrays, GNU "
                             "parallel).")(func)
    func = click.option("--executor", metavar="local|dask://HOST:PORT", default=None,
                        help="Where figures render: local processes [default], or a dask.distributed "
                             "scheduler (pip install 'viz[dask]'; --out must be a folder its workers "
                             "see).")(func)
    func = click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
                        help="Figures rendered in parallel processes [default: the number of CPUs].")(func)
    return click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
                        help="Output folder (figures, index.md, gallery.html, .viz-cache.json).")(func)


@cli.command("build")
@click.argument("manifest", type=click.Path(dir_okay=False))
@_build_options
def build_command(manifest, out, jobs, force, quality, shard, executor):
    """Render every figure a TOML manifest lists, in parallel, re-rendering only what changed.

    Each [[figure]] has a name, a kind ("shape", "diagram gated-rnn", "animate conv", ...), formats,
    a caption and [figure.params] spelled like the command-line options. The manifest is checked
    completely before anything renders (exit status 2 on a problem); a figure that fails to render
    does not stop the others (exit status 1). Writes index.md and gallery.html too. Stopped by
    SIGINT/SIGTERM: exit status 128 + signal, the finished figures stay cached.
    """
    _run_build(manifest, None, out, jobs, force, quality, shard, executor)


@cli.command("gallery")
@_build_options
def gallery_command(out, jobs, force, quality, shard, executor):
    """Build the default gallery (the manifest shipped in the package) with `viz build`."""
    from viz.app import build

    _run_build(build.packaged_gallery(), "gallery.toml", out, jobs, force, quality, shard, executor)


@cli.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
def serve_command(port):
    """The interactive explorer: a local page (127.0.0.1 only) with sliders for every parameter."""
    from viz.app import serve

    serve.run(port)


def main(argv=None) -> None:
    """Run the command line; user errors become one line on stderr and exit status 2."""
    try:
        status = cli.main(args=argv, prog_name="viz", standalone_mode=False)
        if isinstance(status, int) and status:
            sys.exit(status)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("viz: aborted", err=True)
        sys.exit(1)
    except click.ClickException as err:
        click.echo(f"viz: error: {err.format_message()}", err=True)
        sys.exit(2)
    except (figures.ParamError, MissingProgram) as err:
        click.echo(f"viz: error: {err}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
