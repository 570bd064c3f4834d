"""Raster grids of the world: the region, its tiles and the simulation grid.

The region's upper-left corner is :data:`~cropassets.world.config.ORIGIN` on EPSG:32647.
``tiles`` tiles of ``size``×``size`` pixels (10 m) are laid out row by row in
``ceil(sqrt(tiles))`` columns and named ``T<row><col>``. Everything is simulated on a
slightly larger grid (the region plus :data:`~cropassets.world.config.MARGIN_PX` pixels on
each side) so that scenes, reprojected scenes and cloud shadows cover the tiles fully.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from affine import Affine

from cropassets.world.config import EPSG, MARGIN_PX, ORIGIN, RESOLUTION


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: upper-left corner (x0, y0) in metres, square pixels."""

    epsg: int
    x0: float
    y0: float
    res: float
    width: int
    height: int

    @property
    def crs(self) -> str:
        """CRS string for rasterio, e.g. ``"EPSG:32647"``."""
        return f"EPSG:{self.epsg}"

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.height, self.width)

    @property
    def transform(self) -> Affine:
        """Affine transform (pixel-corner convention)."""
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in metres."""
        return (self.x0, self.y0 - self.res * self.height, self.x0 + self.res * self.width,
                self.y0)

    def coarsen(self, factor: int) -> Grid:
        """The same extent with ``factor``-times larger pixels (dims must divide)."""
        if self.width % factor or self.height % factor:
            raise ValueError(f"grid {self.shape} is not divisible by {factor}")
        return Grid(self.epsg, self.x0, self.y0, self.res * factor, self.width // factor,
                    self.height // factor)


@dataclass(frozen=True)
class Tile:
    """One tile: its id, position in the tile layout and its grid."""

    id: str
    row: int
    col: int
    grid: Grid

    def to_dict(self) -> dict[str, Any]:
        """The tile as written to ``tiles.json``."""
        return {"id": self.id, "crs": self.grid.crs, "bounds": list(self.grid.bounds),
                "resolution": self.grid.res}


@dataclass(frozen=True)
class Layout:
    """Region, tiles and simulation grid of a world, all at 10 m on EPSG:32647."""

    region: Grid
    tiles: tuple[Tile, ...]
    sim: Grid
    margin: int  # px between the sim grid's edge and the region's edge

    def tile_window(self, tile: Tile) -> tuple[slice, slice]:
        """(rows, cols) slices of ``tile`` within the sim grid."""
        r0 = self.margin + tile.row * tile.grid.height
        c0 = self.margin + tile.col * tile.grid.width
        return slice(r0, r0 + tile.grid.height), slice(c0, c0 + tile.grid.width)

    def region_window(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the region within the sim grid."""
        m = self.margin
        return slice(m, m + self.region.height), slice(m, m + self.region.width)


def tile_id(row: int, col: int) -> str:
    """Tile name ``T<row><col>`` (row and col < 10 since tiles <= 100)."""
    return f"T{row}{col}"


def make_layout(size: int, tiles: int, margin: int = MARGIN_PX) -> Layout:
    """Tile layout of ``tiles`` tiles of ``size``×``size`` px in ceil(sqrt(tiles)) columns."""
    ncols = math.ceil(math.sqrt(tiles))
    nrows = math.ceil(tiles / ncols)
    x0, y0 = ORIGIN
    res = RESOLUTION
    out = []
    for i in range(tiles):
        r, c = divmod(i, ncols)
        g = Grid(EPSG, x0 + c * size * res, y0 - r * size * res, res, size, size)
        out.append(Tile(tile_id(r, c), r, c, g))
    region = Grid(EPSG, x0, y0, res, ncols * size, nrows * size)
    sim = Grid(EPSG, x0 - margin * res, y0 + margin * res, res, region.width + 2 * margin,
               region.height + 2 * margin)
    return Layout(region, tuple(out), sim, margin)
