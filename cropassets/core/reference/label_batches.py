"""A label file as batches of usable features: checked, filtered, reprojected to EPSG:4326.

Each file batch of :mod:`cropassets.core.reference.label_readers` becomes a
:class:`LabelBatch`: features without geometry or class are left out (and counted), the
others must be Polygon / MultiPolygon, and are reprojected to lon/lat degrees (x = lon),
made 2D and oriented as RFC 7946 wants.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyproj
import shapely

from cropassets.core.reference.class_map import LabelFileError
from cropassets.core.reference.label_readers import LabelSource, _open, _read_errors

_POLYGON_TYPE_IDS = (3, 6)  # shapely type ids of Polygon, MultiPolygon
_LONLAT_TOLERANCE = 1e-6  # degrees of slack on the lon/lat range check


@dataclass(frozen=True)
class LabelBatch:
    """One batch of usable label features, in file order.

    Attributes:
        source_ids: (n,) object array of str, the user's ids.
        raw_classes: (n,) object array of str, the raw class values (not yet mapped).
        geometries: (n,) object array of shapely Polygon / MultiPolygon, 2D, EPSG:4326
            (x = longitude, y = latitude, degrees), exterior rings counter-clockwise.
        n_skipped: Features of this file batch left out: null/empty geometry or no class.
    """

    source_ids: np.ndarray
    raw_classes: np.ndarray
    geometries: np.ndarray
    n_skipped: int = 0

    def __len__(self) -> int:
        return len(self.source_ids)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _to_wgs84(crs: pyproj.CRS):
    """Function (n, 2) source x/y -> (n, 2) lon/lat, or None when already lon/lat WGS84."""
    if crs.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        return None
    transformer = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def transform(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return transform


def _label_batch(path: Path, source: LabelSource, crs: pyproj.CRS, transform, first_row: int,
                 ids: list[str | None], classes: list[str | None],
                 wkb: np.ndarray) -> LabelBatch:
    """Check, filter and reproject one file batch (``first_row``: its 0-based file row)."""
    for i, sid in enumerate(ids):
        if _blank(sid):
            raise _no_id(path, source, first_row + i)
    geoms = shapely.from_wkb(wkb, on_invalid="raise")
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    keep &= np.array([not _blank(c) for c in classes], dtype=bool)
    idx = np.flatnonzero(keep)
    geoms = geoms[idx]
    type_ids = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(type_ids, _POLYGON_TYPE_IDS))
    if bad.size:
        j = int(bad[0])
        raise LabelFileError(
            f"{path}: feature {ids[idx[j]]!r} has a {geoms[j].geom_type} geometry; labels "
            f"must be Polygon/MultiPolygon ({bad.size} non-polygon feature(s) in this batch)")
    if transform is not None:
        geoms = shapely.transform(geoms, transform, include_z=False)
    elif shapely.has_z(geoms).any():
        geoms = shapely.force_2d(geoms)
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    if len(geoms):
        b = shapely.bounds(geoms)
        t = _LONLAT_TOLERANCE
        ok = (np.isfinite(b).all(axis=1) & (b[:, 0] >= -180 - t) & (b[:, 2] <= 180 + t)
              & (b[:, 1] >= -90 - t) & (b[:, 3] <= 90 + t))
        if not ok.all():
            j = int(np.flatnonzero(~ok)[0])
            raise LabelFileError(
                f"{path}: feature {ids[idx[j]]!r} is outside the lon/lat range after "
                f"reprojection from {crs.name!r} (bounds {tuple(b[j].tolist())}); is the "
                "file's CRS right?")
    sids = np.empty(len(idx), dtype=object)
    sids[:] = [ids[i] for i in idx]
    raw = np.empty(len(idx), dtype=object)
    raw[:] = [classes[i] for i in idx]
    return LabelBatch(sids, raw, geoms, n_skipped=len(ids) - len(idx))


def iter_label_batches(source: LabelSource, batch_size: int = 10_000) -> Iterator[LabelBatch]:
    """Stream a label file as batches of usable features, reprojected to EPSG:4326.

    Only one batch of at most ``batch_size`` file features is held at a time. Geometries
    are reprojected from the file's CRS to EPSG:4326 (lon/lat degrees, ``always_xy``),
    made 2D, and their rings oriented as RFC 7946 wants. Features with a null/empty
    geometry or a null/blank class are left out and counted in ``LabelBatch.n_skipped``.
    No class mapping is applied here (see
    :func:`cropassets.core.reference.label_files.import_labels`).

    Args:
        source: The file and its id/class columns (``class_map`` is not used here).
        batch_size: File features per batch (>= 1).

    Yields:
        :class:`LabelBatch` per file batch, in file order (possibly empty when every
        feature of the batch was skipped).

    Raises:
        LabelFileError: Unknown/unreadable file, missing column, no CRS, a feature without
            id, a non-polygon geometry, or coordinates outside lon/lat after reprojection.
    """
    _check_batch_size(batch_size)
    path = Path(source.path)
    with _read_errors(path), _open(source, batch_size, with_geometry=True) as (crs, batches):
        transform = _to_wgs84(crs)
        row = 0
        for ids, classes, wkb in batches:
            assert wkb is not None  # opened with_geometry=True
            yield _label_batch(path, source, crs, transform, row, ids, classes, wkb)
            row += len(ids)


def _no_id(path: Path, source: LabelSource, row: int) -> LabelFileError:
    return LabelFileError(f"{path}: feature #{row} (0-based, file order) has no value in id "
                          f"column {source.id_column!r}")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
