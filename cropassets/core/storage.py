"""Atomic storage of per-partition arrays under a data root.

Layout: ``<root>/<asset>/<tile>/<week>.zarr``. A dataset is written to a hidden temporary
directory beside its final path and renamed into place, so a crash mid-write never leaves
a partial partition where readers look, and a re-write replaces the old one whole.

The root may also be an object store (``s3://bucket/prefix``, :mod:`cropassets.core.objstore`):
every function here takes a :data:`~cropassets.core.objstore.Location`; single files are
staged locally and PUT once, Zarr stores are written as a new version and published by a
pointer written last (docs/CONTRACTS.md "Object storage").
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import xarray as xr

from cropassets.core.objstore import (
    Location,
    ObjPath,
    location,
    open_store_error,
    prefix_lock,
    prefix_size,
    resolve_zarr,
    versioned_write,
    zarr_store,
)

S2_REFLECTANCE_ENCODING = {"dtype": "uint16", "scale_factor": np.float32(1e-4),
                           "add_offset": np.float32(-0.1),
                           "_FillValue": 0}
"""Store reflectance as L2A-style DN: lossless for L2A input, 4x smaller than float32."""


def partition_path(root: str | Path | ObjPath, asset: str, tile: str, week: str,
                   suffix: str = ".zarr") -> Location:
    """Path of one tile x week partition of an asset (an ``ObjPath`` under an object root)."""
    for part, name in ((asset, "asset"), (tile, "tile"), (week, "week")):
        if not part or "/" in part or part in {".", ".."}:
            raise ValueError(f"{name} {part!r} cannot be used in a storage path")
    return location(root) / asset / tile / f"{week}{suffix}"


def dir_size(path: Location) -> int:
    """Total bytes of the files (objects) under ``path``."""
    if isinstance(path, ObjPath):
        return prefix_size(path)
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def replace_dir_atomic(tmp: Path, final: Path) -> None:
    """Move a finished temporary directory to ``final``, replacing what was there."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    # old versions a killed writer renamed away but never removed (safe to drop: readers
    # never look at hidden names, and a concurrent writer tolerates its old copy vanishing)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _remove_tree(path: Path, attempts: int = 40) -> None:
    """Remove a directory that worker threads of a failed dask write may still be filling."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.05)


def write_bytes_atomic(path: str | Path | ObjPath, data: bytes) -> int:
    """Write ``data`` to ``path`` via a hidden temporary file in the same folder and a rename.

    On object storage: one PUT. Readers see the old file or the new one, never a partial
    one. Returns the bytes written.
    """
    loc = location(path)
    if isinstance(loc, ObjPath):
        return loc.write_bytes(data)
    final = loc
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, final)
    except OSError as err:
        raise disk_error(err, final, tmp) from err
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
"""Errors of a full disk (or a file-size limit): reported naming the file."""


def disk_error(err: OSError, final: object, tmp: object) -> OSError:
    """``err`` itself, or for a full disk an ``OSError`` naming ``final`` and ``tmp``."""
    if err.errno not in DISK_FULL:
        return err
    return OSError(err.errno, f"{err.strerror}: writing {final} (temporary file {tmp}); "
                              "nothing was published")


@contextmanager
def atomic_file(path: str | os.PathLike[str] | ObjPath) -> Iterator[BinaryIO]:
    """Yield a binary file in the same folder; on success it is fsynced and renamed to ``path``.

    Readers see the old file or the new one, never a partial one; on any error the
    temporary file is removed and ``path`` is left as it was. On object storage the file
    is staged in the local temporary folder and PUT once on success.
    """
    loc = location(path)
    if isinstance(loc, ObjPath):
        with staged_file(loc) as fh:
            yield fh
        return
    final = loc
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise disk_error(err, final, tmp) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary directory beside ``path``; on success it replaces ``path``.

    On any error the temporary directory is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        replace_dir_atomic(tmp, final)
    except BaseException:
        _remove_tree(tmp)
        raise


@contextmanager
def staged_file(target: ObjPath) -> Iterator[BinaryIO]:
    """A local temporary file PUT to ``target`` once the block succeeds (then removed).

    A full local disk fails the block naming the temporary file; nothing is PUT.
    """
    fd, tmp = tempfile.mkstemp(prefix=".cropassets-", suffix=f"-{target.name}")
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
        except OSError as err:
            raise disk_error(err, target, tmp) from err
        target.upload(Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def zarr_target(path: str | Path | ObjPath) -> Iterator[Location]:
    """Where to write a whole Zarr store that replaces ``path`` atomically.

    Locally a hidden temporary directory renamed onto ``path`` (:func:`atomic_dir`); on
    object storage a new version prefix published by its pointer (``versioned_write``).
    Give the yielded location to ``zarr_store`` for xarray/zarr.
    """
    loc = location(path)
    if isinstance(loc, ObjPath):
        with versioned_write(loc) as version:
            yield version
    else:
        with atomic_dir(loc) as tmp:
            yield tmp


def write_zarr_atomic(ds: xr.Dataset, path: str | Path | ObjPath,
                      encoding: dict[str, dict] | None = None) -> int:
    """Write ``ds`` as a Zarr store at ``path`` atomically; returns the bytes written."""
    with zarr_target(path) as target:
        ds.to_zarr(zarr_store(target), mode="w", encoding=encoding or {}, consolidated=True,
                   zarr_format=2)
        size = dir_size(target)
    return size


def raw_scenes_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """Zarr encoding for a raw-scenes dataset: S2 reflectance as scaled uint16 DN."""
    enc = {}
    for name, var in ds.data_vars.items():
        if var.dtype == np.float32 and name in {"blue", "green", "red", "nir", "swir16"}:
            enc[name] = dict(S2_REFLECTANCE_ENCODING)
    return enc


def open_zarr(path: str | Path | ObjPath, dask: bool = False) -> xr.Dataset:
    """Open a partition written by :func:`write_zarr_atomic` lazily.

    Args:
        path: The ``.zarr`` folder (or its object-store location: the version its pointer
            names is opened, and only that one is read).
        dask: Return dask-backed variables (for chunked processing); otherwise lazily
            indexed numpy-backed ones, which read faster for whole-partition loads.
    """
    loc = location(path)
    if isinstance(loc, ObjPath):
        store = zarr_store(resolve_zarr(loc), read_only=True)  # FileNotFoundError: not written
    elif not loc.exists():
        raise FileNotFoundError(f"partition {loc} has not been written")
    else:
        store = loc
    try:
        ds = xr.open_zarr(store, consolidated=True, zarr_format=2, decode_coords="all",
                          chunks={} if dask else None)
    except Exception as err:
        if isinstance(loc, ObjPath):
            raise open_store_error(err, loc) from err
        raise
    # CF-decoding of scaled uint16 gives float64; the pipeline works in float32.
    for name, var in ds.data_vars.items():
        if var.dtype == np.float64:
            ds[name] = var.astype(np.float32)
    return ds


def open_zarr_array(path: str | Path | ObjPath, name: str) -> Any:
    """Array ``name`` of a partition, opened with zarr directly (no xarray decoding).

    Raises:
        FileNotFoundError: The partition has not been written, naming it.
    """
    import zarr

    loc = location(path)
    if isinstance(loc, ObjPath):
        return zarr.open_array(zarr_store(resolve_zarr(loc), read_only=True), path=name,
                               mode="r")
    if not loc.exists():
        raise FileNotFoundError(f"partition {loc} has not been written")
    return zarr.open_array(loc / name, mode="r")


def scaled_int16_encoding(scale: float) -> dict:
    """Zarr encoding storing float data as int16 ``round(value / scale)``; NaN as -32768."""
    return {"dtype": "int16", "scale_factor": np.float32(scale), "_FillValue": -32768}


SERIES_SCALE = {"ndvi": 1e-4, "lswi": 1e-4, "ndwi": 1e-4, "vv": 2e-3, "vh": 2e-3, "vh_vv": 2e-3}
"""Storage step per feature: 1e-4 for indices (range ±3.2), 0.002 dB for backscatter (±65 dB)."""


def series_to_dataset(series: xr.DataArray) -> tuple[xr.Dataset, dict[str, dict]]:
    """Split a (feature, ...) array into one variable per feature, with int16 encodings.

    Returns:
        (dataset with variables ``series_<feature>``, Zarr encoding per variable). Each
        feature gets its own storage step (:data:`SERIES_SCALE`), so indices keep 1e-4 and
        backscatter in dB fits the int16 range.
    """
    feats = [str(f) for f in series["feature"].values]
    ds = xr.Dataset({f"series_{f}": series.sel(feature=f, drop=True) for f in feats})
    ds.attrs["features"] = feats
    enc = {f"series_{f}": scaled_int16_encoding(SERIES_SCALE.get(f, 2e-3)) for f in feats}
    return ds, enc


def as_stored(ds: xr.Dataset, encoding: dict[str, dict]) -> xr.Dataset:
    """The values a reader would get back from ``write_zarr_atomic(ds, path, encoding)``.

    Each encoded variable goes through xarray's own CF encoding (e.g. int16
    ``round(value / scale)``, NaN as the fill value) and decoding with the attributes as
    Zarr's JSON gives them back (float64), then float64 is narrowed to float32 as
    :func:`open_zarr` does, so a computation on the result equals one on the stored
    partition, bit for bit. Nothing is written; dask-backed inputs stay lazy.
    """
    out = ds.copy()
    for name, enc in encoding.items():
        var = ds[name].variable.copy(deep=False)
        var.encoding = dict(enc)
        coded = xr.conventions.encode_cf_variable(var, name=name)
        coded.attrs = {k: float(v) if isinstance(v, np.floating) else v
                       for k, v in coded.attrs.items()}
        decoded = xr.conventions.decode_cf_variable(name, coded)
        if decoded.dtype == np.float64:
            decoded = decoded.astype(np.float32)
        out[name] = xr.DataArray(decoded, coords=ds[name].coords)
    return out


def dataset_to_series(ds: xr.Dataset) -> xr.DataArray:
    """Inverse of :func:`series_to_dataset`: stack ``series_<feature>`` into (feature, ...)."""
    feats = list(ds.attrs["features"])
    return xr.concat([ds[f"series_{f}"] for f in feats], dim="feature").assign_coords(
        feature=feats)


@contextmanager
def folder_lock(folder: str | Path | ObjPath) -> Iterator[None]:
    """Exclusive inter-process lock on ``folder`` (created if needed) for the block.

    An ``fcntl`` lock on ``<folder>/.lock``; released when the block ends or the process
    dies, so a killed writer never leaves it held. On object storage a lease object
    created with a conditional PUT (``prefix_lock``), broken once its lease has run out.
    """
    loc = location(folder)
    if isinstance(loc, ObjPath):
        with prefix_lock(loc):
            yield
        return
    path = loc
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
