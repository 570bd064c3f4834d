"""Sampling labelled pixels per field for training, with classes balanced within a budget."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio


@dataclass(frozen=True)
class FieldLabels:
    """Per-field labels of one season: field id -> class code, plus the class names."""

    class_of_field: dict[int, int]
    class_names: dict[int, str]


def load_field_labels(geojson: str | Path) -> FieldLabels:
    """Read ``labels/<season>.geojson`` (properties field_id, class_code, class_name).

    Only the three attribute columns are read (through GDAL, geometries skipped), so a
    file of tens of thousands of parcels is never parsed as one JSON document in Python.
    """
    from pyogrio.raw import read

    _, _, _, (fid, code, name) = read(Path(geojson), columns=["field_id", "class_code",
                                                             "class_name"],
                                      read_geometry=False)
    classes = {int(f): int(c) for f, c in zip(fid, code, strict=True)}
    names = {int(c): str(n) for c, n in zip(code, name, strict=True)}
    return FieldLabels(classes, names)


def _label_polygons(path: str, bbox: tuple[float, float, float, float]
                    ) -> list[tuple[int, list[list[np.ndarray]]]]:
    """Field ids and polygons of the features whose envelope meets ``bbox``.

    ``bbox`` is (W, S, E, N) in degrees; polygons are lists of (n, 2) lon/lat rings, in
    file order; read through GDAL with its spatial filter, not as one JSON document.
    """
    import shapely
    from pyogrio.raw import read

    _, _, wkb, (fids,) = read(path, columns=["field_id"], bbox=bbox)
    out = []
    for fid, geom in zip(fids, shapely.from_wkb(wkb), strict=True):
        parts = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
        out.append((int(fid), [[np.asarray(p.exterior.coords)[:, :2]]
                               + [np.asarray(r.coords)[:, :2] for r in p.interiors]
                               for p in parts]))
    return out


def read_field_raster(path: str | Path) -> np.ndarray:
    """Field-id raster (y, x) uint32 of a tile."""
    with rasterio.open(path) as src:
        return src.read(1)


def interior_mask(fields: np.ndarray, radius: int = 1) -> np.ndarray:
    """True where the (2r+1)² neighbourhood lies in one field: mixed edge pixels excluded."""
    h, w = fields.shape
    pad = np.pad(fields, radius, mode="edge")
    same = np.ones(fields.shape, bool)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            same &= pad[dy:dy + h, dx:dx + w] == fields
    return same


def sample_pixels(fields: np.ndarray, labels: FieldLabels, per_field: int = 20,
                  per_class: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample interior pixels: at most ``per_field`` per field, ``per_class`` per class.

    Budget rule: every field of a class contributes up to ``per_field`` pixels (so small
    fields count); if a class then exceeds ``per_class`` pixels, fields are kept in a random
    order until the class budget is reached (whole fields, so splits by field stay clean).

    Args:
        fields: (y, x) field ids.
        labels: Class of each field.
        per_field: Max pixels drawn per field.
        per_class: Max pixels per class.
        seed: Random seed.

    Returns:
        (flat pixel indices into ``fields``, field id of each), sorted by index.
    """
    rng = np.random.default_rng(seed)
    ok = interior_mask(fields)
    flat = fields.ravel()
    idx = np.flatnonzero(ok.ravel())
    order = np.argsort(flat[idx], kind="stable")
    idx = idx[order]
    ids, starts = np.unique(flat[idx], return_index=True)
    groups = np.split(idx, starts[1:])
    by_class: dict[int, list[np.ndarray]] = {}
    for fid, pix in zip(ids, groups, strict=True):
        code = labels.class_of_field.get(int(fid))
        if code is None:
            continue
        take = pix if len(pix) <= per_field else rng.choice(pix, per_field, replace=False)
        by_class.setdefault(code, []).append(np.sort(take))
    chosen = []
    for code in sorted(by_class):
        picks = by_class[code]
        total = 0
        for i in rng.permutation(len(picks)):
            if total >= per_class:
                break
            chosen.append(picks[i])
            total += len(picks[i])
    out = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
    return out, flat[out].astype(np.int64)


def rasterize_fields(geojson: str | Path, tile) -> np.ndarray:
    """Burn the label polygons (GeoJSON, EPSG:4326) onto a tile grid as field ids.

    Polygons outside the tile's bounding box are skipped and all remaining vertices are
    reprojected in one batched call. Results are cached per (file, modification time, tile).

    Args:
        geojson: Label file with ``field_id`` properties (Polygon / MultiPolygon).
        tile: :class:`cropassets.core.tiles.TileSpec` target grid.

    Returns:
        (y, x) uint32 field ids, 0 where no polygon covers the pixel centre.
    """
    path = Path(geojson).resolve()
    return _rasterize_cached(str(path), path.stat().st_mtime_ns, tile).copy()


@functools.lru_cache(maxsize=32)
def _rasterize_cached(path: str, mtime_ns: int, tile) -> np.ndarray:
    from rasterio.features import rasterize
    from rasterio.warp import transform

    w, s, e, n = tile.bbox_wgs84()
    rings: list[np.ndarray] = []
    owners: list[tuple[int, int, int]] = []  # (feature index, polygon index, ring index)
    fids: list[int] = []
    for fid, polys in _label_polygons(path, (w, s, e, n)):
        fids.append(fid)
        for pi, poly in enumerate(polys):
            for ri, ring in enumerate(poly):
                rings.append(np.asarray(ring, float))
                owners.append((len(fids) - 1, pi, ri))
    if not rings:
        return np.zeros(tile.shape, np.uint32)
    lengths = [len(r) for r in rings]
    allxy = np.concatenate(rings)
    xs, ys = transform("EPSG:4326", tile.crs, allxy[:, 0].tolist(), allxy[:, 1].tolist())
    xy = np.column_stack([xs, ys])
    shapes: dict[int, list[list[list[list[float]]]]] = {}
    for (fi, _pi, ri), chunk in zip(owners, np.split(xy, np.cumsum(lengths)[:-1]), strict=True):
        parts = shapes.setdefault(fi, [])
        if ri == 0:
            parts.append([])
        parts[-1].append(chunk.tolist())
    geoms = [({"type": "MultiPolygon", "coordinates": parts}, fids[fi])
             for fi, parts in shapes.items()]
    return rasterize(geoms, out_shape=tile.shape, transform=tile.transform, fill=0,
                     dtype="uint32")
