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
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from pyogrio.raw import open_arrow

from cropassets.core.legend import CLASS_NODATA
from cropassets.core.storage import atomic_file

MAX_CLASS_CODE = CLASS_NODATA - 1
"""Largest class code (254): crop maps are uint8 with 255 as nodata."""

MAX_FIELD_ID = 2**32 - 1
"""Largest field id: field rasters are uint32 with 0 = no field."""

PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".parq", ".pq")
"""File name endings read as GeoParquet (files starting with ``PAR1`` are too)."""

_GEOJSON_DRIVERS = ("GeoJSON", "GeoJSONSeq")
_POLYGON_TYPE_IDS = (3, 6)  # shapely type ids of Polygon, MultiPolygon
_LONLAT_TOLERANCE = 1e-6  # degrees of slack on the lon/lat range check
_READ_ERRORS = (
    OSError,
    pa.ArrowException,
    pyproj.exceptions.CRSError,
    shapely.errors.GEOSException,
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FieldError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
)

_Rows = tuple[list[str | None], list[str | None], np.ndarray | None]  # ids, classes, WKB


class LabelFileError(ValueError):
    """A label file, class map or import request that cannot be used (message says why)."""


class ClassMap(dict[str, tuple[int, str]]):
    """Raw class value (as str) -> (class code, class name), remembering its file.

    A plain ``dict`` works wherever a class map is expected; this subclass only lets error
    messages name the file the map came from (see :func:`load_class_map`).
    """

    def __init__(self, entries: dict[str, tuple[int, str]], source: Path | None = None):
        super().__init__(entries)
        self.source = source


@dataclass(frozen=True)
class LabelSource:
    """A user's label file and how to read it.

    Attributes:
        path: Vector file (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, GeoParquet, ...).
        id_column: Column with the user's feature id (any type; compared as str). For a
            GeoPackage the FID column (usually ``fid``) and for GeoJSON the feature-level
            ``id`` may be named too.
        class_column: Column with the raw crop class (any type; compared as str, integral
            floats such as ``3.0`` as ``"3"``).
        class_map: Raw class value (str) -> (code 1..254, name); None derives the codes
            from the values (see :func:`import_labels`).
        layer: Layer to read; None reads the only (spatial) layer of the file.
    """

    path: Path
    id_column: str
    class_column: str
    class_map: dict[str, tuple[int, str]] | None = None
    layer: str | None = None


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


def load_class_map(path: Path) -> dict[str, tuple[int, str]]:
    """Read a class map JSON file: raw class value -> (class code, class name).

    Format: ``{"<raw value>": {"code": 1, "name": "maize"}, ...}``. Several raw values may
    share a code (merging classes) if they give it the same name.

    Args:
        path: The JSON file.

    Returns:
        A :class:`ClassMap` (a dict) that remembers ``path`` for error messages.

    Raises:
        LabelFileError: If the file is missing or not JSON, or an entry has no name, a code
            that is not an int in 1..254, or a code/name that conflicts with another entry.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelFileError(f"class map {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelFileError(f"class map {path} is not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or not doc:
        raise LabelFileError(
            f"class map {path} must be a non-empty JSON object "
            '{"<raw value>": {"code": 1, "name": "maize"}, ...}')
    entries: dict[str, tuple[Any, Any]] = {}
    for raw, entry in doc.items():
        where = f"class map {path}, entry {raw!r}"
        if not isinstance(entry, dict):
            raise LabelFileError(
                f'{where}: expected {{"code": <int>, "name": <str>}}, got {entry!r}')
        if "name" not in entry:
            raise LabelFileError(f"{where}: name missing")
        entries[str(raw)] = (entry.get("code"), entry["name"])
    return ClassMap(_checked_class_map(entries, f"class map {path}"), source=path)


def _checked_class_map(cmap: dict[Any, Any], what: str) -> dict[str, tuple[int, str]]:
    """Validate a class map (codes, names, consistency); return it with str keys."""
    out: dict[str, tuple[int, str]] = {}
    name_of: dict[int, tuple[str, str]] = {}  # code -> (name, raw value)
    code_of: dict[str, tuple[int, str]] = {}  # name -> (code, raw value)
    for raw, value in cmap.items():
        where = f"{what}, entry {str(raw)!r}"
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise LabelFileError(f"{where}: expected (code, name), got {value!r}")
        code, name = value
        if isinstance(code, bool) or not isinstance(code, int | np.integer):
            raise LabelFileError(f"{where}: code must be an int in 1..{MAX_CLASS_CODE}, "
                                 f"got {code!r}")
        code = int(code)
        if not 1 <= code <= MAX_CLASS_CODE:
            raise LabelFileError(f"{where}: code {code} is outside 1..{MAX_CLASS_CODE} "
                                 f"({CLASS_NODATA} is the crop map's nodata)")
        if not isinstance(name, str) or not name.strip():
            raise LabelFileError(f"{where}: name must be a non-empty string, got {name!r}")
        if code in name_of and name_of[code][0] != name:
            other_name, other_raw = name_of[code]
            raise LabelFileError(f"{where}: code {code} is named {name!r} here but "
                                 f"{other_name!r} in entry {other_raw!r}")
        if name in code_of and code_of[name][0] != code:
            other_code, other_raw = code_of[name]
            raise LabelFileError(f"{where}: name {name!r} has code {code} here but "
                                 f"{other_code} in entry {other_raw!r}")
        name_of[code] = (name, str(raw))
        code_of[name] = (code, str(raw))
        out[str(raw)] = (code, name)
    return out


def _class_map_name(cmap: dict[str, tuple[int, str]]) -> str:
    source = getattr(cmap, "source", None)
    return f"class map {source}" if source is not None else "the class map of LabelSource"


# ---------------------------------------------------------------- reading (both passes)


def _float_str(v: float | None) -> str | None:
    if v is None or v != v:  # NaN is a null in Shapefile/Parquet float columns
        return None
    if np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def _str_values(col: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """Column values as str (None for null; integral floats without ``.0``)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    values = col.to_pylist()
    if pa.types.is_floating(col.type):
        return [_float_str(v) for v in values]
    return [None if v is None else str(v) for v in values]


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _canonical_int(value: str, upper: int) -> bool:
    """True for an integer >= 1 and <= ``upper`` written without sign or leading zeros."""
    return (value.isascii() and value.isdigit() and value[0] != "0"
            and int(value) <= upper)


def _missing_columns(path: Path, source: LabelSource, available: list[str],
                     id_only: tuple[str, ...] = ()) -> None:
    """Raise if the id/class column is missing (``id_only``: names usable as id only)."""
    missing = []
    if source.id_column not in available and source.id_column not in id_only:
        missing.append(f"id_column={source.id_column!r}")
    if source.class_column not in available:
        missing.append(f"class_column={source.class_column!r}")
    if missing:
        has = available + [f"{c} (id only)" for c in id_only if c not in available]
        raise LabelFileError(f"{path}: column(s) not found: {', '.join(missing)}; the file "
                             f"has columns {has}")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    if path.is_file():
        with path.open("rb") as f:
            return f.read(4) == b"PAR1"
    return False


@contextmanager
def _open(source: LabelSource, batch_size: int,
          with_geometry: bool) -> Iterator[tuple[pyproj.CRS, Iterator[_Rows]]]:
    """Open the file: its CRS and an iterator of (ids, classes, WKB or None) batches."""
    path = Path(source.path)
    if not path.exists():
        raise LabelFileError(f"label file {path} not found")
    opener = _open_parquet if _is_parquet(path) else _open_ogr
    with opener(path, source, batch_size, with_geometry) as opened:
        yield opened


@contextmanager
def _open_parquet(path: Path, source: LabelSource, batch_size: int,
                  with_geometry: bool) -> Iterator[tuple[pyproj.CRS, Iterator[_Rows]]]:
    try:
        pf = pq.ParquetFile(path)
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    with pf:
        raw_geo = (pf.schema_arrow.metadata or {}).get(b"geo")
        if raw_geo is None:
            raise LabelFileError(f"{path}: Parquet file without GeoParquet 'geo' metadata "
                                 "(no geometry column / CRS known)")
        try:
            geo = json.loads(raw_geo)
            geom_col = geo["primary_column"]
            col_meta = geo["columns"][geom_col]
        except (ValueError, KeyError, TypeError) as exc:
            raise LabelFileError(f"{path}: invalid GeoParquet 'geo' metadata ({exc!r})") from exc
        encoding = str(col_meta.get("encoding", "WKB"))
        if encoding.upper() != "WKB":
            raise LabelFileError(f"{path}: GeoParquet geometry encoding {encoding!r} is not "
                                 "supported (only WKB)")
        if "crs" not in col_meta:
            crs = pyproj.CRS("OGC:CRS84")  # GeoParquet default
        elif col_meta["crs"] is None:
            raise LabelFileError(f"{path}: the file has no CRS (GeoParquet crs is null)")
        else:
            crs = _crs(path, col_meta["crs"])
        _missing_columns(path, source, [str(n) for n in pf.schema_arrow.names])
        columns = list(dict.fromkeys([source.id_column, source.class_column]
                                     + ([geom_col] if with_geometry else [])))

        def rows() -> Iterator[_Rows]:
            for b in pf.iter_batches(batch_size=batch_size, columns=columns):
                wkb = (b.column(geom_col).to_numpy(zero_copy_only=False)
                       if with_geometry else None)
                yield (_str_values(b.column(source.id_column)),
                       _str_values(b.column(source.class_column)), wkb)

        yield crs, rows()


def _crs(path: Path, value: Any) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise LabelFileError(f"{path}: CRS not understood ({exc})") from exc


def _pick_layer(path: Path, layer: str | None) -> str:
    try:
        layers = pyogrio.list_layers(path)
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: not a vector file that can be read "
                             f"(unknown or unsupported format, or damaged): {exc}") from exc
    names = [str(name) for name, _ in layers]
    if layer is not None:
        if layer not in names:
            raise LabelFileError(f"{path}: layer {layer!r} not found; layers: {names}")
        return layer
    spatial = [str(name) for name, gtype in layers if gtype is not None]
    if len(names) == 1:
        return names[0]
    if len(spatial) == 1:
        return spatial[0]
    raise LabelFileError(f"{path}: {len(names)} layers {names}; choose one with "
                         "LabelSource.layer")


@contextmanager
def _open_ogr(path: Path, source: LabelSource, batch_size: int,
              with_geometry: bool) -> Iterator[tuple[pyproj.CRS, Iterator[_Rows]]]:
    layer = _pick_layer(path, source.layer)
    try:
        info = pyogrio.read_info(path, layer=layer)
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: cannot read layer {layer!r}: {exc}") from exc
    fields = [str(f) for f in info["fields"]]
    fid_column = str(info.get("fid_column") or "")
    fid_names = tuple(n for n in (fid_column,) if n) + (
        ("id",) if info.get("driver") in _GEOJSON_DRIVERS else ())
    _missing_columns(path, source, fields, id_only=fid_names)
    use_fid = source.id_column not in fields  # so it is the FID / GeoJSON feature id
    if info.get("crs") is None:
        raise LabelFileError(f"{path}: the file has no CRS (e.g. a Shapefile without .prj); "
                             "define it before importing")
    crs = _crs(path, info["crs"])
    columns = list(dict.fromkeys(c for c in (source.id_column, source.class_column)
                                 if c in fields))
    try:
        ctx = open_arrow(path, layer=layer, columns=columns, read_geometry=with_geometry,
                         return_fids=use_fid, batch_size=batch_size,
                         use_pyarrow=True)
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: cannot read layer {layer!r}: {exc}") from exc
    with ctx as (meta, reader):
        id_name = meta["fid_column"] if use_fid else source.id_column
        geom_name = meta["geometry_name"] or "wkb_geometry"

        def rows() -> Iterator[_Rows]:
            for b in reader:
                wkb = (b.column(geom_name).to_numpy(zero_copy_only=False)
                       if with_geometry else None)
                yield _str_values(b.column(id_name)), _str_values(b.column(
                    source.class_column)), wkb

        yield crs, rows()


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
    No class mapping is applied here (see :func:`import_labels`).

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


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Reading errors of GDAL/Arrow/GEOS inside as a :class:`LabelFileError` naming ``path``."""
    try:
        yield
    except LabelFileError:
        raise
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: could not be read: {exc}") from exc


def _no_id(path: Path, source: LabelSource, row: int) -> LabelFileError:
    return LabelFileError(f"{path}: feature #{row} (0-based, file order) has no value in id "
                          f"column {source.id_column!r}")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")


# ---------------------------------------------------------------- import


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
