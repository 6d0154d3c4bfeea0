"""A figure from a PyTorch layer, without importing PyTorch: `viz.figure("animate conv", layer=conv, x=t)`.

The layer is read by duck typing, as `torch.nn.Conv1d` / `Conv2d` spell it:

    weight   (F, C/groups, *kernel)  ->  --w, --filters F, --channels C, --kernel
    bias     (F,) or None            ->  --b (and --bias)
    stride, padding, dilation        ->  --stride, --padding, --dilation (tuples per axis, or "same"/"valid")
    groups                           ->  --groups
    padding_mode                     ->  must be "zeros" (the padding drawn)
    x        (C, *input) or (1, C, *input)  ->  --x, --input

Tensors become NumPy arrays through `.detach().cpu().numpy()` (viz.arrays); nothing here imports torch.
Every refusal is a ParamError naming `layer` (or `x`) on one line.
"""
from __future__ import annotations

from viz.app.params import ParamError
from viz.arrays import ArrayError, load_array

LAYER_PARAMS = ("input", "channels", "filters", "groups", "kernel", "stride", "padding", "dilation", "w", "b",
                "bias", "x")


def _per_axis(value, nd: int, name: str):
    if isinstance(value, str):
        return value                                    # "same" / "valid", as torch spells them
    values = tuple(int(v) for v in (value if isinstance(value, (tuple, list)) else (value,) * nd))
    if len(values) != nd:
        raise ParamError("layer", f"layer=: {name} has {len(values)} axes, the weight {nd}")
    return values


def _array(value, name: str):
    try:
        return load_array(value, name)
    except ArrayError as err:
        raise ParamError("layer" if name != "x" else "x", f"layer=: {err}" if name != "x" else str(err)) from None


def layer_params(layer, x=None) -> dict:
    """The raw parameters of the conv kinds that draw `layer` (and input `x`, if given)."""
    if not (hasattr(layer, "weight") and hasattr(layer, "stride")):
        raise ParamError("layer", f"layer=: must be a convolution layer with .weight and .stride "
                                  f"(got {type(layer).__name__})")
    if getattr(layer, "transposed", False):
        raise ParamError("layer", "layer=: transposed convolution layers are not drawn from a layer yet; "
                                  "use viz.figure(\"animate conv-transpose\", ...)")
    mode = getattr(layer, "padding_mode", "zeros")
    if mode != "zeros":
        raise ParamError("layer", f"layer=: padding_mode must be 'zeros', the padding drawn (got {mode!r})")
    w = _array(layer.weight, "w")
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise ParamError("layer", f"layer=: the animations draw Conv1d and Conv2d (weight of {w.ndim} axes)")
    groups = int(getattr(layer, "groups", 1))
    if groups < 1 or w.shape[0] % groups:
        raise ParamError("layer", f"layer=: groups ({groups}) must divide out_channels ({w.shape[0]})")
    channels = int(w.shape[1]) * groups
    raw = {"kernel": tuple(int(v) for v in w.shape[2:]), "channels": channels, "filters": int(w.shape[0]),
           "groups": groups, "w": w.tolist(),
           "stride": _per_axis(getattr(layer, "stride", 1), nd, "stride"),
           "padding": _per_axis(getattr(layer, "padding", 0), nd, "padding"),
           "dilation": _per_axis(getattr(layer, "dilation", 1), nd, "dilation")}
    if getattr(layer, "bias", None) is not None:
        raw.update(b=_array(layer.bias, "b").tolist(), bias=True)
    if x is not None:
        xa = _array(x, "x")
        if xa.ndim == nd + 2 and xa.shape[0] == 1:
            xa = xa[0]                                  # a batch of one
        if xa.ndim != nd + 1 or xa.shape[0] != channels:
            raise ParamError("x", f"--x: expected shape {channels}x*input (or 1x{channels}x*input) for the "
                                  f"layer's {channels} input channels, got {'x'.join(map(str, xa.shape))}")
        raw.update(x=xa.tolist(), input=tuple(int(v) for v in xa.shape[1:]))
    return raw


def with_layer(params: dict) -> dict:
    """`params` with `layer=` (and its `x=`) replaced by what the layer says; a parameter given both
    ways is refused (the layer decides its own geometry)."""
    if params.get("layer") is None:
        return {k: v for k, v in params.items() if k != "layer"}
    params = dict(params)
    derived = layer_params(params.pop("layer"), params.pop("x", None))
    clash = sorted(k for k in params if k in derived)
    if clash:
        raise ParamError(clash[0], f"{clash[0]}=: given with layer=, which sets it (the layer says "
                                   f"{derived[clash[0]]!r}); leave it out")
    return {**derived, **params}
