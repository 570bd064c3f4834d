"""Load one week of Sentinel-1/2 STAC items onto a tile's grid.

Every asset is read through a GDAL warped VRT onto the tile grid (CRS, transform, shape),
so scenes on another UTM zone or at another resolution are reprojected and resampled
(bilinear for continuous values, nearest for the scene-classification band). Digital
numbers are converted with the scale/offset rule of each item
(:func:`cropassets.core.stac.item_metadata.reflectance_scale_offset`); Sentinel-1 items that are
not terrain-corrected backscatter (RTC) are refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT

from cropassets.core.stac.catalog_profiles import S1_BANDS, S2_BANDS, CatalogProfile
from cropassets.core.stac.item_metadata import (
    UnsupportedScene,
    item_datetime,
    raster_band,
    reflectance_scale_offset,
    s1_product_kind,
)
from cropassets.core.tiles import TileSpec

log = logging.getLogger(__name__)

# remote COGs: retry transient HTTP errors (429, 5xx) with back-off and bound every request
# in time, so one hiccup does not drop a scene for good
_GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_NUM_THREADS": "ALL_CPUS",
             "GDAL_HTTP_MAX_RETRY": "5", "GDAL_HTTP_RETRY_DELAY": "2",
             "GDAL_HTTP_TIMEOUT": "120", "GDAL_HTTP_CONNECTTIMEOUT": "30",
             "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.jp2,.JP2"}


@dataclass(frozen=True)
class SkippedScene:
    """A scene left out of a week, with the reason (shown in asset metadata)."""

    scene_id: str
    reason: str


def _asset_nodata(item: dict, asset_key: str, src_nodata: float | None) -> float | None:
    return raster_band(item["assets"][asset_key]).get("nodata", src_nodata)


def gdal_env(profile: CatalogProfile | None = None) -> dict[str, str]:
    """GDAL options for reading a catalog's assets.

    The retry/timeout defaults, then the profile's own (unsigned S3, endpoints, and the
    deployment's ``CROPASSETS_GDAL_*`` overrides, which the ``StacCatalog`` resource
    merges into the profile it hands out).
    """
    env = dict(_GDAL_ENV)
    if profile is not None:
        env |= profile.gdal_env
    return env


def read_on_grid(href: str, tile: TileSpec, resampling: Resampling,
                 nodata: float | None = None,
                 env: dict[str, str] | None = None) -> tuple[np.ndarray, float | None]:
    """Read band 1 of a raster onto the tile grid.

    GDAL options: ``env``, default :func:`gdal_env`.

    Returns:
        (array of shape (height, width) in the source dtype, nodata value used). Pixels the
        source does not cover hold the nodata value.
    """
    with rasterio.Env(**(gdal_env() if env is None else env)), rasterio.open(href) as src:
        src_nodata = src.nodata if nodata is None else nodata
        with WarpedVRT(src, crs=tile.crs, transform=tile.transform, width=tile.width,
                       height=tile.height, resampling=resampling, src_nodata=src_nodata,
                       nodata=src_nodata) as vrt:
            return vrt.read(1), src_nodata


def _datetime(item: dict) -> np.datetime64:
    return np.datetime64(item_datetime(item).tz_convert(None), "ns")


def _load_s2(item: dict, tile: TileSpec, profile: CatalogProfile) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    env = gdal_env(profile)
    for band in (*S2_BANDS, "scl"):
        key = profile.s2_assets[band]
        if key not in item["assets"]:
            raise _missing_asset(item, key, band, profile)
        href = item["assets"][key]["href"]
        if band == "scl":
            data, nd = read_on_grid(href, tile, Resampling.nearest,
                                    _asset_nodata(item, key, None), env)
            scl = data.astype(np.uint8)
            if nd is not None:
                scl[data == nd] = 0
            out["scl"] = scl
            continue
        data, nd = read_on_grid(href, tile, Resampling.bilinear, _asset_nodata(item, key, None),
                                env)
        rule = reflectance_scale_offset(item, key)
        refl = data.astype(np.float32) * np.float32(rule.scale) + np.float32(rule.offset)
        if nd is not None:
            refl[data == nd] = np.nan
        out[band] = refl
    return out


def _missing_asset(item: dict, key: str, band: str, profile: CatalogProfile) -> UnsupportedScene:
    """The error for an item without an asset the profile reads.

    A profile/collection mismatch is refused, not skipped, so a wrong profile cannot pass
    as empty weeks.
    """
    return UnsupportedScene(
        f"item {item.get('id')} (collection {item.get('collection')}) has no asset {key!r} "
        f"({band}) that profile {profile.name} reads; its assets: {sorted(item['assets'])}. "
        "Pick the profile of the catalog this collection comes from.")


def check_s1_item(item: dict) -> None:
    """Refuse a Sentinel-1 item that is not terrain-corrected backscatter.

    Raises:
        UnsupportedScene: A GRD/SLC item (digital numbers in radar geometry), naming the
            item and the remedy.
    """
    kind = s1_product_kind(item)
    if kind != "RTC":
        raise UnsupportedScene(
            f"Sentinel-1 item {item.get('id')} (collection {item.get('collection')}) is "
            f"{kind}: amplitude numbers in radar geometry, not calibrated, terrain-flattened "
            "backscatter. Use an RTC collection (profile planetary-computer: "
            "sentinel-1-rtc) or a profile without Sentinel-1 (earth-search, cdse).")


def _load_s1(item: dict, tile: TileSpec, profile: CatalogProfile) -> dict[str, np.ndarray]:
    check_s1_item(item)
    env = gdal_env(profile)
    out: dict[str, np.ndarray] = {}
    for band in S1_BANDS:
        key = profile.s1_assets[band]
        if key not in item["assets"]:
            raise _missing_asset(item, key, band, profile)
        data, nd = read_on_grid(item["assets"][key]["href"], tile, Resampling.bilinear,
                                _asset_nodata(item, key, None), env)
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


def radar_status(profile: CatalogProfile, n_items: int, n_loaded: int) -> str:
    """How a tile-week got its Sentinel-1 data, in words for metadata and map tags.

    ``"loaded"`` when at least one scene was loaded; otherwise it says why there is none:
    the profile offers no analysis-ready Sentinel-1, the catalog had no scene that week,
    or every scene found was skipped.
    """
    if n_loaded > 0:
        return "loaded"
    if profile.s1_collection is None:
        return f"none: profile {profile.name} has no analysis-ready Sentinel-1"
    if n_items == 0:
        return f"none: no {profile.s1_collection} scene this week"
    return f"none: all {n_items} {profile.s1_collection} scenes were skipped"


def radar_weeks(statuses: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """Which weeks behind a map had no Sentinel-1 data.

    Args:
        statuses: week key -> ``raw_scenes`` radar status of that week (``"loaded"`` or
            ``"none: <why>"``; None where the partition predates the status).

    Returns:
        (summary, weeks): ``"all weeks"``, ``"no week"``, ``"missing in n of m weeks"``
        (over the weeks with a status) or ``"unknown"``, and the sorted week keys without
        radar.
    """
    known = {w: st for w, st in statuses.items() if st is not None}
    missing = sorted(w for w, st in known.items() if st != "loaded")
    if not known:
        summary = "unknown"
    elif not missing:
        summary = "all weeks"
    elif len(missing) == len(known):
        summary = "no week"
    else:
        summary = f"missing in {len(missing)} of {len(known)} weeks"
    return summary, missing


def radar_tags(statuses: Mapping[str, str | None]) -> dict[str, str]:
    """:func:`radar_weeks` as COG tags: ``radar`` and ``weeks_without_radar`` (JSON list)."""
    summary, missing = radar_weeks(statuses)
    return {"radar": summary, "weeks_without_radar": json.dumps(missing)}
