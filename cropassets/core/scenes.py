"""Load one week of Sentinel-1/2 STAC items onto a tile's grid.

Every asset is read through a GDAL warped VRT onto the tile grid (CRS, transform, shape),
so scenes on another UTM zone or at another resolution are reprojected and resampled
(bilinear for continuous values, nearest for the scene-classification band). Digital
numbers are converted with the scale/offset the item declares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT

from cropassets.core.catalog_profiles import S1_BANDS, S2_BANDS, CatalogProfile
from cropassets.core.grid import TileSpec

log = logging.getLogger(__name__)

S2_SCALE_DEFAULT = 1e-4
"""Sentinel-2 L2A reflectance scale (DN -> reflectance)."""
S2_BOA_OFFSET = -0.1
"""BOA_ADD_OFFSET of processing baseline >= 04.00, in reflectance units."""

_GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_NUM_THREADS": "ALL_CPUS"}


@dataclass(frozen=True)
class SkippedScene:
    """A scene left out of a week, with the reason (shown in asset metadata)."""

    scene_id: str
    reason: str


def s2_scale_offset(item: dict, asset_key: str, profile: CatalogProfile) -> tuple[float, float]:
    """Scale and offset that turn an S2 asset's DN into surface reflectance.

    Uses the asset's ``raster:bands`` when it declares them; otherwise, when the profile
    allows, derives them from ``s2:processing_baseline`` (offset -0.1 from baseline 04.00).
    """
    band = (item["assets"][asset_key].get("raster:bands") or [{}])[0]
    if "scale" in band or "offset" in band:
        return float(band.get("scale", 1.0)), float(band.get("offset", 0.0))
    if profile.s2_offset_from_baseline:
        baseline = str(item["properties"].get("s2:processing_baseline", "00.00"))
        offset = S2_BOA_OFFSET if _baseline_tuple(baseline) >= (4, 0) else 0.0
        return S2_SCALE_DEFAULT, offset
    return 1.0, 0.0


def _baseline_tuple(baseline: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in baseline.split("."))
    except ValueError:
        return (0,)


def _asset_nodata(item: dict, asset_key: str, src_nodata: float | None) -> float | None:
    band = (item["assets"][asset_key].get("raster:bands") or [{}])[0]
    return band.get("nodata", src_nodata)


def read_on_grid(href: str, tile: TileSpec, resampling: Resampling,
                 nodata: float | None = None) -> tuple[np.ndarray, float | None]:
    """Read band 1 of a raster onto the tile grid.

    Returns:
        (array of shape (height, width) in the source dtype, nodata value used). Pixels the
        source does not cover hold the nodata value.
    """
    with rasterio.Env(**_GDAL_ENV), rasterio.open(href) as src:
        src_nodata = src.nodata if nodata is None else nodata
        with WarpedVRT(src, crs=tile.crs, transform=tile.transform, width=tile.width,
                       height=tile.height, resampling=resampling, src_nodata=src_nodata,
                       nodata=src_nodata) as vrt:
            return vrt.read(1), src_nodata


def _datetime(item: dict) -> np.datetime64:
    return np.datetime64(pd.Timestamp(item["properties"]["datetime"]).tz_convert(None), "ns")


def _load_s2(item: dict, tile: TileSpec, profile: CatalogProfile) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for band in (*S2_BANDS, "scl"):
        key = profile.s2_assets[band]
        if key not in item["assets"]:
            raise KeyError(f"asset {key!r} ({band}) missing from item")
        href = item["assets"][key]["href"]
        if band == "scl":
            data, nd = read_on_grid(href, tile, Resampling.nearest,
                                    _asset_nodata(item, key, None))
            scl = data.astype(np.uint8)
            if nd is not None:
                scl[data == nd] = 0
            out["scl"] = scl
            continue
        data, nd = read_on_grid(href, tile, Resampling.bilinear, _asset_nodata(item, key, None))
        scale, offset = s2_scale_offset(item, key, profile)
        refl = data.astype(np.float32) * np.float32(scale) + np.float32(offset)
        if nd is not None:
            refl[data == nd] = np.nan
        out[band] = refl
    return out


def _load_s1(item: dict, tile: TileSpec, profile: CatalogProfile) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for band in S1_BANDS:
        key = profile.s1_assets[band]
        if key not in item["assets"]:
            raise KeyError(f"asset {key!r} ({band}) missing from item")
        data, nd = read_on_grid(item["assets"][key]["href"], tile, Resampling.bilinear,
                                _asset_nodata(item, key, None))
        lin = data.astype(np.float32)
        invalid = ~np.isfinite(lin) | (lin <= 0)
        if nd is not None:
            invalid |= data == nd
        lin[invalid] = np.nan
        out[band] = lin
    return out


def _stack(loaded: list[tuple[dict, dict[str, np.ndarray]]], bands: Iterable[str], prefix: str,
           tile: TileSpec, dtype_for: Callable[[str], type]) -> xr.Dataset:
    dim = f"{prefix}_time"
    n = len(loaded)
    data_vars = {}
    for band in bands:
        if n:
            arr = np.stack([arrays[band] for _, arrays in loaded])
        else:
            arr = np.zeros((0, tile.height, tile.width), dtype=dtype_for(band))
        data_vars[band] = ((dim, "y", "x"), arr)
    coords = {
        dim: np.array([_datetime(it) for it, _ in loaded], dtype="datetime64[ns]"),
        f"{prefix}_id": (dim, np.array([it["id"] for it, _ in loaded], dtype=str)),
        f"{prefix}_cloud_cover": (dim, np.array(
            [float(it["properties"].get("eo:cloud_cover", np.nan)) for it, _ in loaded],
            dtype=np.float32)),
    }
    return xr.Dataset(data_vars, coords=coords)


def load_week(s2_items: list[dict], s1_items: list[dict], tile: TileSpec,
              profile: CatalogProfile) -> tuple[xr.Dataset, list[SkippedScene]]:
    """Load a week's scenes onto the tile grid.

    Args:
        s2_items: Sentinel-2 L2A STAC item dicts of the week.
        s1_items: Sentinel-1 STAC item dicts of the week.
        tile: Target grid.
        profile: Asset naming and scaling rules.

    Returns:
        A Dataset with dims (s2_time, s1_time, y, x): ``blue, green, red, nir, swir16``
        surface reflectance (float32, NaN = nodata), ``scl`` scene classification (uint8,
        0 = nodata), ``vv, vh`` linear backscatter (float32, NaN = nodata); coordinates hold
        acquisition times, scene ids and cloud cover; plus the scenes skipped because an
        asset was missing or unreadable. A week without scenes gives zero-length time dims.
    """
    skipped: list[SkippedScene] = []

    def load_all(items: list[dict], loader) -> list[tuple[dict, dict[str, np.ndarray]]]:
        ok = []
        for item in sorted(items, key=lambda it: (it["properties"]["datetime"], it["id"])):
            try:
                ok.append((item, loader(item, tile, profile)))
            except (RasterioError, KeyError, OSError) as exc:
                log.warning("skipping scene %s: %s", item["id"], exc)
                skipped.append(SkippedScene(item["id"], f"{type(exc).__name__}: {exc}"))
        return ok

    s2 = _stack(load_all(s2_items, _load_s2), (*S2_BANDS, "scl"), "s2", tile,
                lambda b: np.uint8 if b == "scl" else np.float32)
    s1 = _stack(load_all(s1_items, _load_s1), S1_BANDS, "s1", tile, lambda b: np.float32)
    ds = xr.merge([s2, s1])
    ds = ds.assign_coords(y=("y", tile.y_coords()), x=("x", tile.x_coords()))
    ds = ds.rio.write_crs(tile.crs).rio.write_transform(tile.transform)
    ds.attrs.update(tile=tile.id)
    return ds, skipped
