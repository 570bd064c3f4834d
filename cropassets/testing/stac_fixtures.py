"""Seeded builder of a small STAC catalog on disk, for tests.

It writes the layout of ``docs/CONTRACTS.md``::

    STAC_DIR/collections.json               {"collections": [...]}
    STAC_DIR/items/<collection-id>.ndjson   one STAC Item per line

with ``sentinel-2-l2a`` items following Earth Search v1 conventions (asset keys blue, green,
red, nir, swir16, scl; ``eo:cloud_cover`` varying) and ``sentinel-1-rtc`` items following
Planetary Computer conventions (assets vv, vh; no cloud cover). Asset hrefs are absolute
paths under ``STAC_DIR/../scenes``; the files themselves are not written.

Footprints are axis-aligned lon/lat rectangles, so an item's geometry equals its ``bbox``
and tests can compute which items a bbox search must return without any geometry library.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

S2_COLLECTION_ID = "sentinel-2-l2a"
S1_COLLECTION_ID = "sentinel-1-rtc"

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

#: MGRS tile -> (EPSG code, lon/lat footprint). 48PTA lies in the neighbouring UTM zone.
S2_FOOTPRINTS: dict[str, tuple[int, tuple[float, float, float, float]]] = {
    "47PQR": (32647, (99.3, 14.3, 100.3, 15.3)),
    "47PRR": (32647, (100.2, 14.3, 101.2, 15.3)),
    "48PTA": (32648, (101.1, 14.3, 102.1, 15.3)),
}

#: Sentinel-1 relative orbit -> (orbit state, lon/lat footprint).
S1_FOOTPRINTS: dict[int, tuple[str, tuple[float, float, float, float]]] = {
    62: ("descending", (98.9, 13.8, 100.7, 15.8)),
    164: ("ascending", (99.9, 13.7, 101.9, 15.7)),
}

S2_BANDS: dict[str, tuple[str, float]] = {
    "blue": ("B02", 10.0),
    "green": ("B03", 10.0),
    "red": ("B04", 10.0),
    "nir": ("B08", 10.0),
    "swir16": ("B11", 20.0),
}


def _polygon(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """GeoJSON polygon (counter-clockwise) of a lon/lat rectangle."""
    w, s, e, n = bbox
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _iso(dt: datetime) -> str:
    """RFC 3339 UTC timestamp with millisecond precision and a ``Z`` suffix."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _extent(start: date, days: int) -> dict[str, Any]:
    """Collection extent covering every footprint and the fixture period."""
    end = datetime.combine(start, datetime.min.time(), UTC) + timedelta(days=days)
    return {
        "spatial": {"bbox": [[98.0, 13.0, 103.0, 17.0]]},
        "temporal": {"interval": [[_iso(end - timedelta(days=days)), _iso(end)]]},
    }


def s2_collection(start: date = date(2024, 5, 6), days: int = 35) -> dict[str, Any]:
    """The ``sentinel-2-l2a`` collection (Earth Search v1 style)."""
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
        ],
        "id": S2_COLLECTION_ID,
        "title": "Sentinel-2 Level-2A",
        "description": "Sentinel-2 L2A surface reflectance (demo, Earth Search v1 conventions).",
        "license": "proprietary",
        "extent": _extent(start, days),
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "eo:cloud_cover": {"minimum": 0, "maximum": 100},
        },
        "links": [],
        "assets": {},
    }


def s1_collection(start: date = date(2024, 5, 6), days: int = 35) -> dict[str, Any]:
    """The ``sentinel-1-rtc`` collection (Planetary Computer style)."""
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": S1_COLLECTION_ID,
        "title": "Sentinel-1 Radiometrically Terrain Corrected (RTC)",
        "description": "Sentinel-1 RTC gamma0 backscatter (demo, Planetary Computer conventions).",
        "license": "CC-BY-4.0",
        "extent": _extent(start, days),
        "summaries": {
            "platform": ["SENTINEL-1A"],
            "constellation": ["Sentinel-1"],
            "sar:instrument_mode": ["IW"],
            "sar:polarizations": [["VV", "VH"]],
        },
        "links": [],
        "assets": {},
    }


def _s2_asset(href: str, band: str, gsd: float) -> dict[str, Any]:
    """One Earth Search v1 reflectance asset (uint16 DN, BOA offset not applied)."""
    return {
        "href": href,
        "type": COG_MEDIA_TYPE,
        "title": band,
        "gsd": gsd,
        "roles": ["data", "reflectance"],
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}],
    }


def make_s2_item(
    tile: str, when: datetime, cloud_cover: float, scenes_dir: Path, seq: int = 0
) -> dict[str, Any]:
    """A ``sentinel-2-l2a`` item over MGRS ``tile`` acquired at ``when``."""
    epsg, bbox = S2_FOOTPRINTS[tile]
    platform = "sentinel-2a" if when.toordinal() % 2 else "sentinel-2b"
    item_id = f"S2{platform[-1].upper()}_{tile}_{when:%Y%m%d}_{seq}_L2A"
    base = scenes_dir / S2_COLLECTION_ID / item_id
    assets = {
        key: _s2_asset(str(base / f"{key}.tif"), band, gsd) for key, (band, gsd) in S2_BANDS.items()
    }
    assets["scl"] = {
        "href": str(base / "scl.tif"),
        "type": COG_MEDIA_TYPE,
        "title": "Scene classification map (SCL)",
        "gsd": 20.0,
        "roles": ["data"],
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
            "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": S2_COLLECTION_ID,
        "bbox": list(bbox),
        "geometry": _polygon(bbox),
        "properties": {
            "datetime": _iso(when),
            "platform": platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": epsg,
            "mgrs:utm_zone": int(tile[:2]),
            "mgrs:latitude_band": tile[2],
            "mgrs:grid_square": tile[3:],
            "grid:code": f"MGRS-{tile}",
            "s2:processing_baseline": "05.10",
            "earthsearch:boa_offset_applied": False,
        },
        "links": [],
        "assets": assets,
    }


def make_s1_item(orbit: int, when: datetime, scenes_dir: Path) -> dict[str, Any]:
    """A ``sentinel-1-rtc`` item on relative ``orbit`` acquired at ``when``."""
    state, bbox = S1_FOOTPRINTS[orbit]
    stop = when + timedelta(seconds=25)
    item_id = f"S1A_IW_GRDH_1SDV_{when:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_rtc"
    base = scenes_dir / S1_COLLECTION_ID / item_id
    assets = {
        pol: {
            "href": str(base / f"{pol}.tif"),
            "type": COG_MEDIA_TYPE,
            "title": f"{pol.upper()}: gamma0 terrain-corrected backscatter",
            "roles": ["data"],
            "raster:bands": [
                {"nodata": -32768, "data_type": "float32", "spatial_resolution": 10.0}
            ],
        }
        for pol in ("vv", "vh")
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": S1_COLLECTION_ID,
        "bbox": list(bbox),
        "geometry": _polygon(bbox),
        "properties": {
            "datetime": _iso(when),
            "start_datetime": _iso(when),
            "end_datetime": _iso(stop),
            "platform": "SENTINEL-1A",
            "constellation": "Sentinel-1",
            "sar:instrument_mode": "IW",
            "sar:polarizations": ["VV", "VH"],
            "sar:frequency_band": "C",
            "sat:orbit_state": state,
            "sat:relative_orbit": orbit,
            "proj:epsg": 32647,
        },
        "links": [],
        "assets": assets,
    }


def make_items(
    collection_id: str,
    n_items: int,
    start: date,
    days: int,
    scenes_dir: Path,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``n_items`` seeded items of one collection spread over ``days`` days from ``start``.

    Acquisition times are whole seconds between 03:00 and 04:00 UTC (S2) or 11:00 and
    12:00 UTC (S1); item ids are unique within the returned list.
    """
    rng = random.Random(f"{collection_id}:{seed}")
    origin = datetime.combine(start, datetime.min.time(), UTC)
    items: dict[str, dict[str, Any]] = {}
    while len(items) < n_items:
        day = origin + timedelta(days=rng.randrange(days))
        if collection_id == S2_COLLECTION_ID:
            when = day + timedelta(hours=3, seconds=rng.randrange(3600))
            tile = rng.choice(sorted(S2_FOOTPRINTS))
            cloud = round(rng.uniform(0.0, 100.0), 2)
            item = make_s2_item(tile, when, cloud, scenes_dir)
        elif collection_id == S1_COLLECTION_ID:
            when = day + timedelta(hours=11, seconds=rng.randrange(3600))
            item = make_s1_item(rng.choice(sorted(S1_FOOTPRINTS)), when, scenes_dir)
        else:
            raise ValueError(f"unknown fixture collection: {collection_id}")
        items.setdefault(item["id"], item)
    return sorted(items.values(), key=lambda it: (it["properties"]["datetime"], it["id"]))


def append_items(stac_dir: Path, collection_id: str, items: Iterable[dict[str, Any]]) -> None:
    """Append items to ``STAC_DIR/items/<collection_id>.ndjson`` (created if missing)."""
    path = Path(stac_dir) / "items" / f"{collection_id}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, separators=(",", ":")) + "\n")


def write_fixture_catalog(
    stac_dir: Path,
    n_items: int = 24,
    seed: int = 0,
    start: date = date(2024, 5, 6),
    days: int = 35,
) -> dict[str, list[dict[str, Any]]]:
    """Write a seeded two-collection catalog to ``stac_dir``.

    Args:
        stac_dir: Directory to write ``collections.json`` and ``items/`` into.
        n_items: Number of items per collection.
        seed: Random seed; the same arguments always give the same catalog.
        start: First day of the period the acquisitions fall in.
        days: Length of that period in days.

    Returns:
        Mapping of collection id to the items written, sorted by (datetime, id).
    """
    stac_dir = Path(stac_dir)
    scenes_dir = stac_dir.absolute().parent / "scenes"
    collections = [s2_collection(start, days), s1_collection(start, days)]
    stac_dir.mkdir(parents=True, exist_ok=True)
    (stac_dir / "collections.json").write_text(
        json.dumps({"collections": collections}, indent=1), encoding="utf-8"
    )
    written: dict[str, list[dict[str, Any]]] = {}
    for collection in collections:
        cid = collection["id"]
        items = make_items(cid, n_items, start, days, scenes_dir, seed)
        (stac_dir / "items").mkdir(exist_ok=True)
        (stac_dir / "items" / f"{cid}.ndjson").unlink(missing_ok=True)
        append_items(stac_dir, cid, items)
        written[cid] = items
    return written
