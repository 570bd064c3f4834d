"""Export labelled per-pixel weekly series (from weekly cubes) for library use and analysis."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cropassets.core.grid import TileSpec
from cropassets.core.sampling import load_field_labels, rasterize_fields, sample_pixels
from cropassets.core.seasons import Season
from cropassets.core.storage import open_zarr, partition_path


def labelled_series(data_root: Path, tiles: dict[str, TileSpec], season: Season,
                    labels_geojson: Path, per_field: int = 20, per_class: int = 4000,
                    seed: int = 0, n_weeks: int | None = None) -> dict[str, np.ndarray]:
    """Raw weekly composites of sampled labelled pixels of one season.

    Returns:
        ``X`` (N, F, T) float32 (NaN = no clear observation that week), ``y`` (N,) class
        codes, ``field`` (N,) field ids, ``tile`` (N,) tile ids, ``pixel`` (N,) flat pixel
        index, ``features`` (F,) names.
    """
    labels = load_field_labels(labels_geojson)
    weeks = season.week_starts()[:n_weeks]
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("X", "y", "field", "tile", "pixel")}
    features = None
    budget = max(1, per_class // max(1, len(tiles)))
    for t_i, tile in enumerate(tiles.values()):
        fields = rasterize_fields(labels_geojson, tile)
        pix, fids = sample_pixels(fields, labels, per_field, budget, seed + t_i)
        series = []
        for w in weeks:
            cube = open_zarr(partition_path(data_root, "weekly_cube", tile.id, w.isoformat()))
            features = [str(f) for f in cube["feature"].values]
            vals = cube["features"].values.reshape(len(features), -1)[:, pix]
            series.append(vals)
        out["X"].append(np.stack(series, axis=-1).transpose(1, 0, 2).astype(np.float32))
        out["y"].append(np.array([labels.class_of_field[int(f)] for f in fids]))
        out["field"].append(fids)
        out["tile"].append(np.full(len(pix), tile.id))
        out["pixel"].append(pix)
        print(f"[export] {season.id} {tile.id}: {len(pix)} pixels", file=sys.stderr)
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    arrays["features"] = np.array(features)
    return arrays
