"""The example data the figures run on: seeded, so the same parameters give the same figure."""
from __future__ import annotations

import numpy as np


def example_data(in_shape, channels: int, kernel, out_shape, seed: int = 0, values: str = "int",
                 filters: int = 1, groups: int = 1) -> dict:
    """Seeded example data for a convolution of `filters` filters in `groups` groups (PyTorch layout,
    unbatched).

    Returns x (channels, *in_shape), w (filters, channels/groups, *kernel) and grad_y (filters,
    *out_shape) (an upstream gradient ∂ℓ/∂y), drawn in that order from one stream (one filter, one
    group: the single-filter example every earlier figure drew).

    values="int": small integers, so every product and sum can be checked by hand (x in -3..3,
    weights and gradients in ±1, ±2: never 0, so every tap visibly matters); "float": one-decimal
    numbers around 0, so every product has two decimals and nothing is hidden by rounding.
    """
    if values not in ("int", "float"):
        raise ValueError(f"values must be 'int' or 'float' (got {values!r})")
    if channels < 1:
        raise ValueError(f"channels must be >= 1 (got {channels})")
    if groups < 1 or channels % groups or filters % groups:
        raise ValueError(f"groups must divide channels ({channels}) and filters ({filters}) (got {groups})")
    rng = np.random.default_rng(seed)
    x_shape = (channels, *tuple(in_shape))
    w_shape = (filters, channels // groups, *tuple(kernel))
    g_shape = (filters, *tuple(out_shape))
    if values == "int":
        nonzero = np.array([-2.0, -1.0, 1.0, 2.0])
        x = rng.integers(-3, 4, size=x_shape).astype(float)
        w = rng.choice(nonzero, size=w_shape)
        g = rng.choice(nonzero, size=g_shape)
    else:
        x = np.round(rng.standard_normal(x_shape), 1)
        w = np.round(rng.standard_normal(w_shape), 1)
        g = np.round(rng.standard_normal(g_shape), 1)
    return {"x": x, "w": w, "grad_y": g}
