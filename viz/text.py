"""Number typography: every number and index a person reads, formatted in one place.

Real minus signs ("−2"), product dots ("2·(−1)"), 1-based indices ("y[2]" for index 1), at most
`DECIMALS` decimals. The reference returns numbers; the Story builders turn them into text with these
functions; renderers draw the text as given.
"""
from __future__ import annotations

DECIMALS = 2      # numbers shown with at most this many decimals

MINUS = "\u2212"  # a typographic minus: "−2", not "-2"
TIMES = "\u00b7"  # the product dot in "2·(−1)"


def fmt_value(v: float, integer: bool = False, decimals: int = DECIMALS) -> str:
    """A number as a reader sees it, with a real minus sign.

    integer=True (integer example data): "3", "−12". Otherwise at most `decimals` decimals and at
    least one, trailing zeros dropped, so one-decimal data reads "0.8", not "0.80": "2.28", "1.0".
    """
    v = float(v)
    if integer:
        s = f"{int(round(v))}"
    else:
        s = f"{v:.{decimals}f}".rstrip("0")
        s = s + "0" if s.endswith(".") else s
        if float(s) == 0.0:
            s = "0.0"   # never "-0.0"
    return s.replace("-", MINUS)


def fmt_factor(v: float, integer: bool = False) -> str:
    """A factor inside a product: negative numbers in parentheses, "2·(−1)"."""
    s = fmt_value(v, integer)
    return f"({s})" if s.startswith(MINUS) else s


def fmt_index(index) -> str:
    """A 0-based index tuple as the 1-based label a person reads: (0, 2) -> "1,3"."""
    return ",".join(str(int(i) + 1) for i in index)


def pretty_formula(s: str) -> str:
    """Typography only: real minus signs and product dots in a formula string from viz."""
    return s.replace("*", TIMES).replace("-", MINUS)


def fmt_sci(x: float, digits: int = 1) -> str:
    """Scientific notation a reader sees on a log scale: 2.1e−15, 3.4e2, 1.0e0 (`digits` decimals of
    the mantissa, compact exponent, a real minus); "0" for zero."""
    x = float(x)
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", MINUS)


def fmt_decade(d: int) -> str:
    """The tick label of 10^d on a log axis: "1" for d = 0, else "1e3", "1e−4"."""
    return "1" if d == 0 else f"1e{int(d)}".replace("-", MINUS)


def fmt_norm(x: float) -> str:
    """A gradient norm as the training figures write it: 3 significant digits ("11.6", "0.239"),
    "1.2e+06" from 1e5 on, "overflow" when not finite."""
    import math
    if not math.isfinite(x):
        return "overflow"
    return f"{x:.3g}" if x < 1e5 else f"{x:.1e}"


def fmt_shape(shape, sep: str = "×") -> str:
    """An array shape as a reader writes it: (1, 5, 3) -> "1×5×3" ("1x5x3" with sep="x", as typed on a
    command line); () -> "scalar"."""
    return sep.join(str(int(v)) for v in shape) if len(shape) else "scalar"


def fmt_num(x: float) -> str:
    """A number in a diagram label (Graphviz HTML): 3 significant digits, ``2.10·10<sup>−5</sup>`` when
    far from 1, a real minus."""
    x = float(x)
    if x == 0:
        return "0"
    if 1e-2 <= abs(x) < 1e3:
        s = f"{x:.3g}"
    else:
        mant, exp = f"{x:.2e}".split("e")
        s = f"{mant}·10<sup>{int(exp)}</sup>"
    return s.replace("-", MINUS)
