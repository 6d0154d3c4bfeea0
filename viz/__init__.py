"""viz: a gradient-checked NumPy reference for convolutions and recurrent networks.

Importing viz loads NumPy only; Graphviz and Manim load in the commands that render.
"""
__version__ = "0.1.0"


def __getattr__(name):
    """`viz.figure(...)` / `viz.Figure` load viz.app.notebook (the registry only, nothing heavy) on first use."""
    if name in ("figure", "Figure"):
        from viz.app import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'viz' has no attribute {name!r}")
