"""`viz shape`: the output shape of a (transposed) convolution or a pooling layer (`--pool max|avg`)
as text, JSON or Markdown.

Everything printed comes from `viz.conv.ConvGeometry` or `viz.pool.PoolGeometry` (PyTorch's rules:
o = floor or ceil((i + 2p − d(k−1) − 1)/s) + 1, a last window starting in the right padding dropped);
this module only lays it out.
"""
from __future__ import annotations

import html
import json

from viz import conv, pool
from viz.io import write_text_atomic
from viz.text import fmt_shape


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


def pool_geometry(values: dict) -> pool.PoolGeometry:
    """The pooling geometry of validated `shape --pool` parameters."""
    return pool.pool_geometry(values["input"], values["kernel"], values["stride"], values["padding"],
                              values["dilation"], values["ceil_mode"])


def _pool_unread(g: pool.PoolGeometry, axis: int) -> list[int]:
    """0-based inputs of one axis that no window reads (the axis on its own, as the windows separate)."""
    one = pool.pool_geometry((g.in_shape[axis],), g.kernel[axis], g.stride[axis], g.padding[axis],
                             g.dilation[axis], g.ceil_mode)
    return [int(m[0]) for m in one.windows.never_read]


def _sizes(fmt: str):
    """Shapes as the format writes them: 7x5 in plain text (as typed), 7×5 in Markdown."""
    return lambda seq: fmt_shape(seq, "x" if fmt == "txt" else "×")


def _md_table(what: str, in_shape, out_shape, formulas, unread) -> list[str]:
    """The Markdown report of a geometry: a headline, then per axis its formula and unread inputs."""
    lines = [f"**{what}**: {fmt_shape(in_shape)} → {fmt_shape(out_shape)}", "",
             "| axis | formula | never read (1-based) |", "| --- | --- | --- |"]
    return lines + [f"| {a + 1} | `{f}` | {', '.join(str(m + 1) for m in u) or '–'} |"
                    for a, (f, u) in enumerate(zip(formulas, unread))]


def pool_report(values: dict, fmt: str = "txt") -> str:
    g = pool_geometry(values)
    name = f"{values['pool']}_pool"
    unread = [_pool_unread(g, a) for a in range(len(g.in_shape))]
    if fmt == "json":
        return json.dumps({"kind": name, "ndim": len(g.in_shape), "in_shape": list(g.in_shape),
                           "kernel": list(g.kernel), "stride": list(g.stride), "padding": list(g.padding),
                           "dilation": list(g.dilation), "ceil_mode": g.ceil_mode, "out_shape": list(g.out_shape),
                           "formula": [g.formula(a) for a in range(len(g.in_shape))],
                           "never_read": [list(u) for u in unread]}, indent=2) + "\n"
    size = _sizes(fmt)
    if fmt == "md":
        lines = _md_table(f"{'Max' if values['pool'] == 'max' else 'Average'} pooling", g.in_shape, g.out_shape,
                          [g.formula(a) for a in range(len(g.in_shape))], unread)
    else:
        lines = [f"{name} {len(g.in_shape)}-D: in {size(g.in_shape)}, kernel {size(g.kernel)}, stride "
                 f"{size(g.stride)}, padding {size(g.padding)}, dilation {size(g.dilation)}"
                 f"{', ceil_mode' if g.ceil_mode else ''} -> out {size(g.out_shape)}"]
        for a, u in enumerate(unread):
            note = f"   never read (1-based): {', '.join(str(m + 1) for m in u)}" if u else ""
            lines.append(f"  axis {a + 1}: {g.formula(a)}{note}")
    return "\n".join(lines) + "\n"


def report(values: dict, fmt: str = "txt") -> str:
    if values.get("pool", "none") != "none":
        return pool_report(values, fmt)
    g = geometry(values)
    channels = _channels(values)
    data = g.to_dict(**channels)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    size = _sizes(fmt)
    if fmt == "md":
        lines = _md_table("Transposed convolution" if g.transposed else "Convolution", g.in_shape, g.out_shape,
                          [g.formula(a) for a in range(g.ndim)], [g.unread(a) for a in range(g.ndim)])
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
    if values.get("pool", "none") != "none":
        return f"<pre>{html.escape(pool_report(values, 'txt'))}</pre>"
    table = geometry(values)._repr_html_()
    lines = report(values, "md").strip().splitlines()
    weights = lines[-1] if lines and lines[-1].startswith("weight") else ""
    return table + (f"<p>{html.escape(weights)}</p>" if weights else "")
