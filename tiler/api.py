"""JSON API of the web map and the COG downloads: weeks, legend, point query, files.

Routes (docs/CONTRACTS.md "Tiler HTTP API")::

    GET /api/weeks                             published weeks grouped by season, with the
                                               versioned TileJSON and tile URLs of each
    GET /api/legend[?week=]                    class palette and the ramps of the layers
    GET /api/point?lon=&lat=[&week=]           class, confidence and SOS at a point, per week
    GET /download/{week}/{tile}/{product}.tif  the published COG itself
    GET /download/{week}/{tile}/{style}.qml    its QGIS style (crop, confidence, sos)
    GET /download/{week}/{product}.vrt         the whole region as one VRT over the COGs
    GET /download/{week}/{style}.qml           the style named to pair with the VRT
    GET /healthz                               liveness, number of published weeks and the
                                               in-process tile cache's counters
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

import numpy as np
import rasterio
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response
from rio_tiler.errors import PointOutsideBounds
from rio_tiler.io import Reader
from starlette.requests import Request

from cropassets.core.objstore import Location, ObjPath, gdal_path
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.publish.qgis import region_vrt
from cropassets.core.publish.week_layers import (
    BAND_NAMES,
    LAYERS,
    PRODUCTS,
    STYLE_BANDS,
    doy,
    union_bounds,
)
from tiler import render
from tiler.catalog import Catalog
from tiler.errors import scrub
from tiler.factory import GDAL_ENV, tile_template, tilejson_url

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
QML_MEDIA_TYPE = "text/xml"
VRT_MEDIA_TYPE = "application/xml"


def api_router(catalog: Catalog, cache_stats: Callable[[], dict[str, int]] | None = None
               ) -> APIRouter:
    """Routes of the JSON API and downloads over ``catalog`` (``cache_stats``: /healthz)."""
    router = APIRouter()

    @router.get("/healthz", tags=["api"])
    def healthz() -> dict[str, Any]:
        """Liveness: the server answers and reads its data root; the tile cache's counters."""
        return {"status": "ok", "weeks": len(catalog.manifests()),
                "tile_cache": cache_stats() if cache_stats else None}

    @router.get("/api/weeks", tags=["api"])
    def weeks(request: Request) -> dict[str, Any]:
        """Published weeks grouped by season, with their layers, TileJSON and download URLs."""
        base = str(request.base_url)
        manifests = catalog.manifests()
        seasons: dict[tuple[str, str], dict[str, Any]] = {}
        for m in manifests:
            try:
                version = catalog.version(m.week)
            except HTTPException:  # removed since it was listed
                continue
            key = (m.season_start, m.season)
            season = seasons.setdefault(key, {"id": m.season, "start": m.season_start,
                                              "role": m.role, "weeks": []})
            season["weeks"].append(week_summary(m, base, version))
            season["knee_week"] = m.knee_week
        current = [m for m in manifests if m.role == "current"] or manifests
        available = [m.week for m in manifests if m.has_layer("crop")]
        return {"seasons": [seasons[k] for k in sorted(seasons)],
                "bounds": union_bounds([m.bounds for m in manifests if m.bounds]),
                "knee_week": current[-1].knee_week if current else None,
                "latest_week": manifests[-1].week if manifests else None,
                "latest_available_week": available[-1] if available else None,
                "layers": list(LAYERS)}

    @router.get("/api/legend", tags=["api"])
    def legend(week: Annotated[str | None, Query(description="Week key")] = None
               ) -> dict[str, Any]:
        """Class palette of the crop layer and the ramps of confidence and SOS."""
        if week is not None:
            manifest: WeekManifest | None = catalog.week(week)
        else:
            manifests = catalog.manifests()
            with_crop = [m for m in manifests if m.has_layer("crop")]
            candidates = with_crop or manifests
            manifest = candidates[-1] if candidates else None
        radar = manifest.radar if manifest is not None else None
        return {"week": manifest.week if manifest else None,
                "crop": [e.to_dict() for e in render.classes(manifest)],
                "confidence": render.ramp_legend("confidence", manifest),
                "sos": render.ramp_legend("sos", manifest),
                "coverage": render.ramp_legend("coverage", manifest) | {
                    "radar": radar.to_dict() if radar is not None else None},
                "nodata": "transparent"}

    @router.get("/api/point", tags=["api"])
    def point(lon: Annotated[float, Query(description="Longitude (degrees)")],
              lat: Annotated[float, Query(description="Latitude (degrees)")],
              week: Annotated[str | None, Query(description="Only this week")] = None
              ) -> dict[str, Any]:
        """Class, confidence and SOS at a point for each published week (or one week)."""
        if not -180 <= lon <= 180:
            raise HTTPException(400, f"lon {lon} is outside -180..180")
        if not -90 <= lat <= 90:
            raise HTTPException(400, f"lat {lat} is outside -90..90")
        manifests = [catalog.week(week)] if week is not None else catalog.manifests()
        rows = [r for r in (point_row(catalog, m, lon, lat) for m in manifests) if r]
        if not rows:
            bounds = union_bounds([m.bounds for m in manifests if m.bounds])
            raise HTTPException(404, f"lon {lon}, lat {lat} is outside every published tile"
                                     f"{' of week ' + week if week else ''}; data bounds "
                                     f"(w, s, e, n): {bounds}")
        return {"lon": lon, "lat": lat, "weeks": rows}

    @router.get("/download/{week}/{tile}/{product}.tif", tags=["download"])
    def download(week: str, tile: str, product: str) -> Response:
        """The published COG of ``product`` (crop or sos) for one tile and week."""
        if product not in PRODUCTS:
            raise HTTPException(404, f"product {product[:40]!r} does not exist; products: "
                                     f"{', '.join(PRODUCTS)}")
        path = catalog.cog(week, tile, product)
        return _file(path, COG_MEDIA_TYPE, f"{product}_{tile}_{week}.tif")

    @router.get("/download/{week}/{tile}/{style}.qml", tags=["download"])
    def tile_style(week: str, tile: str, style: str) -> Response:
        """QGIS style of a layer, named to pair with the tile's COG download.

        QGIS applies ``<name>.qml`` to ``<name>.tif`` in the same folder.
        """
        path = catalog.style(week, style, tile)
        product = STYLE_BANDS[style][0]
        name = product if style == product else style
        return _file(path, QML_MEDIA_TYPE, f"{name}_{tile}_{week}.qml")

    @router.get("/download/{week}/{style}.qml", tags=["download"])
    def region_style(week: str, style: str) -> Response:
        """QGIS style of a layer, named to pair with the region VRT download."""
        path = catalog.style(week, style)
        product = STYLE_BANDS[style][0]
        name = product if style == product else style
        return _file(path, QML_MEDIA_TYPE, f"{name}_{week}.qml")

    @router.get("/download/{week}/{product}.vrt", tags=["download"])
    def region(week: str, product: str, request: Request) -> Response:
        """The whole region of ``product`` in ``week`` as one GDAL VRT.

        Its sources are this server's COG downloads (``/vsicurl/`` URLs): GDAL and QGIS open
        it as one raster and read only the blocks they need.
        """
        _, cogs = catalog.region(week, product)
        base = str(request.base_url)
        hrefs = {t: f"/vsicurl/{base}download/{week}/{t}/{product}.tif" for t in cogs}
        try:
            xml = region_vrt(cogs, band_names=BAND_NAMES.get(product, ()),
                             legend=render.classes(catalog.week(week)) if product == "crop"
                             else None, hrefs=hrefs)
        except ValueError as err:  # tiles of another CRS or grid: no single raster
            raise HTTPException(404, f"week {week} has no {product} region raster: "
                                     f"{scrub(str(err), catalog.root)}") from None
        return Response(xml, media_type=VRT_MEDIA_TYPE, headers={
            "Content-Disposition": f'attachment; filename="{product}_{week}.vrt"'})

    @router.get("/download/{rest:path}", include_in_schema=False)
    def no_such_download(rest: str) -> None:
        """404 naming the expected form, for any other path under /download."""
        raise HTTPException(404, "expected /download/{week}/{tile}/{product}.tif, "
                                 "/download/{week}/{tile}/{style}.qml, "
                                 "/download/{week}/{product}.vrt or /download/{week}/{style}.qml "
                                 "with a week and tile from /api/weeks, product in "
                                 f"{', '.join(PRODUCTS)} and style in {', '.join(STYLE_BANDS)}")

    return router


def week_summary(m: WeekManifest, base: str, version: str) -> dict[str, Any]:
    """One week of /api/weeks: the manifest's summary plus the URLs of its layers.

    ``base`` is the server's base URL (ending with ``/``), ``version`` the week's version:
    TileJSON and tile URLs carry it, so they can be cached for good.
    """
    week = m.week
    served = [layer for layer in LAYERS if m.has_layer(layer)]
    model = m.model
    return {
        "week": week, "season": m.season, "week_of_season": m.week_of_season,
        "last_observation_date": m.last_observation_date,
        "available": m.has_layer("crop"), "layers": m.layers.to_dict(),
        "preliminary": m.preliminary, "knee_week": m.knee_week,
        "model": model.to_dict() if model is not None else None,
        "model_accuracy": model.accuracy if model is not None else None,
        "model_kind": model.served_kind if model is not None else None,
        "current_season_accuracy": model.current_season_accuracy if model is not None else None,
        "reason": m.reason, "radar": m.radar.to_dict() if m.radar is not None else None,
        "bounds": m.bounds, "minzoom": m.minzoom, "maxzoom": m.maxzoom,
        "sos_range": m.sos_range, "coverage_range": m.coverage_range,
        "published": m.published,
        "version": version,
        "tilejson": {layer: tilejson_url(base, layer, week, version) for layer in served},
        "tiles": {layer: tile_template(base, layer, week, version) for layer in served},
        "downloads": {tile: {p: f"{base}download/{week}/{tile}/{p}.tif"
                             for p in PRODUCTS if row.file(p)}
                      for tile, row in sorted(m.tiles.items())},
        "regions": {p: f"{base}download/{week}/{p}.vrt" for p in m.regions},
        "styles": {s: f"{base}download/{week}/{s}.qml" for s in m.styles},
        "stac": {"api": f"{base}stac", "search": f"{base}stac/search?datetime={week}"},
    }


def point_row(catalog: Catalog, m: WeekManifest, lon: float, lat: float
              ) -> dict[str, Any] | None:
    """Values of week ``m`` at (lon, lat), or None when no tile of the week covers it."""
    for tile, row in sorted(m.tiles.items()):
        w, s, e, n = row.bounds
        if not (w <= lon <= e and s <= lat <= n):
            continue
        crop = _sample(catalog, m, tile, "crop", lon, lat, (1, 2)) if row.crop else None
        sos = _sample(catalog, m, tile, "sos", lon, lat, (1,)) if row.sos else None
        cov = (_sample(catalog, m, tile, "coverage", lon, lat, (1, 2, 3))
               if row.coverage else None)
        if crop is None and sos is None:  # inside the bounding box, outside the raster
            continue
        code, conf = crop or (None, None)
        sos_doy = sos[0] if sos else None
        names = {c.code: c.name for c in render.classes(m)}
        return {"week": m.week, "season": m.season,
                "week_of_season": m.week_of_season, "preliminary": m.preliminary,
                "available": m.has_layer("crop"), "tile": tile,
                "class_code": code, "class_name": names.get(code) if code is not None else None,
                "confidence": conf, "sos_doy": sos_doy,
                "sos_date": sos_date(m.season_start, sos_doy),
                "clear_optical_season": cov[0] if cov else None,
                "clear_optical_week": cov[1] if cov else None,
                "radar_week": cov[2] if cov else None}
    return None


def _sample(catalog: Catalog, m: WeekManifest, tile: str, product: str, lon: float,
            lat: float, indexes: tuple[int, ...]) -> list[int | None] | None:
    """Band values (None where nodata) of a tile's COG at a point; None outside the raster."""
    path = catalog.cog(m.week, tile, product)
    with rasterio.Env(**GDAL_ENV), Reader(gdal_path(path)) as src:
        try:
            values = src.point(lon, lat, indexes=indexes).array
        except PointOutsideBounds:
            return None
    masked = np.ma.getmaskarray(values)
    return [None if m else int(v) for v, m in zip(values.data, masked, strict=True)]


def _file(path: Location, media_type: str, filename: str) -> Response:
    """A published file as a download.

    Streamed from disk, or the object's bytes (one GET; product COGs and styles are small)
    when the data root is an object store.
    """
    if isinstance(path, ObjPath):
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, f"{filename} is missing") from None
        return Response(body, media_type=media_type, headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})
    return FileResponse(path, media_type=media_type, filename=filename)


def sos_date(season_start: str, sos_doy: int | None) -> str | None:
    """ISO date of an SOS day of year: in the season's start year, or the next if earlier."""
    if sos_doy is None:
        return None
    start = date.fromisoformat(season_start)
    year = start.year if sos_doy >= doy(start) else start.year + 1
    day = date(year, 1, 1) + timedelta(days=sos_doy - 1)
    return day.isoformat() if day.year == year else None
