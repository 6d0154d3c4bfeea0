"""The computation-graph diagrams as data: the graph model and the Story of each diagram kind.

    model.py          the graph model (nodes, edges, clusters; plain data, deterministic) + label helpers
    gated_rnn.py      gated RNN: cell, unrolled, backward (trace -> graph)
    attention_rnn.py  AttentionRNN(k) / AttentionRNN(∞): cell, unrolled, backward (trace -> graph)
    common.py         shared layout (grid), gradient-norm scale, compact long chains
    figure.py         one reference run -> Figure(graph, story): captions with claims, alt text

NumPy and the standard library only; `diagrams/` renders what is built here.
"""
