"""Tile grid: the user-edited file that defines which tiles the platform maps.

A tile is a regular raster grid (CRS, bounds in CRS units, square pixel size). Adding a
tile is an edit of the JSON file, never a code change::

    {"tiles": [{"id": "T00", "crs": "EPSG:32647",
                "bounds": [620000, 1614880, 625120, 1620000], "resolution": 10.0}]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds


class TileGridError(ValueError):
    """The tile-grid file or a tile id is invalid."""


@dataclass(frozen=True)
class TileSpec:
    """One tile of the grid.

    Attributes:
        id: Tile identifier, used as the Dagster partition key.
        crs: CRS string understood by rasterio, e.g. ``"EPSG:32647"``.
        bounds: (minx, miny, maxx, maxy) in CRS units (metres for UTM).
        resolution: Pixel size in CRS units.
    """

    id: str
    crs: str
    bounds: tuple[float, float, float, float]
    resolution: float

    @property
    def width(self) -> int:
        """Number of columns (pixels along x)."""
        return int(round((self.bounds[2] - self.bounds[0]) / self.resolution))

    @property
    def height(self) -> int:
        """Number of rows (pixels along y)."""
        return int(round((self.bounds[3] - self.bounds[1]) / self.resolution))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the tile grid."""
        return (self.height, self.width)

    @property
    def transform(self) -> Affine:
        """North-up affine transform of the tile grid (pixel corner convention)."""
        return Affine(self.resolution, 0.0, self.bounds[0], 0.0, -self.resolution, self.bounds[3])

    def bbox_wgs84(self) -> tuple[float, float, float, float]:
        """Tile bounds as (west, south, east, north) in degrees, densified for curvature."""
        return tuple(transform_bounds(CRS.from_user_input(self.crs), "EPSG:4326",
                                      *self.bounds, densify_pts=21))

    def x_coords(self):
        """Pixel-centre x coordinates, shape (width,)."""
        import numpy as np

        return self.bounds[0] + (np.arange(self.width) + 0.5) * self.resolution

    def y_coords(self):
        """Pixel-centre y coordinates (north to south), shape (height,)."""
        import numpy as np

        return self.bounds[3] - (np.arange(self.height) + 0.5) * self.resolution


def _parse_tile(raw: object, where: str) -> TileSpec:
    if not isinstance(raw, dict):
        raise TileGridError(f"{where}: expected an object with id, crs, bounds, resolution")
    missing = [k for k in ("id", "crs", "bounds", "resolution") if k not in raw]
    if missing:
        raise TileGridError(f"{where}: missing key(s) {missing}; expected id, crs, bounds, "
                            "resolution")
    tile_id = str(raw["id"])
    if not tile_id or "|" in tile_id or "/" in tile_id or tile_id in {".", ".."}:
        raise TileGridError(f"{where}: tile id {tile_id!r} must be non-empty without '|' or '/'")
    try:
        CRS.from_user_input(raw["crs"])
    except Exception as exc:  # rasterio raises CRSError subclasses
        raise TileGridError(f"{where} ({tile_id}): crs {raw['crs']!r} is not a valid CRS") from exc
    bounds = raw["bounds"]
    if not (isinstance(bounds, list | tuple) and len(bounds) == 4):
        raise TileGridError(f"{where} ({tile_id}): bounds must be [minx, miny, maxx, maxy]")
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    res = float(raw["resolution"])
    if res <= 0 or maxx <= minx or maxy <= miny:
        raise TileGridError(f"{where} ({tile_id}): need resolution > 0 and min < max bounds, "
                            f"got bounds={bounds} resolution={res}")
    for span in (maxx - minx, maxy - miny):
        if not math.isclose(span / res, round(span / res), abs_tol=1e-6):
            raise TileGridError(f"{where} ({tile_id}): bounds span {span} is not a whole number "
                                f"of {res}-unit pixels")
    return TileSpec(tile_id, str(raw["crs"]), (minx, miny, maxx, maxy), res)


def load_tiles(path: str | Path) -> dict[str, TileSpec]:
    """Read a tile-grid JSON file into ``{tile_id: TileSpec}`` (file order kept).

    Raises:
        TileGridError: the file is missing, not JSON, or a tile is malformed/duplicated.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise TileGridError(f"tile-grid file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise TileGridError(f"tile-grid file {path} is not valid JSON: {exc}") from exc
    raw_tiles = doc.get("tiles") if isinstance(doc, dict) else None
    if not isinstance(raw_tiles, list) or not raw_tiles:
        raise TileGridError(f"tile-grid file {path}: expected {{\"tiles\": [...]}} with >= 1 tile")
    tiles: dict[str, TileSpec] = {}
    for i, raw in enumerate(raw_tiles):
        tile = _parse_tile(raw, f"{path} tiles[{i}]")
        if tile.id in tiles:
            raise TileGridError(f"tile-grid file {path}: duplicate tile id {tile.id!r}")
        tiles[tile.id] = tile
    return tiles


def get_tile(tiles: dict[str, TileSpec], tile_id: str) -> TileSpec:
    """Look a tile up by id, with an error that names it and the known ids."""
    try:
        return tiles[tile_id]
    except KeyError:
        raise TileGridError(f"unknown tile {tile_id!r}; the tile grid has "
                            f"{sorted(tiles)}") from None
