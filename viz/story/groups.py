"""Channel groups as torch defines them, for the convolution and its transpose (NumPy-free).

C input channels and F filters (output maps) in G groups, G dividing both: group g holds channels
g·C/G .. (g+1)·C/G − 1 and filters g·F/G .. (g+1)·F/G − 1, and a filter reads (a transposed map is
made from) only the channels of its group. G = C = F is depthwise.

`group_claims` checks that on a Story's steps: the input channels each filter's steps light are
exactly its group's, counted on the cells the steps light, not taken from the builder's bookkeeping.
"""
from __future__ import annotations

from viz.story.core import Claim


class Groups:
    """Which channels each filter reads, and which filters each channel feeds (0-based)."""

    def __init__(self, channels: int = 1, filters: int = 1, groups: int = 1):
        self.C, self.F, self.G = int(channels), int(filters), int(groups)
        if min(self.C, self.F, self.G) < 1 or self.C % self.G or self.F % self.G:
            raise ValueError(f"groups must divide channels ({self.C}) and filters ({self.F}) (got {self.G})")
        self.Cg, self.Fg = self.C // self.G, self.F // self.G

    def group_of(self, f: int) -> int:
        """The group of filter f."""
        return f // self.Fg

    def channels_of(self, f: int) -> range:
        """The input channels filter f reads: its group's C/G."""
        g = self.group_of(f)
        return range(g * self.Cg, (g + 1) * self.Cg)

    def maps_of(self, c: int) -> range:
        """The filters (output maps) input channel c feeds: its group's F/G."""
        g = c // self.Cg
        return range(g * self.Fg, (g + 1) * self.Fg)


def group_claims(groups: Groups, steps, inputs, outputs, label) -> tuple[Claim, ...]:
    """One claim per filter f: the channels lit (window, padding taps, inserted zeros) on the `inputs`
    grids by the steps that write or light f's cells on the `outputs` grids (the map's axis first when
    there are several) are exactly `groups.channels_of(f)`. `label(f)` names the filter."""
    read: dict[int, set] = {f: set() for f in range(groups.F)}
    for s in steps:
        chans = {c[0] for lt in s.lit if lt.target in inputs and lt.role in ("window", "padding_tap", "muted")
                 for c in lt.cells}
        for lt in s.lit:
            if lt.target in outputs and lt.role == "output":
                for c in lt.cells:
                    read[c[0] if groups.F > 1 else 0] |= chans
    claims = []
    for f in range(groups.F):
        want = set(groups.channels_of(f))
        claims.append(Claim(f"filter-{f + 1}-channels", f"{label(f)} reads only x{min(want) + 1}..x{max(want) + 1}",
                            float(len(read[f] ^ want)), "==", 0.0, "channels lit outside its group, or missed",
                            "zero"))
    return tuple(claims)
