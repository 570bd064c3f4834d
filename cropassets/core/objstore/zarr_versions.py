"""Zarr partitions on an object store, published by one pointer object written last.

A Zarr store is many objects, and S3 has no rename, so a partition at ``<url>`` (e.g.
``s3://bucket/data/weekly_cube/T00/2025-05-05.zarr``) is laid out as::

    <url>/versions/<uuid>/...   one complete Zarr store per write (never modified after)
    <url>/CURRENT               {"version": "<uuid>"}: the published one (one atomic PUT)

A writer writes a whole new version, then PUTs ``CURRENT``, then deletes the other versions
(the replaced one and orphans of writers killed before their ``CURRENT``). A reader reads
``CURRENT`` first and opens only that version, so it never sees a half-written partition or
a mix of two writes: a writer killed at any moment leaves the previous ``CURRENT`` and its
complete version in place. This is the object-store form of the local temp dir + rename.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any

from cropassets.core.objstore.objects import (
    S3Options,
    bucket_store,
    delete_prefix,
    describe_error,
    get_bytes,
    join_url,
    put_bytes,
    split_url,
)

if TYPE_CHECKING:
    import xarray as xr

POINTER = "CURRENT"
VERSIONS = "versions"


def _zarr_store(url: str, options: S3Options, read_only: bool):
    from zarr.storage import ObjectStore

    bucket, key = split_url(url)
    return ObjectStore(bucket_store(bucket, options, key), read_only=read_only)


def current_version(url: str, options: S3Options) -> str:
    """The published version id of the partition at ``url``.

    Raises:
        FileNotFoundError: the partition has not been written (names ``url``).
    """
    try:
        doc = json.loads(get_bytes(join_url(url, POINTER), options))
    except FileNotFoundError:
        raise FileNotFoundError(f"partition {url} has not been written") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version:
        raise ValueError(f"{join_url(url, POINTER)} does not name a version: {doc!r}")
    return version


def write_zarr_versioned(ds: xr.Dataset, url: str, encoding: dict[str, dict] | None,
                         options: S3Options, orphan_age_s: float = 3600.0) -> int:
    """Write ``ds`` as a new version of the partition at ``url`` and publish it.

    After publishing, the version it replaced is deleted, and so are versions no
    ``CURRENT`` names whose newest object is older than ``orphan_age_s`` (left by killed
    writers; younger ones may belong to a writer still at work). Returns the bytes written
    (the sum of the new version's object sizes).
    """
    from obstore.exceptions import BaseError

    version = uuid.uuid4().hex
    target = join_url(url, VERSIONS, version)
    try:
        ds.to_zarr(_zarr_store(target, options, read_only=False), mode="w",
                   encoding=encoding or {}, consolidated=True, zarr_format=2)
    except (OSError, BaseError) as exc:
        try:
            delete_prefix(target, options)
        except OSError:
            pass  # unreachable store: the orphan is removed by the next write
        raise describe_error(target, exc, options) from exc
    size = sum(m["size"] for m in _objects(target, options))
    previous = current_version(url, options) if partition_exists(url, options) else None
    put_bytes(join_url(url, POINTER), json.dumps({"version": version}).encode(), options)
    newest: dict[str, dt.datetime] = {}
    for m in _objects(join_url(url, VERSIONS), options):
        v = m["path"].split(f"/{VERSIONS}/", 1)[1].split("/", 1)[0]
        newest[v] = max(newest.get(v, m["last_modified"]), m["last_modified"])
    now = dt.datetime.now(dt.UTC)
    for v, when in newest.items():
        if v != version and (v == previous or (now - when).total_seconds() >= orphan_age_s):
            delete_prefix(join_url(url, VERSIONS, v), options)
    return size


def _objects(url: str, options: S3Options) -> list[Any]:
    """Metadata (path, size, last_modified) of the objects under ``url/``."""
    import obstore

    bucket, key = split_url(url)
    try:
        return [m for batch in obstore.list(bucket_store(bucket, options), key + "/")
                for m in batch]
    except Exception as exc:
        raise describe_error(url, exc, options) from None


def open_zarr_versioned(url: str, options: S3Options, dask: bool = False) -> xr.Dataset:
    """Open the published version of the partition at ``url`` (lazily), float32 like local."""
    import numpy as np
    import xarray as xr

    target = join_url(url, VERSIONS, current_version(url, options))
    ds = xr.open_zarr(_zarr_store(target, options, read_only=True), consolidated=True,
                      zarr_format=2, decode_coords="all", chunks={} if dask else None)
    for name, var in ds.data_vars.items():
        if var.dtype == np.float64:
            ds[name] = var.astype(np.float32)
    return ds


def partition_exists(url: str, options: S3Options) -> bool:
    """Whether the partition at ``url`` has a published version."""
    try:
        current_version(url, options)
    except FileNotFoundError:
        return False
    return True
