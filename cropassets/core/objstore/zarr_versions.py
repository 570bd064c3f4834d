"""Zarr partitions on object storage: immutable versions published by a pointer.

A Zarr store is many objects, and S3 has no rename, so a partition
``<root>/<asset>/<tile>/<week>.zarr`` is laid out as::

    <week>.zarr/CURRENT            the published version id (one small object, written last)
    <week>.zarr/v/<version>/...    one complete Zarr (v2) store per write

A writer puts a whole store under a fresh version prefix (``<ms since epoch>-<random>``),
then one PUT of ``CURRENT`` publishes it: a reader resolves ``CURRENT`` first and then
reads only that version, so it sees the old store or the new one, never a mix; a writer
killed before its PUT of ``CURRENT`` leaves an orphan version nobody reads. After
publishing, the writer deletes versions other than the new one and the one it replaced
(kept for readers that resolved it just before) once they are older than
``StoreOptions.orphan_grace_s`` (a concurrent writer's version in progress is younger).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cropassets.core.objstore.obj_client import is_store_error, translate
from cropassets.core.objstore.objpath import POINTER, Location, ObjPath

VERSIONS = "v"
VERSION_ID = re.compile(r"^(?P<ms>\d{13})-[0-9a-f]{8}$")


def new_version_id() -> str:
    """``<13-digit ms since epoch>-<8 hex>``: sortable by time, unique."""
    return f"{time.time_ns() // 1_000_000:013d}-{uuid.uuid4().hex[:8]}"


def current_version(path: ObjPath) -> str | None:
    """The published version id of the store at ``path`` (None if never published).

    Raises:
        ValueError: The pointer holds something else than a version id, naming it.
    """
    try:
        text = (path / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    if not VERSION_ID.match(text):
        raise ValueError(f"{path / POINTER} does not name a version: {text[:60]!r}")
    return text


def open_store_error(err: BaseException, path: ObjPath) -> BaseException:
    """The error to raise when opening the store at ``path`` failed with ``err``."""
    return translate(err, path.bucket, path.key, "read") if is_store_error(err) else err


def resolve_zarr(path: Location) -> Location:
    """Where the published store of ``path`` is.

    ``path`` itself locally, else its current version prefix.

    Raises:
        FileNotFoundError: Nothing published at ``path`` ("has not been written", naming
            the URL).
    """
    if not isinstance(path, ObjPath):
        return path
    version = current_version(path)
    if version is None:
        raise FileNotFoundError(f"partition {path} has not been written")
    return path / VERSIONS / version


def zarr_store(target: Location, read_only: bool = False) -> Any:
    """What ``xarray.to_zarr`` / ``open_zarr`` / ``zarr.open_array`` take for ``target``.

    The local path as a string, or a ``zarr.storage.ObjectStore`` on the version prefix.
    """
    if not isinstance(target, ObjPath):
        return str(target)
    from zarr.storage import ObjectStore

    from cropassets.core.objstore.obj_client import store

    return ObjectStore(store(target.bucket, target.options, prefix=target.key),
                       read_only=read_only)


def prefix_size(path: ObjPath) -> int:
    """Total bytes of the objects under ``path``."""
    return sum(int(m.get("size", 0)) for m in path.walk_objects())


def delete_prefix(path: ObjPath) -> int:
    """Delete every object under ``path``; returns how many."""
    from cropassets.core.objstore.obj_client import delete

    keys = [str(m["path"]) for m in path.walk_objects()]
    if keys:
        delete(path.bucket, keys, path.options)
    return len(keys)


def versions(path: ObjPath) -> dict[str, list[str]]:
    """Version id -> its object keys, for every version stored under ``path``."""
    out: dict[str, list[str]] = {}
    base = len((path / VERSIONS).key) + 1
    for meta in (path / VERSIONS).walk_objects():
        key = str(meta["path"])
        out.setdefault(key[base:].split("/")[0], []).append(key)
    return out


def collect(path: ObjPath, keep: set[str], grace_s: float) -> list[str]:
    """Delete versions of ``path`` not in ``keep`` and older than ``grace_s``; returns them."""
    from cropassets.core.objstore.obj_client import delete

    now_ms = time.time_ns() // 1_000_000
    gone = []
    for vid, keys in sorted(versions(path).items()):
        m = VERSION_ID.match(vid)
        if vid in keep or (m and now_ms - int(m["ms"]) < grace_s * 1000):
            continue
        delete(path.bucket, keys, path.options)
        gone.append(vid)
    return gone


@contextmanager
def versioned_write(path: ObjPath) -> Iterator[ObjPath]:
    """Yield a fresh version prefix of ``path``; on success publish it (PUT ``CURRENT``).

    Then old versions are collected. On error the new version is deleted (best effort:
    what is left is an orphan, collected later) and ``CURRENT`` is left as it was.
    """
    previous = current_version(path)
    vid = new_version_id()
    target = path / VERSIONS / vid
    try:
        yield target
    except BaseException as err:
        try:
            delete_prefix(target)
        except OSError:
            pass  # e.g. the store became unreachable: an orphan for the next write
        if is_store_error(err):  # raised inside zarr: name the partition
            raise translate(err, path.bucket, path.key, "write") from err
        raise
    (path / POINTER).write_text(vid)
    collect(path, {vid, previous or vid}, path.options.orphan_grace_s)
