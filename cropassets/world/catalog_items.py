"""STAC Items and Collections of the demo catalog, as plain dicts.

``sentinel-2-l2a`` follows Earth Search v1 (asset keys ``blue, green, red, nir, swir16,
scl``; uint16 DN with ``raster:bands`` scale 0.0001 and offset −0.1); ``sentinel-1-rtc``
follows Planetary Computer (assets ``vv, vh``, float32 linear gamma0, nodata −32768).
Geometry and bbox are in EPSG:4326 (RFC 7946 winding); asset hrefs are absolute paths.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.warp import transform as warp_transform

STAC_VERSION = "1.0.0"
S2_COLLECTION = "sentinel-2-l2a"
S1_COLLECTION = "sentinel-1-rtc"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

EXT = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "grid": "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
    "mgrs": "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.1.0/schema.json",
    "item_assets": "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
}

#: Earth Search v1 band metadata: asset key → (band name, title, centre µm, FWHM µm, gsd m).
S2_BANDS: dict[str, tuple[str, str, float, float, int]] = {
    "blue": ("B02", "Blue (band 2) - 10m", 0.49, 0.098, 10),
    "green": ("B03", "Green (band 3) - 10m", 0.56, 0.045, 10),
    "red": ("B04", "Red (band 4) - 10m", 0.665, 0.038, 10),
    "nir": ("B08", "NIR 1 (band 8) - 10m", 0.842, 0.145, 10),
    "swir16": ("B11", "SWIR 1.6μm (band 11) - 20m", 1.61, 0.143, 20),
}
S1_TITLES = {
    "vv": "VV: vertical transmit, vertical receive",
    "vh": "VH: vertical transmit, horizontal receive",
}


def iso(t: dt.datetime) -> str:
    """UTC timestamp in the ``...Z`` form STAC APIs return."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def footprint(ring_xy: np.ndarray, epsg: int, densify: int = 4) -> tuple[dict, list[float]]:
    """GeoJSON Polygon and bbox in EPSG:4326 of a projected ring.

    Args:
        ring_xy: (k, 2) vertices in metres (not closed).
        epsg: Their CRS.
        densify: Points per edge (keeps curved edges in lon/lat faithful).

    Returns:
        (geometry, [west, south, east, north]); counter-clockwise exterior ring.
    """
    pts = []
    k = len(ring_xy)
    for i in range(k):
        a, b = ring_xy[i], ring_xy[(i + 1) % k]
        t = np.linspace(0.0, 1.0, densify, endpoint=False)[:, None]
        pts.append(a + t * (b - a))
    xy = np.vstack(pts)
    lon, lat = warp_transform(f"EPSG:{epsg}", "EPSG:4326", xy[:, 0].tolist(), xy[:, 1].tolist())
    lon, lat = np.round(np.array(lon), 7), np.round(np.array(lat), 7)
    signed = np.dot(lon, np.roll(lat, -1)) - np.dot(lat, np.roll(lon, -1))
    if signed < 0:
        lon, lat = lon[::-1], lat[::-1]
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def rect_ring(bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Ring (4, 2) of a (minx, miny, maxx, maxy) rectangle."""
    x0, y0, x1, y1 = bounds
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _proj(shape: tuple[int, int], transform: Affine) -> dict[str, Any]:
    return {"proj:shape": [int(shape[0]), int(shape[1])],
            "proj:transform": [float(v) for v in tuple(transform)[:6]]}


def s2_assets(paths: dict[str, Path], grids: dict[str, tuple[tuple[int, int], Affine]]
              ) -> dict[str, Any]:
    """Earth Search v1 asset dicts for ``blue, green, red, nir, swir16, scl``."""
    assets: dict[str, Any] = {}
    for key, (name, title, centre, fwhm, gsd) in S2_BANDS.items():
        shape, tr = grids[key]
        assets[key] = {
            "href": str(paths[key]),
            "type": COG_TYPE,
            "title": title,
            "eo:bands": [{"name": name, "common_name": key,
                          "description": title.split(" - ")[0], "center_wavelength": centre,
                          "full_width_half_max": fwhm}],
            "gsd": gsd,
            **_proj(shape, tr),
            "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                              "spatial_resolution": gsd, "scale": 0.0001, "offset": -0.1}],
            "roles": ["data", "reflectance"],
        }
    shape, tr = grids["scl"]
    assets["scl"] = {
        "href": str(paths["scl"]),
        "type": COG_TYPE,
        "title": "Scene classification map (SCL)",
        "gsd": 20,
        **_proj(shape, tr),
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data"],
    }
    return assets


def s1_assets(paths: dict[str, Path], shape: tuple[int, int], tr: Affine) -> dict[str, Any]:
    """Planetary Computer ``sentinel-1-rtc`` asset dicts for ``vv, vh``."""
    return {
        key: {
            "href": str(paths[key]),
            "type": COG_TYPE,
            "title": S1_TITLES[key],
            "description": ("Terrain-corrected gamma naught values of signal transmitted with "
                            "vertical polarization and received with "
                            f"{'vertical' if key == 'vv' else 'horizontal'} polarization with "
                            "radiometric terrain correction applied."),
            "gsd": 20,
            **_proj(shape, tr),
            "raster:bands": [{"nodata": -32768, "data_type": "float32", "spatial_resolution": 20,
                              "scale": 1.0, "offset": 0.0}],
            "roles": ["data"],
        }
        for key in ("vv", "vh")
    }


def item(item_id: str, collection: str, when: dt.datetime, geometry: dict, bbox: list[float],
         properties: dict[str, Any], assets: dict[str, Any], extensions: list[str]
         ) -> dict[str, Any]:
    """A STAC 1.0.0 Item dict."""
    props = {"datetime": iso(when), **properties}
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT[e] for e in extensions],
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": props,
        "links": [],
        "assets": assets,
        "collection": collection,
    }


def _extent(items: list[dict[str, Any]]) -> dict[str, Any]:
    if not items:
        return {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                "temporal": {"interval": [[None, None]]}}
    bb = np.array([it["bbox"] for it in items])
    times = sorted(it["properties"]["datetime"] for it in items)
    return {"spatial": {"bbox": [[float(bb[:, 0].min()), float(bb[:, 1].min()),
                                  float(bb[:, 2].max()), float(bb[:, 3].max())]]},
            "temporal": {"interval": [[times[0], times[-1]]]}}


def _range(items: list[dict[str, Any]], key: str) -> dict[str, float]:
    vals = [float(it["properties"][key]) for it in items] or [0.0]
    return {"minimum": min(vals), "maximum": max(vals)}


def _distinct(items: list[dict[str, Any]], key: str) -> list[Any]:
    return sorted({it["properties"][key] for it in items})


def _item_assets(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The collection's ``item_assets``: the first item's assets without per-item fields."""
    per_item = ("href", "proj:shape", "proj:transform")
    return {k: {kk: vv for kk, vv in a.items() if kk not in per_item}
            for k, a in (items[0]["assets"].items() if items else [])}


def s2_collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``sentinel-2-l2a`` Collection dict with extent and summaries from ``items``."""
    item_assets = _item_assets(items)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT["item_assets"]],
        "id": S2_COLLECTION,
        "title": "Sentinel-2 Level-2A (synthetic demo world)",
        "description": ("Synthetic Sentinel-2 L2A surface reflectance over a central-Thailand "
                        "demo region, following Earth Search v1 conventions "
                        "(processing baseline 05.10: DN = (reflectance + 0.1) / 0.0001)."),
        "keywords": ["sentinel", "copernicus", "msi", "l2a", "synthetic"],
        "license": "proprietary",
        "providers": [{"name": "cropassets demo world", "roles": ["producer", "host"]}],
        "extent": _extent(items),
        "summaries": {
            "platform": _distinct(items, "platform"),
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10, 20],
            "proj:epsg": _distinct(items, "proj:epsg"),
            "eo:cloud_cover": _range(items, "eo:cloud_cover"),
            "s2:processing_baseline": _distinct(items, "s2:processing_baseline"),
            "eo:bands": [a["eo:bands"][0] for k, a in item_assets.items() if "eo:bands" in a],
        },
        "item_assets": item_assets,
        "links": [],
    }


def s1_collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``sentinel-1-rtc`` Collection dict with extent and summaries from ``items``."""
    item_assets = _item_assets(items)
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT["item_assets"]],
        "id": S1_COLLECTION,
        "title": "Sentinel-1 Radiometrically Terrain Corrected (synthetic demo world)",
        "description": ("Synthetic Sentinel-1 IW gamma0 backscatter (linear power, float32) "
                        "over a central-Thailand demo region, following Planetary Computer "
                        "sentinel-1-rtc conventions."),
        "keywords": ["sentinel", "copernicus", "sar", "rtc", "synthetic"],
        "license": "proprietary",
        "providers": [{"name": "cropassets demo world", "roles": ["producer", "host"]}],
        "extent": _extent(items),
        "summaries": {
            "platform": _distinct(items, "platform"),
            "constellation": ["Sentinel-1"],
            "sar:instrument_mode": ["IW"],
            "sar:frequency_band": ["C"],
            "sar:polarizations": ["VV", "VH"],
            "sar:product_type": ["GRD"],
            "sat:orbit_state": _distinct(items, "sat:orbit_state"),
            "sat:relative_orbit": _distinct(items, "sat:relative_orbit"),
            "proj:epsg": _distinct(items, "proj:epsg"),
        },
        "item_assets": item_assets,
        "links": [],
    }
