"""Graphviz drawings of the computation graphs that viz.story.graphs builds from the reference's traces.

    render.py         graph model -> DOT -> svg/png/pdf/dot, atomically (legend.py: the caption)
    files.py          portable, accessible SVG; tight, titled PDF (byte-level)
    style.py          light and dark themes, colours, shapes, fonts
    figures.py        the entry points the figure registry (viz/app/registry.py) calls
    plots.py          matplotlib figures of training runs

The graph model, the trace -> graph builders and each diagram's Story (captions, claims, alt text) are
plain data in viz/story/graphs/. Graphviz is imported only when a figure is rendered.
"""
