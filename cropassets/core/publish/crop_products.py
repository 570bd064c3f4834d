"""Crop-type map products of a tile: the COG, its tags, class areas and map accuracy.

The map itself is computed by :func:`cropassets.ml.tile_predict.predict_tile` (weekly cubes
-> the served model of week k -> class, confidence); this module turns its two (y, x) uint8
arrays into the published product: :func:`crop_cog_tags` (naming the model kind),
:func:`write_crop_cog`, :func:`class_shares` and :func:`map_accuracy`. No model code here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from cropassets.core.legend import CLASS_NODATA, LegendEntry, legend_colormap
from cropassets.core.objstore import Location
from cropassets.core.publish.cog import write_cog
from cropassets.core.seasons import SeasonWeek
from cropassets.core.week_model_record import MODEL_TITLES, WeekModelRecord


def crop_cog_tags(week: SeasonWeek, record: WeekModelRecord,
                  legend: Sequence[LegendEntry]) -> dict[str, Any]:
    """Tags that make a crop COG self-describing (docs/CONTRACTS.md), model kind included.

    ``model_kind`` (cnn2d | random_forest | combination) names the model that made the map;
    ``model_accuracy`` is its validation accuracy; ``model_sha256`` the checkpoint's (which
    records the choice), ``forest_sha256`` the forest's where the forest was used.
    """
    kind = record.model_kind
    tags: dict[str, Any] = {
        "product": "crop_type", "season": week.season.id,
        "season_start": week.season.start.isoformat(), "week": week.key,
        "week_of_season": week.week_of_season,
        "last_observation_date": (week.end - timedelta(days=1)).isoformat(),
        "model_week": record.week_of_season, "knee_week": record.knee_week,
        "preliminary": str(record.preliminary).lower(),
        "model_kind": kind, "model_title": MODEL_TITLES.get(kind, kind),
        "model_accuracy": round(record.accuracy, 4),
        "model_sha256": record.checkpoint_sha256,
        "classes": json.dumps([e.to_dict() for e in legend]),
        "band_1": "class code (see classes), 255 = no observation",
        "band_2": ("confidence, percent (softmax probability of the class)" if kind == "cnn2d"
                   else "confidence, percent (probability of the class: share of tree votes)"
                   if kind == "random_forest" else
                   "confidence, percent (mean of CNN2D softmax and forest vote share)"),
    }
    for key, value in (("cnn2d_accuracy", record.cnn2d_accuracy),
                       ("random_forest_accuracy", record.random_forest_accuracy)):
        if value is not None:
            tags[f"model_{key}"] = round(float(value), 4)
    if record.forest_sha256:
        tags["forest_sha256"] = record.forest_sha256
    return tags


def write_crop_cog(path: str | Path, class_code: np.ndarray, confidence: np.ndarray, crs: str,
                   transform: Affine, legend: Sequence[LegendEntry],
                   tags: Mapping[str, object]) -> Location:
    """Write the crop map COG: band 1 class (palette = legend), band 2 confidence 0-100.

    Both bands uint8 with nodata 255; overviews by mode (a class is never averaged into
    another one); ``tags`` describe the file without the server (season, weeks, knee...).
    """
    if class_code.shape != confidence.shape:
        raise ValueError(f"class {class_code.shape} and confidence {confidence.shape} differ")
    unknown = set(np.unique(class_code).tolist()) - {e.code for e in legend} - {CLASS_NODATA}
    if unknown:
        raise ValueError(f"class codes {sorted(unknown)} are not in the legend")
    data = np.stack([class_code, confidence]).astype(np.uint8)
    return write_cog(path, data, crs, transform, CLASS_NODATA, overview_resampling="mode",
                     colormap=legend_colormap(legend), tags=tags,
                     band_descriptions=["class", "confidence"])


def class_shares(class_code: np.ndarray, legend: Sequence[LegendEntry],
                 pixel_area_m2: float) -> dict[str, dict[str, float]]:
    """Area (ha) and share (% of mapped pixels) of each legend class in a class map."""
    mapped = class_code != CLASS_NODATA
    n = max(int(mapped.sum()), 1)
    counts = np.bincount(class_code[mapped].ravel(), minlength=256)
    return {e.name: {"hectares": round(float(counts[e.code]) * pixel_area_m2 / 1e4, 2),
                     "percent": round(100.0 * float(counts[e.code]) / n, 2)} for e in legend}


def map_accuracy(class_code: np.ndarray, fields: np.ndarray,
                 class_of_field: Mapping[int, int]) -> dict[str, float | int]:
    """Agreement of a class map with labelled fields (current season's held-back labels).

    Args:
        class_code: (y, x) uint8 map, 255 = nodata.
        fields: (y, x) field ids on the same grid (0 = no field).
        class_of_field: Field id -> true class code.

    Returns:
        ``overall_accuracy`` over labelled pixels with a prediction, ``labelled_pixels``,
        ``nodata_pixels`` (labelled but unmapped); accuracy NaN when nothing is labelled.
    """
    if class_code.shape != fields.shape:
        raise ValueError(f"map {class_code.shape} and field raster {fields.shape} differ")
    top = int(fields.max()) if fields.size else 0
    lut = np.zeros(top + 1, dtype=np.int32)
    for fid, code in class_of_field.items():
        if 0 < int(fid) <= top:
            lut[int(fid)] = int(code)
    truth = lut[fields]
    labelled = truth > 0
    mapped = labelled & (class_code != CLASS_NODATA)
    n = int(mapped.sum())
    acc = float((class_code[mapped] == truth[mapped]).mean()) if n else float("nan")
    return {"overall_accuracy": acc, "labelled_pixels": n,
            "nodata_pixels": int((labelled & ~mapped).sum())}
