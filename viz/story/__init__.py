"""Stories: every figure as plain data (see `viz.story.core` for the schema).

One builder module per figure family, each NumPy-only and built from the reference:
`conv` (forward and backward convolution), `bptt` (gradients through time), `training`, `graphs`
(the computation-graph diagrams). A builder takes the validated parameters of its figure kind and
returns a `Story`.
"""
from viz.story.core import (SCHEMA, Caption, Claim, Edge, Graph, Grid, Line, Lit, Node, Series, Step,  # noqa: F401
                            Story, Write)
