"""Setting up a region: a UTM tile grid over a bounding box, and its seasons.

``cropassets init-region --bbox W S E N --season ...`` writes the two files the code
location reads (``config/tiles.json``, ``config/seasons.json``) so that nobody hand-writes
UTM bounds. Tiles are square, ``tile_size`` metres on a side at ``resolution`` metres (10 m:
Sentinel-2's finest bands), aligned on multiples of the tile size in the zone's UTM
coordinates, so two regions set up in the same zone share tile edges; only tiles that meet
the bounding box are kept. A box crossing a UTM zone boundary is refused: one grid, one CRS.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rasterio.warp import transform_bounds

from cropassets.core.seasons import ROLES, SeasonError, load_seasons
from cropassets.core.storage import write_bytes_atomic
from cropassets.core.tiles import TileGridError, load_tiles

__all__ = ["RegionError", "SeasonSpec", "parse_season", "tile_grid", "utm_epsg",
           "write_region"]


class RegionError(ValueError):
    """The bounding box, tile size or seasons of a region set-up are invalid."""


@dataclass(frozen=True)
class SeasonSpec:
    """One season: id, Monday start, number of weeks, role (reference or current)."""

    id: str
    start: date
    weeks: int
    role: str


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 / UTM zone holding (lon, lat), in degrees.

    326xx north of the equator, 327xx south.
    """
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def _check_bbox(bbox: tuple[float, float, float, float]) -> None:
    w, s, e, n = bbox
    if not (-180 <= w < e <= 180 and -80 <= s < n <= 84):
        raise RegionError(f"bbox {list(bbox)}: expected W S E N in degrees with W < E, S < N, "
                          "longitudes in [-180, 180] and latitudes in [-80, 84] (UTM's range)")
    zones = {utm_epsg(w, s) % 100, utm_epsg(math.nextafter(e, -math.inf), s) % 100}
    if len(zones) > 1 or (s < 0 <= n):
        hemis = "both hemispheres" if s < 0 <= n else f"UTM zones {sorted(zones)}"
        raise RegionError(
            f"bbox {list(bbox)} spans {hemis}: a region's tiles share one UTM CRS; split "
            "the box at the zone edge (every 6 degrees of longitude from -180) or the "
            "equator and set up each part as its own region")


def tile_grid(bbox: tuple[float, float, float, float], tile_size: float = 10240.0,
              resolution: float = 10.0, max_tiles: int = 400) -> list[dict[str, object]]:
    """Tiles (tiles.json entries) covering a bounding box.

    Args:
        bbox: (W, S, E, N) in degrees (EPSG:4326).
        tile_size: Tile side in metres, a whole number of pixels.
        resolution: Pixel size in metres.
        max_tiles: Refuse grids with more tiles (a typo in the box should not create
            thousands of partitions).

    Returns:
        ``[{"id", "crs", "bounds", "resolution"}, ...]`` ordered north to south, west to
        east; ids ``E<easting>N<northing>`` of the tile's lower-left corner in metres.

    Raises:
        RegionError: Invalid box or sizes, a box across UTM zones, or too many tiles.
    """
    bbox = tuple(float(v) for v in bbox)  # type: ignore[assignment]
    _check_bbox(bbox)
    if resolution <= 0 or tile_size <= 0 or not math.isclose(
            tile_size / resolution, round(tile_size / resolution), abs_tol=1e-9):
        raise RegionError(f"tile size {tile_size} m must be a positive whole number of "
                          f"{resolution} m pixels")
    w, s, e, n = bbox
    epsg = utm_epsg((w + e) / 2, (s + n) / 2)
    x0, y0, x1, y1 = transform_bounds("EPSG:4326", f"EPSG:{epsg}", w, s, e, n, densify_pts=21)
    cols = range(math.floor(x0 / tile_size), math.ceil(x1 / tile_size))
    rows = range(math.floor(y0 / tile_size), math.ceil(y1 / tile_size))
    count = len(cols) * len(rows)
    if count > max_tiles:
        raise RegionError(
            f"bbox {list(bbox)} needs {count} tiles of {tile_size:g} m (more than "
            f"max_tiles={max_tiles}); use a larger --tile-size or a smaller box")
    tiles = []
    for r in reversed(rows):
        for c in cols:
            minx, miny = c * tile_size, r * tile_size
            tiles.append({"id": f"E{int(minx)}N{int(miny)}", "crs": f"EPSG:{epsg}",
                          "bounds": [minx, miny, minx + tile_size, miny + tile_size],
                          "resolution": resolution})
    return tiles


def parse_season(text: str) -> SeasonSpec:
    """``ID:START:WEEKS:ROLE`` (e.g. ``2024:2024-04-01:30:reference``) as a season.

    Raises:
        RegionError: Naming the text and what was expected.
    """
    parts = text.split(":")
    if len(parts) != 4:
        raise RegionError(f"season {text!r}: expected ID:START:WEEKS:ROLE, e.g. "
                          "2024:2024-04-01:30:reference")
    sid, start, weeks, role = parts
    try:
        day = date.fromisoformat(start)
        n = int(weeks)
    except ValueError as exc:
        raise RegionError(f"season {text!r}: START must be an ISO date and WEEKS an "
                          "integer") from exc
    if day.weekday() != 0:
        raise RegionError(f"season {text!r}: {day} is a {day:%A}; seasons start on a "
                          "Monday (weeks are the partitions)")
    if n < 1 or role not in ROLES or not sid or ":" in sid:
        raise RegionError(f"season {text!r}: need WEEKS >= 1 and ROLE one of {ROLES}")
    return SeasonSpec(sid, day, n, role)


def write_region(out_dir: Path, tiles: list[dict[str, object]], seasons: list[SeasonSpec],
                 force: bool = False) -> tuple[Path, Path]:
    """Write ``tiles.json`` and ``seasons.json`` into ``out_dir``, atomically.

    Both files are validated with the loaders the code location uses before anything is
    replaced. Existing files are kept unless ``force``; with ``force`` they are first
    copied to ``<name>.<UTC time>.bak``.

    Returns:
        (tiles file, seasons file).

    Raises:
        RegionError: Files exist and ``force`` is not set, or the result does not load.
    """
    out_dir = Path(out_dir)
    tiles_path, seasons_path = out_dir / "tiles.json", out_dir / "seasons.json"
    existing = [p for p in (tiles_path, seasons_path) if p.exists()]
    if existing and not force:
        raise RegionError(f"{[str(p) for p in existing]} exist: pass --force to replace them "
                          "(the old files are kept as .bak copies)")
    if not seasons:
        raise RegionError("a region needs at least one season (--season ID:START:WEEKS:ROLE)")
    tiles_doc = json.dumps({"tiles": tiles}, indent=1).encode()
    seasons_doc = json.dumps({"seasons": [
        {"id": s.id, "start": s.start.isoformat(), "weeks": s.weeks, "role": s.role}
        for s in seasons]}, indent=1).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp_ns = time.time_ns()
    staged = [out_dir / f".tiles.json.{stamp_ns}", out_dir / f".seasons.json.{stamp_ns}"]
    try:
        staged[0].write_bytes(tiles_doc)
        staged[1].write_bytes(seasons_doc)
        load_tiles(staged[0])
        load_seasons(staged[1])
    except (TileGridError, SeasonError) as exc:
        raise RegionError(f"the region does not load: {exc}") from exc
    finally:
        for p in staged:
            p.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for p in existing:
        shutil.copy2(p, p.with_name(f"{p.name}.{stamp}.bak"))
    write_bytes_atomic(tiles_path, tiles_doc)
    write_bytes_atomic(seasons_path, seasons_doc)
    return tiles_path, seasons_path
