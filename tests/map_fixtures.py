"""Published week layers built from the test world's truth, for tiler and web-map tests.

Crop COGs hold each pixel's *true* class (from the field raster and the labels), so a
test can check that a served tile shows the class of a known field at the right place;
the confidence band is 40 + 10 x week of season; SOS is a constant day of year per class.
Weeks 1-2 of the current season have no model: only their SOS layer is published. The
last week's manifest names the model that made it (``kind`` random_forest); the earlier ones
are rewritten as manifests from before the served-model choice have their model (no
``kind``: the CNN2D). Each week's STAC items are written after its manifest, from the
manifest as read back, as ``week_layers`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cropassets.core.cube.coverage import coverage_counts, write_coverage_cog
from cropassets.core.legend import CLASS_NODATA, class_legend
from cropassets.core.publish.cog import write_cog
from cropassets.core.publish.crop_products import write_crop_cog
from cropassets.core.publish.manifest_record import ManifestModel, ManifestRadar, WeekManifest
from cropassets.core.publish.product_stac import write_week_items
from cropassets.core.publish.week_layers import write_week_layer
from cropassets.core.reference.sampling import interior_mask, load_field_labels, read_field_raster
from cropassets.core.seasons import all_weeks, load_seasons
from cropassets.core.storage import partition_path
from cropassets.core.tiles import load_tiles

KNEE_WEEK = 4
"""Knee week written to the fixture manifests (weeks 3 preliminary, 4+ final)."""
FIRST_MODEL_WEEK = 3


@dataclass(frozen=True)
class PublishedMaps:
    """What :func:`publish_truth_maps` wrote."""

    root: Path
    weeks: list[str]          # every current-season week key, in order
    mapped_weeks: list[str]   # weeks with a crop layer
    field_point: tuple[float, float]  # lon, lat inside an interior pixel of a field
    field_class: int          # true class code of that field
    field_tile: str
    field_pixel: tuple[int, int]  # row, col in its tile


def legacy_model(root: Path, week: str) -> WeekManifest:
    """Rewrite the manifest of ``week`` with its model entry as manifests written before the
    served-model choice have it (week, accuracy, current-season accuracy, checkpoint hash);
    returns the manifest as read back."""
    path = root / "week_layers" / f"{week}.json"
    doc = json.loads(path.read_text())
    doc["model"] = {k: doc["model"][k] for k in ("week", "accuracy", "current_season_accuracy",
                                                 "checkpoint_sha256")}
    path.write_text(json.dumps(doc, indent=1))
    return WeekManifest.read(path)


def publish_truth_maps(world: Path, root: Path) -> PublishedMaps:
    """Write crop/SOS COGs and week manifests of the current season under ``root``."""
    tiles = load_tiles(world / "tiles.json")
    season = next(s for s in load_seasons(world / "seasons.json") if s.role == "current")
    labels = load_field_labels(world / "labels" / f"{season.id}.geojson")
    legend = class_legend(sorted(labels.class_names), [labels.class_names[c]
                                                       for c in sorted(labels.class_names)])
    truth = {}
    for tid in tiles:
        fields = read_field_raster(world / "labels" / "fields" / f"{tid}.tif")
        lut = np.full(int(fields.max()) + 1, CLASS_NODATA, dtype=np.uint8)
        for fid, code in labels.class_of_field.items():
            if fid < len(lut):
                lut[fid] = code
        truth[tid] = (fields, lut[fields])
    weeks = all_weeks([season])
    mapped = []
    for week in weeks:
        paths = {}
        for tid, tile in tiles.items():
            fields, cls = truth[tid]
            sos = np.where(cls <= 4, 140 + 5 * cls.astype(np.uint16), 0).astype(np.uint16)
            sos_path = partition_path(root, "sos_map", tid, week.key, ".tif")
            write_cog(sos_path, sos, tile.crs, tile.transform, 0, band_descriptions=["sos_doy"])
            crop_path = None
            if week.week_of_season >= FIRST_MODEL_WEEK:
                conf = np.where(cls == CLASS_NODATA, CLASS_NODATA,
                                min(100, 40 + 10 * week.week_of_season)).astype(np.uint8)
                crop_path = partition_path(root, "crop_map", tid, week.key, ".tif")
                write_crop_cog(crop_path, cls, conf, tile.crs, tile.transform, legend,
                               {"product": "crop_type", "week": week.key,
                                "preliminary": str(week.week_of_season < KNEE_WEEK).lower()})
            # coverage: clear optical observations week + 1 + code % 3 since the start, 1 + code % 2
            # this week; radar (2 observations) in every week but the first
            code = np.where(cls == CLASS_NODATA, 0, cls).astype(np.uint16)
            n_obs = [np.stack([1 + code % 2, np.full_like(code, 0 if w.week_of_season == 1 else 2)])
                     .astype(np.uint8) for w in weeks[:week.week_of_season]]
            counts = coverage_counts(n_obs)
            counts[0] = week.week_of_season + 1 + code % 3
            cov_path = partition_path(root, "coverage_map", tid, week.key, ".tif")
            write_coverage_cog(cov_path, counts, tile.crs, tile.transform)
            paths[tid] = {"crop": crop_path, "sos": sos_path, "coverage": cov_path}
        model = (ManifestModel(week=week.week_of_season, kind="random_forest",
                               title="random forest",
                               accuracy=0.9, val_accuracy=0.9, current_season_accuracy=0.85,
                               cnn2d_val_accuracy=0.88, random_forest_val_accuracy=0.9,
                               checkpoint_sha256="ab" * 32, forest_sha256="cd" * 32)
                 if week.week_of_season >= FIRST_MODEL_WEEK else None)
        # the last week's maps had no radar in their first week (a profile-less week)
        radar = (ManifestRadar(summary=f"missing in 1 of {week.week_of_season} weeks",
                               weeks_without_radar=[weeks[0].key])
                 if week.week_of_season == len(weeks)
                 else ManifestRadar(summary="all weeks", weeks_without_radar=[]))
        manifest = write_week_layer(
            root, week, paths, {t: s.bbox_wgs84() for t, s in tiles.items()}, legend,
            KNEE_WEEK, model, reason="" if model else "no model before week 3 of the season",
            radar=radar)
        if model and week.week_of_season < len(weeks):  # the last week names its model (the forest
            manifest = legacy_model(root, week.key)  # won); the others: legacy
        write_week_items(root, manifest)
        if model:
            mapped.append(week.key)
    # a field pixel well inside a field of the first tile
    tid = sorted(tiles)[0]
    fields, cls = truth[tid]
    inner = interior_mask(fields, radius=4) & (cls != CLASS_NODATA)
    rows, cols = np.nonzero(inner)
    i = len(rows) // 2
    r, c = int(rows[i]), int(cols[i])
    tile = tiles[tid]
    x, y = tile.transform * (c + 0.5, r + 0.5)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return PublishedMaps(root, [w.key for w in weeks], mapped, (lon, lat), int(cls[r, c]),
                         tid, (r, c))
