"""Object storage (S3-compatible) for a data root given as ``s3://bucket/prefix``.

Single objects are written with one PUT (atomic on S3); Zarr partitions as immutable
versions published by a pointer object written last (``zarr_versions``). Errors name the
URL; transient failures are retried boundedly. No Dagster, no environment access: the
connection settings come in as :class:`S3Options` (built by ``cropassets.settings``).
"""

from __future__ import annotations

from cropassets.core.objstore.objects import (
    ObjectStoreError,
    S3Options,
    delete_prefix,
    exists,
    gdal_env,
    get_bytes,
    is_object_url,
    join_url,
    list_keys,
    put_bytes,
    put_file,
    split_url,
)
from cropassets.core.objstore.zarr_versions import (
    current_version,
    open_zarr_versioned,
    partition_exists,
    write_zarr_versioned,
)

__all__ = [
    "ObjectStoreError",
    "S3Options",
    "current_version",
    "delete_prefix",
    "exists",
    "gdal_env",
    "get_bytes",
    "is_object_url",
    "join_url",
    "list_keys",
    "open_zarr_versioned",
    "partition_exists",
    "put_bytes",
    "put_file",
    "split_url",
    "write_zarr_versioned",
]
