"""The published products as a static STAC catalog: one item per product, tile and week.

Layout under the data root (docs/CONTRACTS.md "Products as STAC")::

    <root>/stac/catalog.json                          root catalog, a child link per collection
    <root>/stac/<collection>/collection.json          one collection per product
    <root>/stac/<collection>/<item id>.json           item "<product>-<tile>-<week>"

Collections are ``cropassets-crop`` (band 1 class code, band 2 confidence %),
``cropassets-sos`` (day of year) and ``cropassets-coverage`` (observation counts). Items
carry the projection (``proj:code``, ``proj:shape``, ``proj:transform``, ``proj:bbox``),
raster (``raster:bands``: nodata, data type, unit) and, for the crop product,
classification (``classification:classes`` with names and ``color_hint``) extensions; the
week's dates (``datetime`` = the week's Monday, ``start_datetime``/``end_datetime`` its
first and last second) and ``cropassets:*`` properties (season, week of season, model,
preliminary flag, knee week, radar). Hrefs are relative to the file that holds them, so
the folder is a self-contained catalog on disk; the tiler serves it as a STAC API with
hrefs rewritten to its download URLs (``tiler/stac.py``).

Every document is validated against the STAC 1.1 core JSON schemas that pystac ships
(nothing is downloaded) and read back through pystac's extension classes, then written
atomically. Extension JSON schemas are not shipped with pystac; their fields are checked
by :func:`check_extensions`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pystac
import rasterio
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from rasterio.warp import transform_bounds, transform_geom

from cropassets.core.legend import LegendEntry
from cropassets.core.objstore import Location, ObjPath, gdal_path, glob_sorted, location
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.storage import folder_lock, write_bytes_atomic
from cropassets.core.week_model_record import MODEL_TITLES

STAC_DIR = "stac"
COLLECTION_PREFIX = "cropassets-"
PROJECTION = ProjectionExtension.get_schema_uri()
RASTER = RasterExtension.get_schema_uri()
CLASSIFICATION = ClassificationExtension.get_schema_uri()
COG_TYPE = str(pystac.MediaType.COG)
QML_TYPE = "text/xml"
ITEM_ID = re.compile(r"^(?P<product>[a-z]+)-(?P<tile>[A-Za-z0-9_]+)-(?P<week>\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class Band:
    """One band of a product COG as ``raster:bands`` describes it."""

    name: str
    description: str
    data_type: str      # numpy dtype name: uint8, uint16
    nodata: int
    unit: str | None


@dataclass(frozen=True)
class ProductInfo:
    """What a product's collection says about it."""

    title: str
    description: str
    bands: tuple[Band, ...]
    styles: tuple[str, ...]   # QGIS styles (layer names) shipped with each item


PRODUCT_INFO: dict[str, ProductInfo] = {
    "crop": ProductInfo(
        "Crop type", "Crop type of every pixel at the week (band 1, class code; the classes "
        "are in classification:classes) and the model's confidence in it (band 2, %).",
        (Band("class", "crop class code", "uint8", 255, None),
         Band("confidence", "probability of the class", "uint8", 255, "%")),
        ("crop", "confidence")),
    "sos": ProductInfo(
        "Start of season", "Start of Season as day of year (TIMESAT rule on NDVI, VH where "
        "clouds hide it); 0 = not started.",
        (Band("sos_doy", "start of season", "uint16", 0, "day of year"),),
        ("sos",)),
    "coverage": ProductInfo(
        "Observation coverage", "Why a week is certain or not: clear Sentinel-2 observations "
        "per pixel since the season start (band 1) and in the week (band 2), Sentinel-1 "
        "observations in the week (band 3; 0 = no radar).",
        (Band("clear_optical_season", "clear optical observations, season to date", "uint16",
              65535, "observations"),
         Band("clear_optical_week", "clear optical observations in the week", "uint16",
              65535, "observations"),
         Band("radar_week", "Sentinel-1 observations in the week", "uint16", 65535,
              "observations")),
        ("coverage",)),
}
"""Products published as STAC collections, in publishing order."""


def collection_id(product: str) -> str:
    """Id of the collection of ``product`` (``cropassets-crop``...)."""
    return COLLECTION_PREFIX + product


def item_id(product: str, tile: str, week: str) -> str:
    """Id of the item of ``product`` for ``tile`` in ``week``."""
    return f"{product}-{tile}-{week}"


def stac_root(root: str | Path | ObjPath) -> Location:
    """The catalog folder under the data root."""
    return location(root) / STAC_DIR


def week_interval(week: str) -> tuple[datetime, datetime]:
    """First and last second (UTC) of the week that starts on ``week`` (a Monday)."""
    start = datetime.combine(date.fromisoformat(week), datetime.min.time(), UTC)
    return start, start + timedelta(days=7) - timedelta(seconds=1)


# ------------------------------------------------------------------------------- validation

@cache
def _core_validators() -> dict[str, Draft7Validator]:
    from pystac.validation.local_validator import VERSION, get_local_schema_cache
    from referencing import Registry, Resource

    schemas = get_local_schema_cache()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in schemas.items())
    base = f"https://schemas.stacspec.org/v{VERSION}"
    return {kind: Draft7Validator(schemas[f"{base}/{spec}/json-schema/{kind.lower()}.json"],
                                  registry=registry)
            for kind, spec in (("Item", "item-spec"), ("Collection", "collection-spec"),
                               ("Catalog", "catalog-spec"))}


def validate(doc: Mapping[str, Any]) -> None:
    """Validate a STAC item, collection or catalog dict; ValueError naming the first error.

    The core schema (STAC 1.1, from pystac's local copies) and, for items, the extension
    fields (:func:`check_extensions`).
    """
    kind = "Item" if doc.get("type") == "Feature" else str(doc.get("type"))
    validators = _core_validators()
    if kind not in validators:
        raise ValueError(f"STAC document {doc.get('id')!r} has type {doc.get('type')!r}; "
                         "expected Feature, Collection or Catalog")
    error = best_match(validators[kind].iter_errors(json.loads(json.dumps(doc))))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise ValueError(f"STAC {kind.lower()} {doc.get('id')!r} is invalid at {where}: "
                         f"{error.message[:300]}")
    if kind == "Item":
        check_extensions(pystac.Item.from_dict(dict(doc), preserve_dict=True))


def check_extensions(item: pystac.Item) -> None:
    """Read the item's extension fields back through pystac and check their values.

    Raises:
        ValueError: A field the extension requires is missing or has the wrong form,
            naming the item and the field.
    """
    def fail(what: str) -> None:
        raise ValueError(f"STAC item {item.id!r}: {what}")

    proj = ProjectionExtension.ext(item)
    if not proj.code or not re.fullmatch(r"EPSG:\d+", proj.code):
        fail(f"proj:code {proj.code!r} is not EPSG:<number>")
    if not proj.shape or len(proj.shape) != 2 or min(proj.shape) <= 0:
        fail(f"proj:shape {proj.shape!r} is not [rows, columns]")
    if not proj.transform or len(proj.transform) not in (6, 9):
        fail(f"proj:transform {proj.transform!r} has not 6 or 9 numbers")
    if not proj.bbox or len(proj.bbox) != 4:
        fail(f"proj:bbox {proj.bbox!r} is not [minx, miny, maxx, maxy]")
    for key, asset in item.assets.items():
        if not asset.roles or "data" not in asset.roles:
            continue
        bands = RasterExtension.ext(asset).bands or []
        if not bands:
            fail(f"asset {key} has no raster:bands")
        for i, band in enumerate(bands, 1):
            if band.data_type is None or band.nodata is None:
                fail(f"asset {key} band {i} lacks data_type or nodata")
        has_classes = "classification:classes" in asset.extra_fields or any(
            "classification:classes" in b.properties for b in bands)
        if has_classes and CLASSIFICATION not in item.stac_extensions:
            fail(f"asset {key} has classification:classes but the item does not declare "
                 f"{CLASSIFICATION}")
        classes = ClassificationExtension.ext(asset).classes if has_classes else []
        for c in classes or []:
            if not isinstance(c.value, int) or not c.name:
                fail(f"asset {key}: class {c.to_dict()} needs an integer value and a name")
            if c.color_hint is not None and not re.fullmatch(r"[0-9A-Fa-f]{6}", c.color_hint):
                fail(f"asset {key}: color_hint {c.color_hint!r} of class {c.name} is not "
                     "RRGGBB hex")


# ------------------------------------------------------------------------------- building

def _relative(target: Path | ObjPath, start: Path | ObjPath) -> str:
    """``target`` relative to the folder ``start`` (POSIX), for hrefs."""
    import os
    import posixpath

    if isinstance(target, ObjPath) and isinstance(start, ObjPath):
        return posixpath.relpath(target.key, start.key or ".")
    return Path(os.path.relpath(str(target), str(start))).as_posix()


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types (tuples to lists)."""
    return json.loads(json.dumps(value))


def classification_classes(classes: Sequence[LegendEntry]) -> list[dict[str, Any]]:
    """``classification:classes`` of the manifest's legend (value, name, color_hint)."""
    return [{"value": int(c.code), "name": str(c.name), "description": str(c.name),
             "color_hint": str(c.color).lstrip("#").upper()} for c in classes]


def _raster_bands(product: str, manifest: WeekManifest) -> list[dict[str, Any]]:
    bands = []
    for i, band in enumerate(PRODUCT_INFO[product].bands):
        row: dict[str, Any] = {"name": band.name, "description": band.description,
                               "data_type": band.data_type, "nodata": band.nodata}
        if band.unit:
            row["unit"] = band.unit
        if product == "crop" and i == 0:
            row["classification:classes"] = classification_classes(manifest.classes)
        bands.append(row)
    return bands


def build_item(root: str | Path | ObjPath, manifest: WeekManifest, tile: str, product: str,
               styles: Mapping[str, Path | ObjPath] | None = None) -> dict[str, Any]:
    """The STAC item (dict, hrefs relative to its file) of ``product`` in ``tile`` and week.

    Args:
        root: Data root of the manifest's relative paths.
        manifest: The week manifest (written by
            :func:`cropassets.core.publish.week_layers.write_week_layer`).
        tile: Tile id with a ``product`` file in the manifest.
        product: A key of :data:`PRODUCT_INFO`.
        styles: QGIS style name -> ``.qml`` file, shipped as ``style-<name>`` assets.
    """
    root = location(root).resolve()
    week = manifest.week
    rel = manifest.tiles[tile].file(product)
    if not rel:
        raise ValueError(f"week {week} has no {product} COG for tile {tile}")
    cog = root / rel
    with rasterio.open(gdal_path(cog)) as ds:
        crs = ds.crs.to_string()
        epsg = ds.crs.to_epsg()
        shape = [ds.height, ds.width]
        transform = list(ds.transform)[:6]
        native = list(ds.bounds)
        bbox = list(transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21))
        geometry = _plain(transform_geom(ds.crs, "EPSG:4326", {
            "type": "Polygon", "coordinates": [[
                (native[0], native[1]), (native[2], native[1]), (native[2], native[3]),
                (native[0], native[3]), (native[0], native[1])]]}))
    if epsg is None:
        raise ValueError(f"{product} COG of tile {tile} in week {week} has CRS {crs}, "
                         "which has no EPSG code")
    start, end = week_interval(week)
    folder = stac_root(root) / collection_id(product)
    model = manifest.model
    props: dict[str, Any] = {
        "datetime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_datetime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_datetime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": f"{PRODUCT_INFO[product].title}, tile {tile}, week {week}",
        "proj:code": f"EPSG:{epsg}", "proj:shape": shape, "proj:transform": transform,
        "proj:bbox": native,
        "cropassets:product": product, "cropassets:tile": tile, "cropassets:week": week,
        "cropassets:season": manifest.season,
        "cropassets:season_start": manifest.season_start,
        "cropassets:week_of_season": manifest.week_of_season,
        "cropassets:last_observation_date": manifest.last_observation_date,
        "cropassets:preliminary": bool(manifest.preliminary),
        "cropassets:knee_week": manifest.knee_week,
        "cropassets:radar": manifest.radar.summary if manifest.radar else "unknown",
        "cropassets:model": ({"kind": model.served_kind,
                              "title": model.title or MODEL_TITLES.get(model.served_kind),
                              "week_of_season": model.week,
                              "val_accuracy": (model.val_accuracy if model.kind is not None
                                               else model.accuracy),
                              "checkpoint_sha256": model.checkpoint_sha256}
                             if model is not None and product == "crop" else None),
        "created": manifest.published,
    }
    if product == "sos" and manifest.sos_range:
        props["cropassets:sos_range"] = manifest.sos_range
    if product == "coverage":
        with rasterio.open(gdal_path(cog)) as ds:
            tags = ds.tags()
        props["cropassets:radar_present"] = tags.get("radar_present") == "true"
        props["cropassets:clear_optical_season_max"] = int(
            tags.get("clear_optical_season_max", 0))
    data_asset: dict[str, Any] = {
        "href": _relative(cog, folder), "type": COG_TYPE, "roles": ["data"],
        "title": f"{PRODUCT_INFO[product].title} (COG)",
        "raster:bands": _raster_bands(product, manifest),
    }
    if product == "crop":
        data_asset["classification:classes"] = classification_classes(manifest.classes)
    assets: dict[str, Any] = {"data": data_asset}
    for name, path in (styles or {}).items():
        assets[f"style-{name}"] = {"href": _relative(location(path), folder), "type": QML_TYPE,
                                   "roles": ["style", "metadata"],
                                   "title": f"QGIS style ({name}, .qml)"}
    extensions = [PROJECTION, RASTER] + ([CLASSIFICATION] if product == "crop" else [])
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(),
        "stac_extensions": extensions, "id": item_id(product, tile, week),
        "collection": collection_id(product), "geometry": geometry, "bbox": bbox,
        "properties": props, "assets": assets,
        "links": [{"rel": "collection", "href": "./collection.json",
                   "type": "application/json"},
                  {"rel": "parent", "href": "./collection.json", "type": "application/json"},
                  {"rel": "root", "href": "../catalog.json", "type": "application/json"}],
    }


def build_collection(product: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The collection of ``product`` over its ``items`` (extent = their union)."""
    info = PRODUCT_INFO[product]
    boxes = [i["bbox"] for i in items] or [[-180.0, -90.0, 180.0, 90.0]]
    starts = sorted(i["properties"]["start_datetime"] for i in items)
    ends = sorted(i["properties"]["end_datetime"] for i in items)
    summaries: dict[str, Any] = {
        "cropassets:season": sorted({i["properties"]["cropassets:season"] for i in items}),
        "cropassets:tile": sorted({i["properties"]["cropassets:tile"] for i in items})}
    if product == "crop" and items:
        summaries["classification:classes"] = items[-1]["assets"]["data"][
            "classification:classes"]
    return {
        "type": "Collection", "stac_version": pystac.get_stac_version(),
        "stac_extensions": [PROJECTION, RASTER] + (
            [CLASSIFICATION] if product == "crop" else []),
        "id": collection_id(product), "title": f"cropassets: {info.title.lower()}",
        "description": info.description, "license": "other",
        "extent": {"spatial": {"bbox": [[min(b[0] for b in boxes), min(b[1] for b in boxes),
                                         max(b[2] for b in boxes), max(b[3] for b in boxes)]]},
                   "temporal": {"interval": [[starts[0] if starts else None,
                                              ends[-1] if ends else None]]}},
        "summaries": summaries,
        "item_assets": {"data": {"type": COG_TYPE, "roles": ["data"],
                                 "title": f"{info.title} (COG)"}},
        "links": ([{"rel": "root", "href": "../catalog.json", "type": "application/json"},
                   {"rel": "parent", "href": "../catalog.json", "type": "application/json"}]
                  + [{"rel": "item", "href": f"./{i['id']}.json", "type": "application/geo+json"}
                     for i in sorted(items, key=lambda i: i["id"])]),
    }


def build_catalog(collections: Sequence[str]) -> dict[str, Any]:
    """The root catalog linking the collections ``collections`` (ids)."""
    return {"type": "Catalog", "stac_version": pystac.get_stac_version(),
            "id": "cropassets", "title": "cropassets products",
            "description": "Weekly crop-type, start-of-season and observation-coverage maps.",
            "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
            + [{"rel": "child", "href": f"./{c}/collection.json", "type": "application/json"}
               for c in sorted(collections)]}


# ------------------------------------------------------------------------------- writing

def read_items(root: str | Path | ObjPath, product: str) -> list[dict[str, Any]]:
    """Every item of ``product``'s collection on disk, by id."""
    folder = stac_root(root) / collection_id(product)
    return [json.loads(p.read_text()) for p in glob_sorted(folder, "*.json")
            if ITEM_ID.match(p.stem)]


def write_week_items(root: str | Path | ObjPath, manifest: WeekManifest) -> dict[str, list[str]]:
    """Write the STAC items of one published week, then the collections and the catalog.

    Each document is validated (:func:`validate`) and written atomically, under a lock.
    Items of this week whose product or tile is no longer published are removed, so the
    catalog lists what the manifest lists.

    Args:
        root: Data root.
        manifest: The week's manifest, as written by ``write_week_layer``.

    Returns:
        Collection id -> ids of the items written for the week.
    """
    root = location(root).resolve()
    week = manifest.week
    # QGIS styles: crop and confidence go with the crop items, each other with its own
    styles = {name: root / rel for name, rel in manifest.styles.items()}
    out: dict[str, list[str]] = {}
    with folder_lock(stac_root(root)):
        for product, info in PRODUCT_INFO.items():
            folder = stac_root(root) / collection_id(product)
            written = set()
            for tile, row in sorted(manifest.tiles.items()):
                if not row.file(product):
                    continue
                item = build_item(root, manifest, tile, product,
                                  {s: styles[s] for s in info.styles if s in styles})
                validate(item)
                write_bytes_atomic(folder / f"{item['id']}.json",
                                   json.dumps(item, indent=1).encode())
                written.add(item["id"])
            for stale in folder.glob(f"{product}-*-{week}.json"):
                if stale.stem not in written:
                    stale.unlink(missing_ok=True)
            out[collection_id(product)] = sorted(written)
        present = []
        for product in PRODUCT_INFO:
            items = read_items(root, product)
            if not items:
                continue
            collection = build_collection(product, items)
            validate(collection)
            write_bytes_atomic(stac_root(root) / collection_id(product) / "collection.json",
                               json.dumps(collection, indent=1).encode())
            present.append(collection_id(product))
        catalog = build_catalog(present)
        validate(catalog)
        write_bytes_atomic(stac_root(root) / "catalog.json", json.dumps(catalog, indent=1).encode())
    return out
