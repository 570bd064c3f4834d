"""Import of user reference crop labels into the project's internal per-season label file.

Users bring field/parcel polygons with a crop class in a common vector format: GeoPackage,
Shapefile, GeoJSON, FlatGeobuf or anything else GDAL reads (through pyogrio), and
GeoParquet (through pyarrow, as the bundled GDAL has no Parquet driver). The file is
streamed in Arrow record batches and never loaded whole.

The output is the internal label file (``labels/<season>.geojson``): an RFC 7946
FeatureCollection in EPSG:4326 (longitude/latitude in degrees, x = lon) of Polygon /
MultiPolygon features with exactly the properties

- ``field_id``: int >= 1, unique, fits the uint32 field rasters,
- ``class_code``: int in 1..254 (255 is the crop map's nodata),
- ``class_name``: str, one name per code,
- ``source_id``: str, the user's original id,

as read by :func:`cropassets.core.reference.sampling.load_field_labels` and
:func:`cropassets.core.reference.sampling.rasterize_fields`.

:func:`import_labels` reads the file twice. A cheap first pass reads only the id and class
columns (no geometry): it decides whether the user's ids can be the field ids, resolves the
class codes, and finds missing ids, duplicate ids and unmapped classes before anything is
written. The second pass reads the geometries batch by batch, reprojects them and writes
the features one by one to a temporary file beside the output, which replaces the output
only when the whole import succeeded.

The file is opened by :mod:`cropassets.core.reference.label_readers`, its batches checked
and reprojected by :mod:`cropassets.core.reference.label_batches`; class maps are in
:mod:`cropassets.core.reference.class_map`.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import shapely

from cropassets.core.reference.class_map import (
    MAX_CLASS_CODE,
    LabelFileError,
    _checked_class_map,
    _class_map_name,
)
from cropassets.core.reference.label_batches import (
    _blank,
    _check_batch_size,
    _no_id,
    iter_label_batches,
)
from cropassets.core.reference.label_readers import LabelSource, _open, _read_errors
from cropassets.core.storage import atomic_file

MAX_FIELD_ID = 2**32 - 1
"""Largest field id: field rasters are uint32 with 0 = no field."""


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_labels` wrote.

    Attributes:
        n_features: Features written.
        n_classes: Distinct class codes written.
        class_counts: Class name -> features written, in class-code order.
        bounds_wgs84: (west, south, east, north) of the written features, degrees.
        out_path: The internal label file.
        n_skipped: Features left out: null/empty geometry or null/blank class.
        n_outside_region: Written features not intersecting ``region_bbox_wgs84`` (0 when
            no region was given).
        field_ids_from_source: True when the user's ids became the field ids, False when
            field ids were numbered 1..n in file order.
    """

    n_features: int
    n_classes: int
    class_counts: dict[str, int]
    bounds_wgs84: tuple[float, float, float, float]
    out_path: Path
    n_skipped: int = 0
    n_outside_region: int = 0
    field_ids_from_source: bool = False


def _canonical_int(value: str, upper: int) -> bool:
    """True for an integer >= 1 and <= ``upper`` written without sign or leading zeros."""
    return (value.isascii() and value.isdigit() and value[0] != "0"
            and int(value) <= upper)


@dataclass(frozen=True)
class _Plan:
    """Outcome of the first pass: how ids and classes are turned into the internal file."""

    n_rows: int
    ids_from_source: bool
    classes: dict[str, tuple[int, str]]  # every raw class value in the file -> (code, name)


def _scan(source: LabelSource, batch_size: int) -> _Plan:
    """First pass over the id and class columns only (no geometry is read)."""
    path = Path(source.path)
    seen: set[str] = set()
    duplicates: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    all_int = True
    row = 0
    with _read_errors(path), _open(source, batch_size, with_geometry=False) as (_, batches):
        for ids, classes, _ in batches:
            for i, (sid, raw) in enumerate(zip(ids, classes, strict=True)):
                if sid is None or _blank(sid):
                    raise _no_id(path, source, row + i)
                if sid in seen:
                    duplicates[sid] += 1
                else:
                    seen.add(sid)
                if all_int and not _canonical_int(sid, MAX_FIELD_ID):
                    all_int = False
                if raw is not None and not _blank(raw):
                    counts[raw] += 1
            row += len(ids)
    if duplicates:
        shown = ", ".join(f"{sid!r} ({n + 1}x)" for sid, n in list(duplicates.items())[:5])
        more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        raise LabelFileError(f"{path}: {len(duplicates)} duplicate id(s) in column "
                             f"{source.id_column!r}: {shown}{more}")
    return _Plan(row, all_int, _resolve_classes(path, source, counts))


def _resolve_classes(path: Path, source: LabelSource,
                     counts: Counter[str]) -> dict[str, tuple[int, str]]:
    """Raw class value -> (code, name) for every value in ``counts``."""
    if source.class_map is not None:
        cmap = _checked_class_map(source.class_map, _class_map_name(source.class_map))
        missing = sorted(((v, n) for v, n in counts.items() if v not in cmap),
                         key=lambda vn: (-vn[1], vn[0]))
        if missing:
            shown = ", ".join(f"{v!r} ({n} features)" for v, n in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise LabelFileError(
                f"{path}: {len(missing)} value(s) of class column {source.class_column!r} "
                f"not in {_class_map_name(source.class_map)}: {shown}{more}")
        return {v: cmap[v] for v in counts}
    values = list(counts)
    if all(_canonical_int(v, MAX_CLASS_CODE) for v in values):
        return {v: (int(v), v) for v in values}
    if len(values) > MAX_CLASS_CODE:
        raise LabelFileError(
            f"{path}: {len(values)} distinct values in class column {source.class_column!r} "
            f"but at most {MAX_CLASS_CODE} classes fit the crop map; give a class map")
    numeric = all(v.isascii() and v.isdigit() for v in values)
    ordered = sorted(values, key=(lambda v: (int(v), v)) if numeric else None)
    return {v: (code, v) for code, v in enumerate(ordered, start=1)}


def _check_bbox(bbox: tuple[float, float, float, float] | None) -> None:
    if bbox is None:
        return
    if len(bbox) != 4:
        raise ValueError(f"region_bbox_wgs84 must be (west, south, east, north), got {bbox!r}")
    w, s, e, n = (float(v) for v in bbox)
    if not (w < e and s < n):
        raise ValueError(f"region_bbox_wgs84 must have west < east and south < north "
                         f"(degrees), got {bbox!r}")


def import_labels(source: LabelSource, out_path: Path, batch_size: int = 10_000,
                  region_bbox_wgs84: tuple[float, float, float, float] | None = None
                  ) -> ImportSummary:
    """Convert a user label file into the internal label GeoJSON (EPSG:4326).

    Two streaming passes over the file, each holding one batch at a time: first the id and
    class columns only, then the geometries (see the module docstring).

    Field ids: the user's ids when every id is an integer in 1..2**32-1 written plainly
    (ints, integral floats, or strings like ``"42"``; not ``"042"``), else 1..n over the
    written features in file order. ``source_id`` always keeps the user's id as str.

    Class codes: with ``source.class_map``, every raw class value (as str) must be in it.
    Without, integer values in 1..254 are the codes (name: the value as str); otherwise
    the distinct raw values, sorted (numerically if all are integers), get codes 1..n
    named by the raw value.

    Features with a null/empty geometry or a null/blank class are skipped and counted.
    The output is written to a temporary file in the same directory and renamed onto
    ``out_path`` only on success; on any error the temporary file is removed and an
    existing ``out_path`` is left untouched.

    Args:
        source: The user's file and its columns.
        out_path: Internal label file to write (e.g. ``labels/<season>.geojson``).
        batch_size: File features per batch (>= 1).
        region_bbox_wgs84: (west, south, east, north) degrees of the tiles; if given, at
            least one feature must intersect it.

    Returns:
        :class:`ImportSummary` of what was written.

    Raises:
        LabelFileError: Unknown/unreadable file, missing column, no CRS, missing or
            duplicate ids, class values missing from the class map, too many classes,
            non-polygon geometry, no usable feature, or no feature in the region.
        ValueError: Bad ``batch_size`` or ``region_bbox_wgs84``.
    """
    _check_batch_size(batch_size)
    _check_bbox(region_bbox_wgs84)
    path = Path(source.path)
    out_path = Path(out_path)
    plan = _scan(source, batch_size)
    with atomic_file(out_path) as fh:  # renamed onto out_path only if nothing below raises
        text = io.TextIOWrapper(fh, encoding="ascii", newline="\n")
        summary = _write_features(source, plan, text, batch_size, region_bbox_wgs84, out_path)
        text.flush()
        text.detach()
        if summary.n_features == 0:
            raise LabelFileError(f"{path}: no usable features ({summary.n_skipped} skipped "
                                 "for a null/empty geometry or a null class)")
        if region_bbox_wgs84 is not None and summary.n_outside_region == summary.n_features:
            raise LabelFileError(
                f"{path}: labels in no tile: none of the {summary.n_features} features "
                f"(bounds {summary.bounds_wgs84}) intersects the region bbox "
                f"{tuple(region_bbox_wgs84)} (west, south, east, north, EPSG:4326)")
    return summary


def _write_features(source: LabelSource, plan: _Plan, f: TextIO, batch_size: int,
                    region: tuple[float, float, float, float] | None,
                    out_path: Path) -> ImportSummary:
    """Second pass: write the FeatureCollection to ``f`` feature by feature."""
    path = Path(source.path)
    region_box = shapely.box(*region) if region is not None else None
    if region_box is not None:
        shapely.prepare(region_box)
    lo = np.array([np.inf, np.inf])
    hi = np.array([-np.inf, -np.inf])
    per_code: Counter[int] = Counter()
    names: dict[int, str] = {}
    n_features = n_skipped = n_outside = n_rows = 0
    f.write('{"type":"FeatureCollection","features":[\n')
    for batch in iter_label_batches(source, batch_size):
        n_skipped += batch.n_skipped
        n_rows += len(batch) + batch.n_skipped
        if not len(batch):
            continue
        b = shapely.bounds(batch.geometries)
        lo = np.minimum(lo, b[:, :2].min(axis=0))
        hi = np.maximum(hi, b[:, 2:].max(axis=0))
        if region_box is not None:
            n_outside += int((~shapely.intersects(batch.geometries, region_box)).sum())
        geojson = shapely.to_geojson(batch.geometries)
        for sid, raw, geom in zip(batch.source_ids, batch.raw_classes, geojson, strict=True):
            try:
                code, name = plan.classes[raw]
            except KeyError:
                raise LabelFileError(f"{path}: class value {raw!r} of feature {sid!r} was not "
                                     "there in the first pass; did the file change while "
                                     "it was read?") from None
            n_features += 1
            fid = int(sid) if plan.ids_from_source else n_features
            props = json.dumps({"field_id": fid, "class_code": code, "class_name": name,
                                "source_id": sid})
            sep = ",\n" if n_features > 1 else ""
            f.write(f'{sep}{{"type":"Feature","id":{fid},"properties":{props},'
                    f'"geometry":{geom}}}')
            per_code[code] += 1
            names[code] = name
    f.write("\n]}\n")
    if n_rows != plan.n_rows:
        raise LabelFileError(f"{path}: {plan.n_rows} features in the first pass but {n_rows} "
                             "in the second; did the file change while it was read?")
    bounds = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    return ImportSummary(
        n_features=n_features,
        n_classes=len(per_code),
        class_counts={names[c]: per_code[c] for c in sorted(per_code)},
        bounds_wgs84=bounds,
        out_path=out_path,
        n_skipped=n_skipped,
        n_outside_region=n_outside,
        field_ids_from_source=plan.ids_from_source,
    )
