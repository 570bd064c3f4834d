"""Labelled training/evaluation samples: smoothed season series at sampled field pixels."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.core.objstore import ObjPath, location
from cropassets.core.reference.sampling import load_field_labels, rasterize_fields, sample_pixels
from cropassets.core.storage import open_zarr, open_zarr_array, write_bytes_atomic
from cropassets.core.tiles import TileSpec


def labelled_series(cube_paths: dict[str, list[Path]], tiles: dict[str, TileSpec],
                    labels_geojson: Path, per_field: int = 20, per_class: int = 4000,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Raw weekly series of sampled labelled pixels, from the weekly cubes of several tiles.

    The series are the composites as observed (NaN = no clear observation that week), not
    smoothed: the ML library truncates, gap-fills and smooths them itself, with the same
    function at training and at inference (DESIGN rule 2).

    Args:
        cube_paths: Tile id -> ``weekly_cube`` partitions of weeks 1..k, in week order.
        tiles: Tile grid.
        labels_geojson: Field polygons of the season.
        per_field: Max pixels per field.
        per_class: Max pixels per class over all tiles (split evenly between tiles).
        seed: Sampling seed.

    Returns:
        ``series`` (N, F, k) float32 (gap-filled, smoothed), ``labels`` (N,) class codes,
        ``field_ids`` (N,), ``tiles`` (N,) tile ids, ``pixels`` (N,) flat pixel indices,
        ``features`` (F,), ``class_names`` (C,) and ``class_codes`` (C,).
    """
    labels = load_field_labels(labels_geojson)
    budget = max(1, per_class // max(1, len(cube_paths)))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("series", "labels", "field_ids", "tiles", "pixels")}
    features = None
    for i, (tile_id, paths) in enumerate(sorted(cube_paths.items())):
        tile = tiles[tile_id]
        fields = rasterize_fields(labels_geojson, tile)
        pix, fids = sample_pixels(fields, labels, per_field, budget, seed + i)
        weeks = []
        features = _cube_features(paths[0])
        for path in paths:
            weeks.append(_read_cube(path).reshape(len(features), -1)[:, pix])
        parts["series"].append(np.stack(weeks, axis=-1).transpose(1, 0, 2).astype(np.float32))
        parts["labels"].append(np.array([labels.class_of_field[int(f)] for f in fids],
                                        dtype=np.int64))
        parts["field_ids"].append(fids)
        parts["tiles"].append(np.full(len(pix), tile_id))
        parts["pixels"].append(pix)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    codes = sorted(labels.class_names)
    out.update(features=np.array(features), class_codes=np.array(codes),
               class_names=np.array([labels.class_names[c] for c in codes]))
    return out


def _cube_features(path: Path) -> list[str]:
    return [str(f) for f in open_zarr(path)["feature"].values]


def _read_cube(path: Path | ObjPath) -> np.ndarray:
    """The (feature, y, x) float32 array of a weekly cube, read straight from Zarr."""
    return np.asarray(open_zarr_array(path, "features")[:])


def save_npz_atomic(path: str | Path | ObjPath, **arrays: np.ndarray) -> int:
    """Write arrays to ``path`` (.npz) via a temp file and rename; returns bytes."""
    buf = io.BytesIO()
    named: dict[str, Any] = arrays  # else mypy matches **arrays to allow_pickle: bool
    np.savez_compressed(buf, **named)
    return write_bytes_atomic(path, buf.getvalue())


def load_npz(path: str | Path | ObjPath) -> dict[str, np.ndarray]:
    """Read a sample file written by :func:`save_npz_atomic`."""
    loc = location(path)
    with np.load(loc.open("rb") if isinstance(loc, ObjPath) else loc, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
