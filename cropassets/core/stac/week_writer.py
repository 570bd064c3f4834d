"""Load a week's scenes onto a tile and store them as one Zarr partition, in strips of rows.

A small tile is loaded whole (:func:`~cropassets.core.stac.scenes.load_week`) and written
at once. A tile taller than ``strip_rows`` (a Sentinel-2 tile is 10980 x 10980 px: one
week of S2 and S1 scenes is ~10 GB of float32 when loaded whole) is read through the same
warped VRTs one strip of rows at a time and each strip written into its region of the
store, so memory holds one strip of every scene plus the (scene, y, x) uint8 SCL bands
(which the quality checks read). The store is published as a whole either way
(:func:`~cropassets.core.storage.zarr_target`): a reader never sees a half-written week.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import dask.array as da
import numpy as np
import xarray as xr

from cropassets.core.objstore import Location, zarr_store
from cropassets.core.stac.catalog_profiles import CatalogProfile
from cropassets.core.stac.scenes import SkippedScene, load_week
from cropassets.core.storage import (
    dir_size,
    raw_scenes_encoding,
    write_zarr_atomic,
    zarr_target,
)
from cropassets.core.tiles import TileSpec

Attrs = Callable[[xr.Dataset, list[SkippedScene]], dict]
"""Dataset attributes of a week from its loaded scenes and the skipped ones."""
STRIP_ROWS = 2048
"""Rows of a tile loaded at a time when the tile is taller (a multiple of CHUNK)."""
CHUNK = 1024
"""Zarr chunk edge (y and x) of a partition written in strips; one chunk per scene."""


@dataclass(frozen=True)
class WrittenWeek:
    """What was stored for one tile-week.

    Attributes:
        s2_ids: Sentinel-2 scene ids in time order (the ``s2_time`` dimension).
        s1_ids: Sentinel-1 scene ids in time order.
        scl: (s2_time, y, x) uint8 scene classification as stored (0 = nodata).
        skipped: Scenes left out, with the reason.
        nbytes: Bytes of the stored partition.
        strips: Strips of rows it was loaded in (1: whole).
    """

    s2_ids: list[str]
    s1_ids: list[str]
    scl: np.ndarray
    skipped: list[SkippedScene]
    nbytes: int
    strips: int


def strip_of(tile: TileSpec, y0: int, y1: int) -> TileSpec:
    """Rows ``y0:y1`` of ``tile`` as a tile of their own (same CRS, resolution, columns)."""
    minx, _, maxx, maxy = tile.bounds
    r = tile.resolution
    return TileSpec(id=tile.id, crs=tile.crs, bounds=(minx, maxy - y1 * r, maxx, maxy - y0 * r),
                    resolution=r)


def write_week(s2_items: list[dict], s1_items: list[dict], tile: TileSpec,
               profile: CatalogProfile, path: Location, attrs: Attrs | None = None,
               strip_rows: int = STRIP_ROWS) -> WrittenWeek:
    """Load the week's scenes onto ``tile`` and store them at ``path`` atomically.

    Args:
        s2_items: Sentinel-2 L2A STAC item dicts of the week (see ``load_week``).
        s1_items: Sentinel-1 STAC item dicts of the week.
        tile: Target grid.
        profile: Asset naming and scaling rules.
        path: The partition's ``.zarr`` location (local or object storage).
        attrs: Gives the dataset attributes to store (week, season, radar status...) from
            the loaded dataset (its scene coordinates; in strips: the first strip's) and
            the skipped scenes.
        strip_rows: Tiles taller than this are loaded and written in strips of this many
            rows (a positive multiple of :data:`CHUNK`).

    Returns:
        What was stored (:class:`WrittenWeek`). The stored dataset is exactly what
        ``load_week`` returns for the whole tile.

    Raises:
        ValueError: ``strip_rows`` not a positive multiple of :data:`CHUNK`.
        RuntimeError: A scene that loaded in the first strip failed in a later one
            (named); nothing is published then.
    """
    if strip_rows <= 0 or strip_rows % CHUNK:
        raise ValueError(f"strip_rows must be a positive multiple of {CHUNK}, got {strip_rows}")
    if tile.height <= strip_rows:
        ds, skipped = load_week(s2_items, s1_items, tile, profile)
        ds.attrs.update(attrs(ds, skipped) if attrs else {})
        nbytes = write_zarr_atomic(ds, path, raw_scenes_encoding(ds))
        return WrittenWeek(_ids(ds, "s2"), _ids(ds, "s1"), ds["scl"].values, skipped, nbytes, 1)
    return _write_in_strips(s2_items, s1_items, tile, profile, path, attrs, strip_rows)


def _ids(ds: xr.Dataset, prefix: str) -> list[str]:
    return [str(v) for v in ds[f"{prefix}_id"].values]


def _write_in_strips(s2_items: list[dict], s1_items: list[dict], tile: TileSpec,
                     profile: CatalogProfile, path: Location, attrs: Attrs | None,
                     strip_rows: int) -> WrittenWeek:
    first: xr.Dataset | None
    first, skipped = load_week(s2_items, s1_items, strip_of(tile, 0, strip_rows), profile)
    s2_ids, s1_ids = _ids(first, "s2"), _ids(first, "s1")
    s2_ok = [it for it in s2_items if it["id"] in set(s2_ids)]
    s1_ok = [it for it in s1_items if it["id"] in set(s1_ids)]
    scl = np.zeros((len(s2_ids), *tile.shape), dtype=np.uint8)
    template = _template(first, tile)
    template.attrs.update(attrs(first, skipped) if attrs else {})
    n_strips = 0
    with zarr_target(path) as target:
        store = zarr_store(target)
        template.to_zarr(store, mode="w", compute=False, consolidated=True, zarr_format=2,
                         encoding=_strip_encoding(template))
        for y0 in range(0, tile.height, strip_rows):
            y1 = min(y0 + strip_rows, tile.height)
            if y0 == 0:
                assert first is not None
                part, first = first, None
            else:
                part, lost = load_week(s2_ok, s1_ok, strip_of(tile, y0, y1), profile)
                if lost:
                    raise RuntimeError(
                        f"scene {lost[0].scene_id} loaded for rows 0-{strip_rows} of tile "
                        f"{tile.id} but failed for rows {y0}-{y1}: {lost[0].reason}")
            scl[:, y0:y1] = part["scl"].values
            region = part.drop_vars([n for n, v in part.variables.items() if "y" not in v.dims])
            region.to_zarr(store, region={"y": slice(y0, y1)}, zarr_format=2)
            n_strips += 1
            del part, region
            gc.collect()  # a dataset with a .rio accessor is a reference cycle: free it now
        nbytes = dir_size(target)
    return WrittenWeek(s2_ids, s1_ids, scl, skipped, nbytes, n_strips)


def _template(first: xr.Dataset, tile: TileSpec) -> xr.Dataset:
    """The whole tile's dataset, lazy and empty, with the time coordinates of ``first``."""
    h, w = tile.shape
    data_vars = {}
    for name, var in first.data_vars.items():
        n = var.shape[0]
        data_vars[name] = (var.dims, da.zeros((n, h, w), dtype=var.dtype,
                                              chunks=(1, CHUNK, CHUNK)))
    coords = {k: v for k, v in first.coords.items()
              if "y" not in v.dims and "x" not in v.dims and k != "spatial_ref"}
    ds = xr.Dataset(data_vars, coords=coords)
    ds = ds.assign_coords(y=("y", tile.y_coords()), x=("x", tile.x_coords()))
    ds = ds.rio.write_crs(tile.crs).rio.write_transform(tile.transform)
    ds.attrs.update(first.attrs)
    return ds


def _strip_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """``raw_scenes_encoding`` with chunks of one scene x CHUNK x CHUNK pixels.

    An explicit encoding replaces the variable's own, so its CF grid mapping (the CRS
    link rioxarray set) is carried over.
    """
    enc = raw_scenes_encoding(ds)
    for key, var in ds.data_vars.items():
        name = str(key)
        enc.setdefault(name, {})["chunks"] = (1, CHUNK, CHUNK)
        if "grid_mapping" in var.encoding:
            enc[name]["grid_mapping"] = var.encoding["grid_mapping"]
    return enc
