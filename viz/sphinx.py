"""`extensions = ["viz.sphinx"]`: the Sphinx extension lives in viz.app.sphinx (the front ends)."""
from viz.app.sphinx import setup  # noqa: F401
