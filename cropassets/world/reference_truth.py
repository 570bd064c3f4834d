"""Reference labels and truth: field polygons with class and SOS, field-id rasters.

Like real reference data, the labels are not all right: :data:`LABEL_ERROR_SHARE` of the
crop fields name another crop (:func:`label_errors`; ``world.json`` counts them per season).

Truth SOS of a crop field is TIMESAT-like on the field's noise-free daily NDVI within the
season: with ``peak`` the season maximum and ``base`` the minimum before it, SOS is the
first day after that minimum on which NDVI reaches ``base + 0.2 (peak − base)``. Fields
whose NDVI amplitude is below 0.1 in the season, and non-crop parcels, have no SOS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.world.catalog_items import footprint
from cropassets.world.config import CLASS_NAMES, CLASSES, CROP_CODES
from cropassets.world.fields import clip_halfplane, polygon_area
from cropassets.world.reflectance import mix, ndvi
from cropassets.world.scene_cogs import write_cog
from cropassets.world.world_model import SeasonModel, WorldModel, stream

SOS_FRACTION = 0.2
MIN_AMPLITUDE = 0.1
LABEL_ERROR_SHARE = 0.09
"""Share of crop fields whose reference label names another crop (declaration errors)."""


def label_errors(model: WorldModel, sm: SeasonModel) -> np.ndarray:
    """The class code each parcel is *labelled* with this season, (n + 1,).

    Equal to the true code except for :data:`LABEL_ERROR_SHARE` of the crop fields, which
    carry another crop class (deterministic for the world's seed and the season).
    """
    rng = stream(model.config.seed, 6, sm.index)
    code = sm.code.copy()
    crops = np.array(CROP_CODES)
    wrong = np.isin(code, crops) & (rng.random(code.size) < LABEL_ERROR_SHARE)
    shift = rng.integers(1, len(crops), code.size)  # another crop, uniformly
    pos = np.searchsorted(crops, code[wrong])
    code[wrong] = crops[(pos + shift[wrong]) % len(crops)]
    return code


def truth_sos(model: WorldModel, sm: SeasonModel) -> np.ndarray:
    """Truth SOS of every parcel as days since the season start (−1 = none), (n + 1,)."""
    days = np.arange(sm.season.days, dtype=np.float64)
    fr = sm.fractions(model.traits, days)
    nd = ndvi(mix(fr, sm.veg, model.traits.soil_gain))  # (n + 1, T)
    t = days[None, :]
    ipk = np.argmax(nd, axis=1)
    peak = nd[np.arange(len(nd)), ipk]
    left = np.where(t <= ipk[:, None], nd, np.inf)
    imin = np.argmin(left, axis=1)
    base = nd[np.arange(len(nd)), imin]
    thr = base + SOS_FRACTION * (peak - base)
    ok = (nd >= thr[:, None]) & (t >= imin[:, None]) & (t <= ipk[:, None])
    sos = np.argmax(ok, axis=1)
    valid = np.isin(sm.code, CROP_CODES) & (peak - base >= MIN_AMPLITUDE) & ok.any(axis=1)
    valid[0] = False
    return np.where(valid, sos, -1)


def _region_polygons(model: WorldModel) -> dict[int, np.ndarray]:
    """Parcel polygons clipped to the region, in map coordinates, by field id."""
    lay = model.layout
    m = float(lay.margin)
    w, h = lay.region.width, lay.region.height
    planes = [((m, 0.0), (1.0, 0.0)), ((m + w, 0.0), (-1.0, 0.0)),
              ((0.0, m), (0.0, 1.0)), ((0.0, m + h), (0.0, -1.0))]
    present = np.zeros(model.parcels.n + 1, dtype=bool)
    rows, cols = lay.region_window()
    present[np.unique(model.parcels.fid[rows, cols])] = True
    sim = lay.sim
    out: dict[int, np.ndarray] = {}
    for i, poly in enumerate(model.parcels.polygons, start=1):
        if not present[i]:
            continue
        p = poly
        for q, n in planes:
            p = clip_halfplane(p, np.array(q), np.array(n))
            if len(p) < 3:
                break
        if len(p) < 3 or polygon_area(p) <= 0:
            continue
        out[i] = np.column_stack([sim.x0 + p[:, 0] * sim.res, sim.y0 - p[:, 1] * sim.res])
    return out


def season_features(model: WorldModel, sm: SeasonModel,
                    polygons: dict[int, np.ndarray]) -> dict[str, Any]:
    """The season's label FeatureCollection (EPSG:4326, RFC 7946)."""
    sos = truth_sos(model, sm)
    labelled = label_errors(model, sm)
    start = sm.start
    area = model.parcels.area_px
    feats = []
    for fid, ring in polygons.items():
        code = int(labelled[fid])
        geom, _ = footprint(ring, model.layout.sim.epsg, densify=1)
        s = int(sos[fid])
        sos_date = start + dt.timedelta(days=s) if s >= 0 else None
        planting = sm.pheno.planting[fid]
        sowing = (start + dt.timedelta(days=int(round(planting)))
                  if np.isfinite(planting) else None)
        feats.append({
            "type": "Feature",
            "id": fid,
            "geometry": geom,
            "properties": {
                "field_id": fid,
                "class_code": code,
                "class_name": CLASS_NAMES[code],
                "season": sm.season.id,
                "sos": sos_date.isoformat() if sos_date else None,
                "sos_doy": sos_date.timetuple().tm_yday if sos_date else None,
                "sowing": sowing.isoformat() if sowing else None,
                "area_ha": round(float(area[fid]) / 100.0, 2),
            },
        })
    return {"type": "FeatureCollection", "features": feats}


def write_json(path: Path, doc: Any) -> Path:
    """Write JSON atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
    return path


def write_labels(model: WorldModel, root: Path) -> dict[str, Any]:
    """Write ``labels/<season>.geojson`` and ``labels/fields/<tile>.tif``; return counts."""
    polygons = _region_polygons(model)
    counts: dict[str, Any] = {"label_fields": len(polygons), "class_fields": {},
                              "label_errors": {}}
    for sm in model.seasons:
        fc = season_features(model, sm, polygons)
        counts["label_errors"][sm.season.id] = sum(
            f["properties"]["class_code"] != int(sm.code[f["id"]]) for f in fc["features"])
        write_json(root / "labels" / f"{sm.season.id}.geojson", fc)
        counts["class_fields"][sm.season.id] = {
            c.name: sum(f["properties"]["class_code"] == c.code for f in fc["features"])
            for c in CLASSES}
    for tile in model.layout.tiles:
        rows, cols = model.layout.tile_window(tile)
        write_cog(root / "labels" / "fields" / f"{tile.id}.tif",
                  np.ascontiguousarray(model.parcels.fid[rows, cols]), crs=tile.grid.crs,
                  transform=tile.grid.transform, nodata=None, resampling="nearest")
    return counts
