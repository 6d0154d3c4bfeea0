"""The `viz` command line: one click group whose figure commands are generated from the registry.

Exit status (also in ``viz --help`` and the README):
  0    done
  1    `viz build`: a figure failed to render (the others were written)
  2    bad input: a parameter outside its range, an unknown option, a bad manifest, a missing program;
       one line on stderr naming the parameter and the allowed range, no traceback, no file written
  74   a file could not be written or read (read-only folder, full disk, a parent that is a file, a
       name too long, an unusable cache folder): one line naming the path and the cause (EX_IOERR)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM) after removing its temporary files
"""
from __future__ import annotations

import os
import signal
import stat
import sys
import threading
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from viz import __version__
from viz.app import registry as figures
from viz.io import EXIT_IO, STDOUT, MissingProgram, WriteError, check_target, escape, is_stdout, show_path

BINARY_FORMATS = ("png", "pdf", "mp4", "gif", "webm")   # refused on a terminal with -o -
EXIT_STATUS_HELP = ("Exit status: 0 done; 1 a figure of `viz build` failed; 2 bad input (one line naming the "
                    "parameter); 74 a file could not be written (one line naming the path); 128+N stopped "
                    "by signal N.")
COMPLETION_HELP = ('Shell completion (commands, options, choices): eval "$(_VIZ_COMPLETE=bash_source viz)" '
                   "in ~/.bashrc (zsh_source, fish_source for zsh and fish).")


class RegistryType(click.ParamType):
    """A click type that parses through the registry's Param, so every front end shares the message."""

    def __init__(self, param: figures.Param):
        self.param = param
        self.name = param.type

    def get_metavar(self, param, ctx=None):  # click >= 8.2 passes ctx
        return self.param.metavar

    def convert(self, value, param, ctx):
        try:
            return self.param.parse(value)
        except figures.ParamError as err:
            raise click.UsageError(str(err), ctx) from None

    def shell_complete(self, ctx, param, incomplete):
        return [CompletionItem(word) for word in self.param.completions(incomplete)]


class OutputPath(click.ParamType):
    """-o: a file name, or ``-`` for standard output; never empty."""

    name = "path"

    def get_metavar(self, param, ctx=None):
        return "FILE|-"

    def convert(self, value, param, ctx):
        if not isinstance(value, str) or not value:
            raise click.UsageError(f"-o: must be a file name, or - for standard output (got {value!r})", ctx)
        if value.endswith(os.sep):   # Path() would drop the slash and write a file named like the folder
            raise click.UsageError(f"-o: {escape(value)} names a folder; give a file name in it", ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        return [CompletionItem(incomplete, type="file")]


class FigureCommand(click.Command):
    """A figure command whose --help lists figure parameters, render options and output apart."""

    def format_options(self, ctx, formatter):
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record:
                sections.setdefault(getattr(param, "section", "Options"), []).append(record)
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)


def _option(param: figures.Param) -> click.Option:
    shown = "" if param.default is None else f" [default: {param.format(param.default)}]"
    if param.type == "flag" and param.carries:    # --bias alone, or --bias ARRAY (an optional value)
        option = click.Option([param.flag], is_flag=False, flag_value="true", default=None, metavar="[ARRAY]",
                              help=param.help + shown)
    elif param.type == "flag":
        option = click.Option([f"{param.flag}/--no-{param.flag[2:]}"], default=None, help=param.help + shown)
    else:
        option = click.Option([param.flag], type=RegistryType(param), default=None,
                              help=f"{param.help} Allowed: {param.describe_range()}.{shown}")
    option.section = "Render options" if param.render_option else "Figure parameters"
    return option


def _output_options(kind: figures.FigureKind) -> list[click.Option]:
    where = ("Missing folders are created; a symlink's target is replaced, a device or FIFO written "
             "through; - is standard output.")
    if kind.writes_text:
        options = [click.Option(["-o", "--output"], type=OutputPath(), default=None,
                                help=f"Write the report to a file ({', '.join(kind.all_formats)}) instead "
                                     f"of printing it. {where}"),
                   click.Option(["--json", "as_json"], is_flag=True, help="The report as JSON (--format json).")]
    else:
        options = [click.Option(["-o", "--output"], type=OutputPath(), required=True,
                                help=f"File to write (atomically: it appears whole or not at all). {where}")]
    options.insert(0, click.Option(["--format", "fmt"], type=click.Choice(kind.all_formats), default=None,
                                   help="Output format [default: from the -o suffix"
                                        + (f", {kind.stdout_format} when printing]." if kind.writes_text
                                           else "]; needed with -o -.")))
    for option in options:
        option.section = "Output"
    return options


def _given(values: dict) -> dict:
    """The parameters the user actually typed (a typed value may be None, e.g. --k inf)."""
    ctx = click.get_current_context()
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}


def output_format(kind: figures.FigureKind, out: str, fmt: str | None) -> str:
    """The format to write `out` in: --format if given (it must agree with a format suffix of `out`),
    else the suffix (exact case), else the kind's printed format for ``-``; UsageError otherwise."""
    name = "" if is_stdout(out) else Path(out).name
    known = figures.all_known_formats()
    suffix = figures.suffix_format(name.lower(), known)   # any case: "x.SVG" still names svg
    if fmt:
        if suffix and suffix != fmt:
            raise click.UsageError(f"--format: {fmt} does not match the file name {show_path(out)} "
                                   f"(a .{suffix} file); change one of them")
        return fmt
    if is_stdout(out):
        if kind.stdout_format:
            return kind.stdout_format
        raise click.UsageError(f"--format: is required with -o - (one of {', '.join(kind.all_formats)})")
    found = kind.format_for(out)
    if found:
        return found
    hint = f" (suffixes are lower case: .{suffix})" if suffix in kind.all_formats else ""
    raise click.UsageError(f"--format: cannot tell the format from {escape(repr(out))}{hint}; "
                           f"give --format (one of {', '.join(kind.all_formats)})")


def _figure_command(kind: figures.FigureKind) -> click.Command:
    def callback(output, fmt, as_json=False, step=None, **given):
        try:
            values = kind.validate(_given(given))
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        if step is not None:  # the still of one Story step: png, svg or pdf (viz/app/slides.py)
            from viz.app import slides

            slides.render_step(kind, values, step, Path(output), slides.step_format(output, fmt))
            return _report_written(output)
        if as_json:
            if fmt not in (None, "json"):
                raise click.UsageError(f"--json: conflicts with --format {fmt}")
            fmt = "json"
        out = STDOUT if output is None else output
        fmt = output_format(kind, out, fmt)
        if is_stdout(out) and fmt in BINARY_FORMATS and sys.stdout.isatty():
            raise click.UsageError(f"-o -: {fmt} is binary and standard output is a terminal; "
                                   "redirect it (> file) or give a file name")
        check_target(out)   # a bad -o fails now, not after a long render
        kind.render_to(values, Path(out), fmt)
        _report_written(out)

    params = [_option(p) for p in kind.figure_params + kind.render_options] + _output_options(kind)
    if kind.is_video:
        params.append(click.Option(["--step"], type=int, default=None,
                                   help="Write the still of this step (1-based) instead: -o step.png, .svg or .pdf."))
        params[-1].section = "Output"
    return FigureCommand(kind.name or kind.command, callback=callback, params=params, help=kind.summary,
                         short_help=kind.summary.split(":")[0], epilog=EXIT_STATUS_HELP)


def _report_written(out: str) -> None:
    """`wrote PATH (SIZE)` on stderr for files; nothing for standard output."""
    if is_stdout(out):
        return
    try:
        st = os.stat(out)
    except OSError:
        return
    size = f" ({st.st_size / 1024:.1f} KB)" if stat.S_ISREG(st.st_mode) else ""
    click.echo(f"wrote {escape(out)}{size}", err=True)


class VizGroup(click.Group):
    """The root group: `viz` alone prints its help (exit 0); every error is one line with the exit
    status of the module docstring, for the installed command, `python -m viz` and click's CliRunner."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as err:
            click.echo(err.ctx.get_help())
            sys.exit(0)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            _fail("interrupted", 128 + signal.SIGINT)
        except click.ClickException as err:
            _fail(err.format_message(), 2)
        except (figures.ParamError, MissingProgram) as err:
            _fail(str(err), 2)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(1)
        except OSError as err:
            _fail(_os_message(err), EXIT_IO)
        sys.exit(status if isinstance(status, int) else 0)


def _os_message(err: OSError) -> str:
    if isinstance(err, WriteError) or not err.filename:
        return str(err)
    return f"{show_path(err.filename)}: {err.strerror}"


def _fail(message: str, status: int):
    click.echo(f"viz: error: {escape(message)}", err=True)
    sys.exit(status)


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group("viz", cls=VizGroup, epilog=f"{EXIT_STATUS_HELP}\n\n{COMPLETION_HELP}",
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="viz")
def cli():
    """Teaching figures for convolutional and recurrent networks, computed by one gradient-checked
    NumPy reference: Graphviz diagrams, Manim animations and the numbers printed in both."""


_GROUP_HELP = {
    "diagram": "Graphviz computation graphs (svg, png, pdf, dot).",
    "animate": "Manim animations (mp4, gif, webm, or png for the last frame).",
    "plot": "Plots of reference runs (svg, png, pdf).",
}


def _add_kind(kind: figures.FigureKind) -> None:
    """`viz COMMAND NAME` for a named kind, `viz COMMAND` for a kind without a name (`viz shape`)."""
    command = _figure_command(kind)
    if not kind.name:
        cli.add_command(command)
        return
    group = cli.commands.get(kind.command)
    if group is None:
        group = click.Group(kind.command, help=_GROUP_HELP.get(kind.command, f"viz {kind.command} figures."))
        cli.add_command(group)
    group.add_command(command)


for _kind in figures.KINDS.values():
    _add_kind(_kind)

from viz.app import slides as _slides  # noqa: E402  (light: manim and PyAV load when a deck renders)

cli.add_command(_slides.cli_group(figures.KINDS.values(),
                                  lambda k: [_option(p) for p in k.figure_params + k.render_options], _given))


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
    func = click.option("--quality", type=click.Choice(figures.QUALITY.choices), default=None,
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


@cli.command("build", epilog=EXIT_STATUS_HELP)
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


GALLERY_SETS = {"default": "gallery.toml", "conv-arithmetic": "conv-arithmetic.toml"}


@cli.command("gallery", epilog=EXIT_STATUS_HELP)
@click.option("--set", "which", type=click.Choice(tuple(GALLERY_SETS)), default="default", show_default=True,
              help="Which shipped manifest: the default gallery, or the conv-arithmetic set (forward and "
                   "transposed convolutions with and without padding, strides and dilation).")
@_build_options
def gallery_command(which, out, jobs, force, quality, shard, executor):
    """Build a gallery shipped in the package (a manifest like any other) with `viz build`."""
    from importlib import resources

    name = GALLERY_SETS[which]
    _run_build(Path(str(resources.files("viz.app") / name)), name, out, jobs, force, quality, shard, executor)


@cli.command("fence", epilog=EXIT_STATUS_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder the figure's files are written to.")
@click.option("--url-prefix", default="", help="Prefix of the URLs in the HTML [default: the file names alone].")
@click.option("--format", "fmt", default=None, help="Header option format= (svg, mp4, ...).")
@click.option("--caption", default=None, help="Header option caption=.")
@click.option("--alt", default=None, help="Header option alt= [default: the figure's own alt text].")
@click.option("--width", default=None, help="Header option width= (600, 600px, 80%).")
def fence_command(out_dir, url_prefix, fmt, caption, alt, width):
    """Render a `viz` fence read from standard input; print the HTML that shows it.

    The input is the fence's body: the command line as typed in a terminal, without -o (for example
    `diagram attention-rnn --view cell --k 2`). For tools without a viz plugin (Quarto's and Pandoc's
    Lua filters, Hugo shortcodes); MkDocs and Sphinx have their own (see the README).
    """
    from viz.app.fence import FenceError, fence_html, parse_fence

    options = {k: v for k, v in (("format", fmt), ("caption", caption), ("alt", alt), ("width", width)) if v}
    try:
        request = parse_fence(click.get_text_stream("stdin").read(), options)
    except FenceError as err:
        raise click.UsageError(str(err)) from None
    click.echo(fence_html(request, out_dir, url_prefix))


@cli.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
def serve_command(port):
    """The interactive explorer: a local page (127.0.0.1 only) with sliders for every parameter."""
    from viz.app import serve

    serve.run(port)


def _stop(signum, frame):
    """SIGTERM/SIGHUP in the main process: unwind like Ctrl-C (finally blocks remove temporary files
    and work folders) and exit with 128 + signal; a forked worker takes the default action."""
    if os.getpid() != _MAIN_PID:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise SystemExit(128 + signum)


_MAIN_PID = os.getpid()


def main(argv=None) -> None:
    """The `viz` program: the click group, with SIGTERM and SIGHUP handled like Ctrl-C for every
    command (left alone if the caller ignores them, e.g. nohup)."""
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    saved = {}
    if threading.current_thread() is threading.main_thread():   # (signal.signal works only there)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                saved[signum] = signal.signal(signum, _stop)
    try:
        cli.main(args=argv, prog_name="viz")
    finally:   # a caller running main() in its own process (tests) gets its handlers back
        for signum, handler in saved.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    main()
