"""Week layers: the manifest and MosaicJSONs through which the tiler serves one week.

Layout (docs/CONTRACTS.md "Maps and week layers")::

    <root>/week_layers/<week>.json                  manifest (WeekManifest), written last
    <root>/week_layers/<week>/<product>.mosaic.json MosaicJSON of the week's COGs of all tiles
    <root>/week_layers/<week>/<product>.vrt         the whole region as one GDAL VRT
    <root>/week_layers/<week>/<layer>.qml           QGIS style of each layer

Each file is written to a temporary name and renamed (on object storage: one PUT each),
mosaics before the manifest, so a reader that finds a manifest finds everything it names,
complete. On object storage the mosaics name the COGs as ``/vsis3/bucket/key``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cogeo_mosaic.mosaic import MosaicJSON

from cropassets.core.legend import LAYER_RAMPS, LegendEntry, ramp_colors
from cropassets.core.objstore import Location, ObjPath, gdal_path, inside, location, relative_posix
from cropassets.core.publish.manifest_record import (
    TILE_PRODUCTS,
    ManifestLayers,
    ManifestModel,
    ManifestRadar,
    ManifestTile,
    WeekManifest,
)
from cropassets.core.publish.qgis import paletted_qml, pseudocolor_qml, region_vrt
from cropassets.core.seasons import SeasonWeek
from cropassets.core.storage import write_bytes_atomic
from cropassets.core.week_model_record import MODEL_TITLES, WeekModelRecord

PRODUCTS = TILE_PRODUCTS
"""Files per tile and week: the crop COG (class + confidence bands), the SOS COG and the
coverage COG (observation counts, ``cropassets.core.cube.coverage``)."""

LAYERS = ("crop", "confidence", "sos", "coverage")
"""Served layers: ``crop`` and ``confidence`` are bands 1 and 2 of the crop COG;
``coverage`` is band 1 of the coverage COG (clear optical observations since season start)."""

STYLE_BANDS = {"crop": ("crop", 1, "class"), "confidence": ("crop", 2, "%"),
               "sos": ("sos", 1, "day of year"), "coverage": ("coverage", 1, "observations")}
"""QGIS style of each layer: (product COG, band, unit)."""

BAND_NAMES = {"crop": ("class", "confidence"), "sos": ("sos_doy",),
              "coverage": ("clear_optical_season", "clear_optical_week", "radar_week")}
"""Band descriptions of each product's COG."""

MIN_ZOOM_SPAN = 6
"""Mosaics are served from (native zoom - 6): a 10 m tile at zoom 8 is a few pixels."""

WEEK_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def manifest_path(root: str | Path | ObjPath, week: str) -> Location:
    """Path of the manifest of ``week`` (an ISO date key, validated)."""
    if not WEEK_KEY.match(week or ""):
        raise ValueError(f"week {week!r} is not a week key (YYYY-MM-DD)")
    return location(root) / "week_layers" / f"{week}.json"


def mosaic_path(root: str | Path | ObjPath, week: str, product: str) -> Location:
    """Path of the MosaicJSON of ``product`` in ``week``."""
    if product not in PRODUCTS:
        raise ValueError(f"product {product!r} is not one of {PRODUCTS}")
    return manifest_path(root, week).with_suffix("") / f"{product}.mosaic.json"


def style_path(root: str | Path | ObjPath, week: str, style: str) -> Location:
    """Path of the QGIS style (``.qml``) of layer ``style`` in ``week``."""
    if style not in STYLE_BANDS:
        raise ValueError(f"style {style!r} is not one of {tuple(STYLE_BANDS)}")
    return manifest_path(root, week).with_suffix("") / f"{style}.qml"


def region_path(root: str | Path | ObjPath, week: str, product: str) -> Location:
    """Path of the whole-region VRT of ``product`` in ``week``."""
    if product not in PRODUCTS:
        raise ValueError(f"product {product!r} is not one of {PRODUCTS}")
    return manifest_path(root, week).with_suffix("") / f"{product}.vrt"


def style_qml(style: str, legend: Sequence[LegendEntry], ramp_range: Sequence[float]) -> str:
    """QML of layer ``style``: the class palette, or its ramp over ``ramp_range``."""
    _, band, unit = STYLE_BANDS[style]
    if style == "crop":
        return paletted_qml(legend, band)
    return pseudocolor_qml(band, float(ramp_range[0]), float(ramp_range[1]),
                           ramp_colors(LAYER_RAMPS[style]), unit)


def doy(day: date) -> int:
    """Day of year (1-based)."""
    return day.timetuple().tm_yday


def model_summary(record: WeekModelRecord) -> ManifestModel:
    """The manifest's ``model`` entry from a ``week_model`` record.

    Keeps what readers already use (``week``, ``accuracy``, ``current_season_accuracy``,
    ``checkpoint_sha256``) and names the model that made the map: ``kind`` (cnn2d |
    random_forest | combination; records written before the choice existed read as the
    CNN2D's), ``title`` (:data:`MODEL_TITLES`), ``val_accuracy`` (= ``accuracy``, the served
    model's validation overall accuracy) and both models' validation scores; the forest's
    SHA-256 where the forest is used.
    """
    kind = record.model_kind
    return ManifestModel(
        week=record.week_of_season, kind=kind, title=MODEL_TITLES.get(kind, kind),
        accuracy=record.accuracy, val_accuracy=record.accuracy,
        current_season_accuracy=record.current_season_accuracy,
        cnn2d_val_accuracy=record.cnn2d_accuracy,
        random_forest_val_accuracy=record.random_forest_accuracy,
        checkpoint_sha256=record.checkpoint_sha256,
        forest_sha256=record.forest_sha256 or None)


def write_week_layer(root: str | Path | ObjPath, week: SeasonWeek,
                     tiles: Mapping[str, Mapping[str, Path | ObjPath | None]],
                     tile_bounds: Mapping[str, Sequence[float]], legend: Sequence[LegendEntry],
                     knee_week: int | None, model: ManifestModel | None,
                     reason: str = "", radar: ManifestRadar | None = None,
                     incomplete_weeks: Sequence[str] = (),
                     missing: Mapping[str, str] | None = None) -> WeekManifest:
    """Write the MosaicJSONs and the manifest of one week; returns the manifest.

    Args:
        root: Data root; every path in the manifest is relative to it.
        week: The week.
        tiles: Tile id -> {"crop": COG path or None, "sos": ..., "coverage": ...}; a product
            is published for the week when at least one tile has it.
        tile_bounds: Tile id -> (west, south, east, north) in degrees.
        legend: Classes of the crop layer.
        knee_week: Knee of accuracy vs season length (weeks), None if not known yet.
        model: Model summary of this week (:func:`model_summary`), None when no model
            exists yet.
        reason: Why the crop layer is missing, if it is.
        radar: Which weeks behind the maps had no Sentinel-1 data (:func:`radar_summary`);
            None: unknown.
        incomplete_weeks: Weeks behind the maps whose ingestion skipped a scene on some tile
            (the new-week sensor ingests them again).
        missing: Product -> why some tiles do not publish it (e.g. ``{"coverage":
            "coverage_map not materialized: T01"}``); written as ``layers_missing`` when
            not empty.
    """
    root = location(root).resolve()
    man_path = manifest_path(root, week.key)
    tile_rows: dict[str, dict[str, Any]] = {}
    mosaics: dict[str, str] = {}
    regions: dict[str, str] = {}
    no_region: dict[str, str] = {}
    styles: dict[str, str] = {}
    zooms: list[tuple[int, int]] = []
    for product in PRODUCTS:
        given = {t: p.get(product) for t, p in sorted(tiles.items())}
        files = {t: location(f).resolve() for t, f in given.items() if f is not None}
        for t, f in files.items():
            if not inside(f, root):
                raise ValueError(f"{product} COG of tile {t} ({f}) is outside the data root")
            if not f.exists():
                raise FileNotFoundError(f"{product} COG of tile {t} ({f}) has not been written")
            row = tile_rows.setdefault(t, {"bounds": [round(v, 7) for v in tile_bounds[t]]})
            row[product] = relative_posix(f, root)
        if not files:
            continue
        urls = [gdal_path(f) for f in files.values()]
        maxzoom = MosaicJSON.from_urls(urls[:1], quiet=True).maxzoom
        # zoomed-out views (whole region) are read from the COG overviews
        mosaic = MosaicJSON.from_urls(urls, minzoom=max(0, maxzoom - MIN_ZOOM_SPAN),
                                      maxzoom=maxzoom, quiet=True)
        zooms.append((mosaic.minzoom, mosaic.maxzoom))
        out = mosaic_path(root, week.key, product)
        write_bytes_atomic(out, mosaic.model_dump_json(exclude_none=True).encode())
        mosaics[product] = relative_posix(out, root)
        vrt = region_path(root, week.key, product)
        try:
            xml = region_vrt(files, vrt, BAND_NAMES.get(product, ()),
                             legend if product == "crop" else None)
        except ValueError as err:  # tiles on several CRSs or grids: no single raster
            no_region[product] = str(err)
        else:
            write_bytes_atomic(vrt, xml.encode())
            regions[product] = relative_posix(vrt, root)
    sos_range = [doy(week.season.start), doy(week.season.start) + 7 * week.season.weeks]
    coverage_range = [0, max(1, _coverage_max([
        root / r["coverage"] for r in tile_rows.values() if r.get("coverage")]))]
    ranges = {"confidence": (0, 100), "sos": sos_range, "coverage": coverage_range}
    for style, (product, _, _) in STYLE_BANDS.items():
        if product in mosaics:
            path = style_path(root, week.key, style)
            write_bytes_atomic(path, style_qml(style, legend, ranges.get(style, ())).encode())
            styles[style] = relative_posix(path, root)
    bounds = union_bounds([r["bounds"] for r in tile_rows.values()])
    season = week.season
    manifest = WeekManifest(
        week=week.key,
        season=season.id,
        season_start=season.start.isoformat(),
        role=season.role,
        week_of_season=week.week_of_season,
        last_observation_date=(week.end - timedelta(days=1)).isoformat(),
        knee_week=knee_week,
        preliminary=knee_week is None or week.week_of_season < knee_week,
        model=model,
        layers=ManifestLayers(crop="crop" in mosaics, confidence="crop" in mosaics,
                              sos="sos" in mosaics, coverage="coverage" in mosaics),
        reason=reason if "crop" not in mosaics else "",
        layers_missing=dict(missing or {}),
        radar=radar,
        incomplete_weeks=sorted(set(incomplete_weeks)),
        tiles={t: ManifestTile(**row) for t, row in tile_rows.items()},
        mosaics=mosaics,
        regions=regions,
        regions_missing=no_region,
        styles=styles,
        bounds=bounds,
        minzoom=min((z[0] for z in zooms), default=None),
        maxzoom=max((z[1] for z in zooms), default=None),
        classes=list(legend),
        sos_range=sos_range,
        coverage_range=coverage_range,
        published=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    write_bytes_atomic(man_path, manifest.to_json().encode())
    return manifest


def _coverage_max(files: Sequence[Location]) -> int:
    """Most clear optical observations since season start at any pixel of ``files``."""
    import rasterio

    best = 0
    for f in files:
        with rasterio.open(gdal_path(f)) as ds:
            tag = ds.tags().get("clear_optical_season_max")
            best = max(best, int(tag) if tag is not None else int(ds.read(1, masked=True).max()))
    return best


def radar_summary(statuses: Mapping[str, Mapping[str, str | None]]) -> ManifestRadar:
    """Radar behind a week's maps over all tiles.

    A week counts as without radar when any tile had none that week.

    Args:
        statuses: tile id -> {week key -> ``raw_scenes`` radar status, or None where the
            partition predates the status}.

    Returns:
        The manifest's ``radar``: the summary (``all weeks`` | ``no week`` | ``missing in n
        of m weeks`` | ``unknown``) and the week keys without radar.
    """
    from cropassets.core.stac.scenes import radar_weeks

    per_week: dict[str, list[str]] = {}
    for by_week in statuses.values():
        for wk, st in by_week.items():
            per_week.setdefault(wk, [])
            if st is not None:
                per_week[wk].append(st)
    merged = {wk: (None if not sts else "loaded" if all(st == "loaded" for st in sts)
                   else next(st for st in sts if st != "loaded"))
              for wk, sts in per_week.items()}
    summary, missing = radar_weeks(merged)
    return ManifestRadar(summary=summary, weeks_without_radar=missing)


def union_bounds(boxes: Sequence[Sequence[float]]) -> list[float] | None:
    """Smallest (west, south, east, north) box holding every box; None for no box."""
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes)]
