"""The `viz` command line: one click group whose figure commands are generated from `viz.figures.KINDS`.

Errors in what the user typed end the program with one line on stderr naming the parameter and the
allowed range, exit status 2, no traceback, and no output file.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from viz import __version__, figures
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


def _output_format(kind: figures.FigureKind, out: Path | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = out.suffix.lstrip(".").lower() if out else ""
    if suffix in kind.formats:
        return suffix
    raise click.UsageError(f"--format: cannot tell the format from {str(out)!r}; "
                           f"give --format (one of {', '.join(kind.formats)})")


def _figure_command(kind: figures.FigureKind) -> click.Command:
    def callback(output, fmt, **given):
        raw = {name: value for name, value in given.items() if value is not None}
        try:
            values = kind.validate(raw)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        out = Path(output)
        fmt = _output_format(kind, out, fmt)
        kind.render_to(values, out, fmt)
        click.echo(f"wrote {out} ({out.stat().st_size / 1024:.1f} KB)", err=True)

    params = _options(kind) + [
        click.Option(["--format", "fmt"], type=click.Choice(kind.formats), default=None,
                     help="Output format [default: from the -o suffix]."),
        click.Option(["-o", "--output"], type=click.Path(dir_okay=False), required=True,
                     help="File to write (written atomically: it appears whole or not at all)."),
    ]
    return click.Command(kind.name, callback=callback, params=params, help=kind.summary,
                         short_help=kind.summary.split(":")[0])


def _shape_command(kind: figures.FigureKind) -> click.Command:
    def callback(as_json, output, **given):
        from viz import shape_report

        raw = {name: value for name, value in given.items() if value is not None}
        try:
            values = kind.validate(raw)
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


@cli.command("kinds")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def kinds_command(as_json):
    """List every figure kind with its parameters and ranges."""
    import json

    if as_json:
        click.echo(json.dumps([k.to_json() for k in figures.KINDS.values()], indent=2))
        return
    for kind in figures.KINDS.values():
        click.echo(f"viz {kind.key}  ({', '.join(kind.formats)})\n    {kind.summary}")
        for p in kind.params:
            click.echo(f"    {p.flag:18} {p.describe_range()}")


def main(argv=None) -> None:
    """Run the command line; user errors become one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="viz", standalone_mode=False)
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
