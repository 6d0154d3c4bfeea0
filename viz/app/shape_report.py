"""`viz shape`: the output shape of a (transposed) convolution as text, JSON or Markdown.

Everything printed comes from `viz.conv.ConvGeometry`; this module only lays it out.
"""
from __future__ import annotations

import html
import json

from viz import conv
from viz.io import write_text_atomic


def geometry(values: dict) -> conv.ConvGeometry:
    """The geometry the registry's validated `shape` parameters describe."""
    args = (values["input"], values["kernel"], values["stride"], values["padding"], values["dilation"])
    if values.get("transposed"):
        return conv.conv_transpose_geometry(*args, values["output_padding"])
    return conv.conv_geometry(*args)


def _channels(values: dict) -> dict:
    """The channel arguments of `ConvGeometry.to_dict`; the registry's check already made sure that
    --in-channels and --filters come together and that --groups divides both."""
    if values.get("in_channels") is None:
        return {}
    return {"in_channels": values["in_channels"], "filters": values["filters"], "groups": values.get("groups", 1)}


def report(values: dict, fmt: str = "txt") -> str:
    g = geometry(values)
    channels = _channels(values)
    data = g.to_dict(**channels)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    times = "x" if fmt == "txt" else "×"
    size = lambda seq: times.join(str(v) for v in seq)  # noqa: E731
    if fmt == "md":
        lines = [f"**{'Transposed convolution' if g.transposed else 'Convolution'}**: "
                 f"{size(g.in_shape)} → {size(g.out_shape)}", "",
                 "| axis | formula | never read (1-based) |", "| --- | --- | --- |"]
        for a in range(g.ndim):
            unread = ", ".join(str(m + 1) for m in g.unread(a)) or "–"
            lines.append(f"| {a + 1} | `{g.formula(a)}` | {unread} |")
    else:
        lines = [str(g)]
    if channels:
        lines.append("")
        lines.append(f"weight {size(data['weight_shape'])}, bias {size(data['bias_shape'])}; "
                     f"input {size(data['input_array_shape'])} -> output {size(data['output_array_shape'])}")
    return "\n".join(lines) + "\n"


def render_shape(kind, values: dict, out, fmt: str) -> None:
    """Registry renderer for `shape`: the report in txt, json or md, written atomically (or to standard
    output for ``-``, through viz.io)."""
    write_text_atomic(out, report(values, fmt))


def shape_html(values: dict) -> str:
    """A `shape` report as HTML: the reference's table (ConvGeometry._repr_html_) and array shapes."""
    table = geometry(values)._repr_html_()
    lines = report(values, "md").strip().splitlines()
    weights = lines[-1] if lines and lines[-1].startswith("weight") else ""
    return table + (f"<p>{html.escape(weights)}</p>" if weights else "")
