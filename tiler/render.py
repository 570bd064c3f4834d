"""How each served layer is drawn: band, value range and colours, fixed on the server.

``crop`` is band 1 of the crop COG drawn with the class palette of the week's manifest
(passed explicitly: titiler-mosaic does not apply a COG's internal colormap);
``confidence`` is band 2 (0-100 %) and ``sos`` the SOS day of year, each stretched over
its range onto a named rio-tiler ramp. Nodata is transparent in every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rio_tiler.colormap import cmap
from rio_tiler.types import ColorMapType

from cropassets.core.legend import LAYER_RAMPS, LegendEntry, legend_colormap, ramp_colors
from cropassets.core.publish.manifest_record import WeekManifest


@dataclass(frozen=True)
class LayerStyle:
    """Fixed rendering of one layer."""

    band: int             # band of the layer's COG (1-based)
    ramp: str | None      # rio-tiler colormap name; None: the class palette
    unit: str
    title: str


STYLES: dict[str, LayerStyle] = {
    "crop": LayerStyle(1, None, "class", "crop type"),
    "confidence": LayerStyle(2, LAYER_RAMPS["confidence"], "%", "confidence of the crop class"),
    "sos": LayerStyle(1, LAYER_RAMPS["sos"], "day of year", "start of season"),
    "coverage": LayerStyle(1, LAYER_RAMPS["coverage"], "observations",
                           "clear optical observations since the season start"),
}

CONFIDENCE_RANGE = (0.0, 100.0)


def value_range(layer: str, manifest: WeekManifest | None) -> tuple[float, float] | None:
    """Values stretched onto the ramp of ``layer`` (None for the class layer).

    Without a manifest (or a range in it): SOS 1..366 (day of year), coverage 0..1.
    """
    if layer == "confidence":
        return CONFIDENCE_RANGE
    if layer == "sos":
        lo, hi = (manifest.sos_range if manifest else None) or (1, 366)
        return float(lo), float(hi)
    if layer == "coverage":
        lo, hi = (manifest.coverage_range if manifest else None) or (0, 1)
        return float(lo), float(hi)
    return None


def classes(manifest: WeekManifest | None) -> list[LegendEntry]:
    """The class legend of a week manifest (none without one)."""
    return list(manifest.classes) if manifest is not None else []


def colormap(layer: str, manifest: WeekManifest) -> ColorMapType:
    """Colormap applied to the (stretched) values of ``layer``."""
    ramp = STYLES[layer].ramp
    if ramp is None:
        return legend_colormap(classes(manifest))
    return cmap.get(ramp)


def ramp_legend(layer: str, manifest: WeekManifest | None, stops: int = 11) -> dict[str, Any]:
    """Legend of a ramp layer: name, unit, value range and ``stops`` evenly spaced colours."""
    style = STYLES[layer]
    if style.ramp is None:
        raise ValueError(f"layer {layer} is drawn with classes, not a ramp")
    lo_hi = value_range(layer, manifest) if manifest or layer == "confidence" else None
    return {
        "title": style.title,
        "colormap": style.ramp,
        "unit": style.unit,
        "min": lo_hi[0] if lo_hi else None,
        "max": lo_hi[1] if lo_hi else None,
        "stops": ramp_colors(style.ramp, stops),
    }
