"""Opening a user's label file: its CRS and its (ids, classes, WKB) rows in Arrow batches.

Users bring field/parcel polygons with a crop class in a common vector format: GeoPackage,
Shapefile, GeoJSON, FlatGeobuf or anything else GDAL reads (through pyogrio), and
GeoParquet (through pyarrow, as the bundled GDAL has no Parquet driver). The file is
streamed in Arrow record batches and never loaded whole; ids and classes are read as str
(None for null, integral floats without ``.0``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from pyogrio.raw import open_arrow

from cropassets.core.reference.class_map import LabelFileError

PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".parq", ".pq")
"""File name endings read as GeoParquet (files starting with ``PAR1`` are too)."""

_GEOJSON_DRIVERS = ("GeoJSON", "GeoJSONSeq")
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
            from the values (see
            :func:`cropassets.core.reference.label_files.import_labels`).
        layer: Layer to read; None reads the only (spatial) layer of the file.
    """

    path: Path
    id_column: str
    class_column: str
    class_map: dict[str, tuple[int, str]] | None = None
    layer: str | None = None


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


@contextmanager
def _read_errors(path: Path) -> Iterator[None]:
    """Reading errors of GDAL/Arrow/GEOS inside as a :class:`LabelFileError` naming ``path``."""
    try:
        yield
    except LabelFileError:
        raise
    except _READ_ERRORS as exc:
        raise LabelFileError(f"{path}: could not be read: {exc}") from exc
