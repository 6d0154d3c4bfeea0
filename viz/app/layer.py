"""A figure from a PyTorch layer, without importing PyTorch: `viz.figure("animate conv", layer=conv, x=t)`.

The layer is read by duck typing, as `torch.nn.Conv1d` / `Conv2d` spell it:

    weight   (F, C/groups, *kernel)  ->  --w, --filters F, --channels C, --kernel
             ConvTranspose: (C_in, F/groups, *kernel), and output_padding -> --output-padding
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

LAYER_PARAMS = ("input", "channels", "filters", "groups", "kernel", "stride", "padding", "dilation",
                "output_padding", "w", "b", "bias", "x")


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
    transposed = bool(getattr(layer, "transposed", False))
    mode = getattr(layer, "padding_mode", "zeros")
    if mode != "zeros":
        raise ParamError("layer", f"layer=: padding_mode must be 'zeros', the padding drawn (got {mode!r})")
    w = _array(layer.weight, "w")
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise ParamError("layer", f"layer=: the animations draw Conv1d and Conv2d (weight of {w.ndim} axes)")
    groups = int(getattr(layer, "groups", 1))
    # conv: w (F, C/G, *k); transposed (torch's ConvTranspose layout): w (C_in, F/G, *k)
    lead = "in_channels" if transposed else "out_channels"
    if groups < 1 or w.shape[0] % groups:
        raise ParamError("layer", f"layer=: groups ({groups}) must divide {lead} ({w.shape[0]})")
    channels, filters = ((int(w.shape[0]), int(w.shape[1]) * groups) if transposed
                         else (int(w.shape[1]) * groups, int(w.shape[0])))
    raw = {"kernel": tuple(int(v) for v in w.shape[2:]), "channels": channels, "filters": filters,
           "groups": groups, "w": w.tolist(),
           "stride": _per_axis(getattr(layer, "stride", 1), nd, "stride"),
           "padding": _per_axis(getattr(layer, "padding", 0), nd, "padding"),
           "dilation": _per_axis(getattr(layer, "dilation", 1), nd, "dilation")}
    if transposed:
        raw["output_padding"] = _per_axis(getattr(layer, "output_padding", 0), nd, "output_padding")
        if getattr(layer, "bias", None) is not None:     # the transposed figures draw no bias
            raise ParamError("layer", "layer=: the transposed convolution figures draw no bias; build the "
                                      "layer with bias=False")
    elif getattr(layer, "bias", None) is not None:
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


def with_layer(params: dict, key: str = "") -> dict:
    """`params` of the figure kind `key` with `layer=` (and its `x=`) replaced by what the layer says;
    a parameter given both ways is refused (the layer decides its own geometry), and so is a
    transposed layer for a forward kind or a forward layer for a transposed one."""
    if params.get("layer") is None:
        return {k: v for k, v in params.items() if k != "layer"}
    params = dict(params)
    layer = params.pop("layer")
    transposed, wants = bool(getattr(layer, "transposed", False)), key.endswith("conv-transpose")
    if key and transposed != wants:
        what, kinds = (("a transposed convolution layer", '"animate conv-transpose" or "diagram conv-transpose"')
                       if transposed else ("a convolution layer", '"animate conv" or "animate conv-backward"'))
        raise ParamError("layer", f"layer=: {what} is drawn by {kinds} (not {key!r})")
    derived = layer_params(layer, params.pop("x", None))
    clash = sorted(k for k in params if k in derived)
    if clash:
        raise ParamError(clash[0], f"{clash[0]}=: given with layer=, which sets it (the layer says "
                                   f"{derived[clash[0]]!r}); leave it out")
    return {**derived, **params}
