"""Graphviz computation-graph diagrams of the recurrent networks, drawn from the reference's traces.

    graph.py          the graph model (nodes, edges, clusters; plain data, deterministic)
    gated_rnn.py      gated RNN: cell, unrolled, backward
    attention_rnn.py  AttentionRNN(k) / AttentionRNN(∞): cell, unrolled, backward
    common.py         shared layout (grid), gradient-norm scale, compact long chains
    render.py         graph -> DOT -> svg/png/pdf/dot, atomically; style.py: themes and colours
    figures.py        the entry points the figure registry (viz/figures.py) calls; `diagram(...)`

Graphviz is imported only when a figure is rendered.
"""
