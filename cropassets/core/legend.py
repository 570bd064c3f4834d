"""Class legend of the crop map: codes, names and colours shared by COGs, tiler and web map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

CLASS_NODATA = 255
"""Crop COG nodata (both bands): no clear observation of the pixel in the season so far."""

KNOWN_COLORS: dict[str, str] = {
    "rice": "#1b9e77",
    "maize": "#f2c500",
    "cassava": "#d95f02",
    "sugarcane": "#a6d854",
    "forest": "#1a5e20",
    "water": "#2b83ba",
    "built-up": "#9e9e9e",
}
"""Colours of the demo world's classes (the same hex as ``cropassets.world.config``)."""

FALLBACK_COLORS = ("#e7298a", "#7570b3", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                   "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6")
"""Colours of classes not in :data:`KNOWN_COLORS`, in code order."""


@dataclass(frozen=True)
class LegendEntry:
    """One class of the map."""

    code: int
    name: str
    color: str  # "#rrggbb"

    def to_dict(self) -> dict[str, object]:
        """The entry as JSON-ready dict."""
        return asdict(self)


def class_legend(codes: Sequence[int], names: Sequence[str]) -> list[LegendEntry]:
    """Legend entries for class ``codes`` (1..254) with ``names``, ordered by code.

    Raises:
        ValueError: If lengths differ or a code is outside 0..254 (255 is nodata).
    """
    if len(codes) != len(names):
        raise ValueError(f"{len(codes)} class codes but {len(names)} names")
    out, spare = [], iter(FALLBACK_COLORS * 26)
    for code, name in sorted(zip((int(c) for c in codes), names, strict=True)):
        if not 0 <= code < CLASS_NODATA:
            raise ValueError(f"class code {code} of {name!r} must be in 0..254 (255 = nodata)")
        out.append(LegendEntry(code, str(name), KNOWN_COLORS.get(str(name)) or next(spare)))
    return out


def hex_to_rgba(color: str) -> tuple[int, int, int, int]:
    """``"#rrggbb"`` -> (r, g, b, 255)."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def legend_colormap(legend: Sequence[LegendEntry]) -> dict[int, tuple[int, int, int, int]]:
    """Palette ``{code: (r, g, b, a)}`` for a COG / rio-tiler render; nodata transparent."""
    cmap = {e.code: hex_to_rgba(e.color) for e in legend}
    cmap[CLASS_NODATA] = (0, 0, 0, 0)
    return cmap


LAYER_RAMPS: dict[str, str] = {"confidence": "viridis", "sos": "plasma", "coverage": "cividis"}
"""rio-tiler colormap of each ramp layer (the tiler, the web map legend and the QML styles)."""


def ramp_colors(ramp: str, stops: int = 11) -> list[str]:
    """``stops`` evenly spaced ``#rrggbb`` colours of the rio-tiler colormap ``ramp``."""
    from rio_tiler.colormap import cmap

    colors = cmap.get(ramp)
    if not isinstance(colors, dict):  # rio-tiler's named colormaps are {0..255: rgba}
        raise TypeError(f"colormap {ramp!r} is not a {{value: rgba}} palette")
    picked = [colors[round(i * 255 / (stops - 1))] for i in range(stops)]
    return ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in c[:3])) for c in picked]
