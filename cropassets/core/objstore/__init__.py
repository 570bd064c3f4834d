"""Object storage: the data root as ``s3://bucket/prefix`` (obstore, GDAL ``/vsis3/``).

A :data:`Location` is a local ``Path`` (today's behaviour: temp + rename) or an
:class:`ObjPath`. On object storage single objects (COGs, JSON records, manifests,
checkpoints, ``.npz``) are one PUT each (atomic for readers); Zarr partitions are
immutable versions published by a pointer written last (:mod:`.zarr_versions`). Errors name
the ``s3://`` URL (:class:`ObjectStoreError`); transient ones are retried a bounded number
of times first. Layout and publish order: docs/CONTRACTS.md "Object storage".
"""

from __future__ import annotations

from cropassets.core.objstore.gdal_s3 import configure_gdal, gdal_options
from cropassets.core.objstore.obj_lock import prefix_lock
from cropassets.core.objstore.objpath import (
    Location,
    ObjPath,
    ObjStat,
    gdal_path,
    glob_sorted,
    inside,
    is_url,
    location,
    relative_posix,
)
from cropassets.core.objstore.store_options import ObjectStoreError, StoreOptions
from cropassets.core.objstore.zarr_versions import (
    POINTER,
    collect,
    current_version,
    delete_prefix,
    open_store_error,
    prefix_size,
    resolve_zarr,
    versioned_write,
    versions,
    zarr_store,
)

__all__ = [
    "POINTER",
    "Location",
    "ObjPath",
    "ObjStat",
    "ObjectStoreError",
    "StoreOptions",
    "collect",
    "configure_gdal",
    "current_version",
    "delete_prefix",
    "gdal_options",
    "gdal_path",
    "glob_sorted",
    "inside",
    "is_url",
    "location",
    "open_store_error",
    "prefix_lock",
    "prefix_size",
    "relative_posix",
    "resolve_zarr",
    "versioned_write",
    "versions",
    "zarr_store",
]
