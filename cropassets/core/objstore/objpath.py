"""``ObjPath``: an ``s3://bucket/key`` that reads like a ``pathlib.Path``.

The data root is a :data:`Location`: a local ``Path`` (unchanged behaviour) or an
:class:`ObjPath`. ``ObjPath`` offers the part of the ``Path`` API the pipeline and the
tiler use (``/``, ``name``, ``parent``, ``with_suffix``, ``exists``, ``read_bytes``,
``write_bytes``, ``glob``, ``stat``, ``resolve``, ``relative_to`` ...), each one request;
it is frozen and picklable (it carries its :class:`StoreOptions`), so Dask tasks take it as
an argument. It has no ``__fspath__`` on purpose: handing it to a local-file API fails
loudly instead of writing under a folder named ``s3:``. GDAL gets :func:`gdal_path`.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any, Union

from cropassets.core.objstore import obj_client
from cropassets.core.objstore.store_options import StoreOptions

SCHEMES = ("s3://",)
POINTER = "CURRENT"
"""Name of the object naming the published version of a Zarr store (``zarr_versions``)."""


@dataclass(frozen=True)
class ObjStat:
    """What ``stat()`` gives for an object: size, modification time and ETag."""

    st_size: int
    st_mtime_ns: int
    etag: str


@dataclass(frozen=True)
class ObjPath:
    """An object (or a prefix, like a folder) in an S3 bucket.

    Attributes:
        bucket: Bucket name.
        key: Key without leading or trailing ``/`` ("" = the bucket's root).
        options: How to reach the store (not part of equality or repr).
    """

    bucket: str
    key: str = ""
    options: StoreOptions = field(default_factory=StoreOptions, compare=False, repr=False)

    @classmethod
    def from_url(cls, url: str, options: StoreOptions | None = None) -> ObjPath:
        """Parse ``s3://bucket[/prefix]``.

        Raises:
            ValueError: Not an ``s3://`` URL with a bucket, naming it.
        """
        if not url.startswith("s3://"):
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        bucket, _, key = url[len("s3://"):].partition("/")
        if not bucket or any(c in bucket for c in " \\?#"):
            raise ValueError(f"{url!r} has no valid bucket name (s3://bucket/prefix)")
        return cls(bucket, key.strip("/"), options or StoreOptions())

    # ---- pure path operations ----------------------------------------------------------
    def __str__(self) -> str:
        return obj_client.url_of(self.bucket, self.key)

    @property
    def url(self) -> str:
        """``s3://bucket/key``."""
        return str(self)

    def as_posix(self) -> str:
        """The URL (as ``Path.as_posix`` gives the path)."""
        return str(self)

    def _with_key(self, key: str) -> ObjPath:
        return ObjPath(self.bucket, key.strip("/"), self.options)

    def __truediv__(self, other: str | PurePosixPath | Path) -> ObjPath:
        """The key joined with ``other`` (no normalisation, as ``Path``)."""
        part = str(other).strip("/")
        if not part:
            return self
        return self._with_key(f"{self.key}/{part}" if self.key else part)

    def joinpath(self, *parts: str) -> ObjPath:
        """``self / part / ...``."""
        out = self
        for p in parts:
            out = out / p
        return out

    @property
    def name(self) -> str:
        """Last key segment."""
        return posixpath.basename(self.key)

    @property
    def suffix(self) -> str:
        """Extension of :attr:`name` (``.tif``)."""
        return PurePosixPath(self.name).suffix if self.name else ""

    @property
    def stem(self) -> str:
        """``name`` without its extension."""
        return PurePosixPath(self.name).stem if self.name else ""

    @property
    def parent(self) -> ObjPath:
        """The key one segment up (the bucket root stays itself)."""
        return self._with_key(posixpath.dirname(self.key))

    @property
    def parts(self) -> tuple[str, ...]:
        """``s3://bucket`` and the key segments."""
        return (f"s3://{self.bucket}", *filter(None, self.key.split("/")))

    def with_name(self, name: str) -> ObjPath:
        """Sibling called ``name``."""
        return self.parent / name

    def with_suffix(self, suffix: str) -> ObjPath:
        """Same key with ``suffix`` as extension ("" removes it)."""
        return self.parent / str(PurePosixPath(self.name).with_suffix(suffix))

    def resolve(self, strict: bool = False) -> ObjPath:
        """``.`` and ``..`` collapsed; a key climbing above the bucket keeps its ``..``."""
        key = posixpath.normpath(self.key) if self.key else ""
        return self._with_key("" if key == "." else key)

    def absolute(self) -> ObjPath:
        """Itself: an object key is absolute."""
        return self

    def is_relative_to(self, other: object) -> bool:
        """Same bucket and under ``other``'s key (a key climbing out with ``..`` never is)."""
        if not isinstance(other, ObjPath) or other.bucket != self.bucket:
            return False
        if self.key.startswith("..") or self.key.startswith("../"):
            return False
        return not other.key or self.key == other.key or self.key.startswith(other.key + "/")

    def relative_to(self, other: ObjPath) -> PurePosixPath:
        """The key relative to ``other`` (ValueError when not under it)."""
        if not self.is_relative_to(other):
            raise ValueError(f"{self} is not under {other}")
        return PurePosixPath(self.key[len(other.key):].lstrip("/") or ".")

    def gdal(self) -> str:
        """``/vsis3/bucket/key``, GDAL's name for the object (see :func:`gdal_path`)."""
        return f"/vsis3/{self.bucket}/{self.key}"

    # ---- requests ----------------------------------------------------------------------
    def stat(self) -> ObjStat:
        """Size, modification time and ETag (FileNotFoundError naming the URL if none)."""
        meta = obj_client.head(self.bucket, self.key, self.options)
        if meta is None:
            raise FileNotFoundError(f"{self} does not exist")
        modified = meta.get("last_modified")
        ns = int(modified.timestamp() * 1e9) if modified is not None else 0
        return ObjStat(int(meta.get("size", 0)), ns, str(meta.get("e_tag") or ""))

    def is_file(self) -> bool:
        """An object exists at this key."""
        return bool(self.key) and obj_client.head(self.bucket, self.key, self.options) is not None

    def is_dir(self) -> bool:
        """Some object exists under ``key/`` (a prefix is a folder only while it holds one)."""
        return next(obj_client.list_objects(self.bucket, self.key, self.options), None) is not None

    def exists(self) -> bool:
        """An object at this key, or a published versioned Zarr store (its pointer)."""
        return self.is_file() or (self / POINTER).is_file()

    def read_bytes(self) -> bytes:
        """The object's bytes (one GET; FileNotFoundError naming the URL)."""
        return obj_client.get(self.bucket, self.key, self.options)

    def read_text(self, encoding: str = "utf-8") -> str:
        """The object decoded as text."""
        return self.read_bytes().decode(encoding)

    def open(self, mode: str = "rb") -> BytesIO:
        """The whole object in memory, for readers that want a file (read-only)."""
        if mode not in ("r", "rb"):
            raise ValueError(f"{self}: objects open read-only here; write with write_bytes")
        return BytesIO(self.read_bytes())

    def write_bytes(self, data: bytes) -> int:
        """One PUT: readers see the old object or the new one, never part of it."""
        obj_client.put(self.bucket, self.key, bytes(data), self.options)
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        """``write_bytes`` of the encoded text."""
        return self.write_bytes(text.encode(encoding))

    def upload(self, local: Path) -> None:
        """PUT the local file ``local`` here.

        Streamed; a multipart upload stays invisible until it completes.
        """
        obj_client.put(self.bucket, self.key, Path(local), self.options)

    def unlink(self, missing_ok: bool = False) -> None:
        """Delete the object (FileNotFoundError unless ``missing_ok``)."""
        if not missing_ok and not self.is_file():
            raise FileNotFoundError(f"{self} does not exist")
        obj_client.delete(self.bucket, [self.key], self.options)

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: prefixes need no creation."""

    def walk_objects(self) -> Iterator[dict[str, Any]]:
        """Every object under this prefix (``path`` = full key, ``size``)."""
        return obj_client.list_objects(self.bucket, self.key, self.options)

    def glob(self, pattern: str) -> Iterator[ObjPath]:
        """Objects under this prefix matching ``pattern`` segment by segment.

        ``*.json``, ``*/*.tif``; no ``**``.
        """
        want = pattern.strip("/").split("/")
        base = len(self.key) + 1 if self.key else 0
        for meta in self.walk_objects():
            rel = str(meta["path"])[base:].split("/")
            if len(rel) == len(want) and all(fnmatch.fnmatchcase(r, w)
                                             for r, w in zip(rel, want, strict=True)):
                yield self._with_key(str(meta["path"]))

    def iterdir(self) -> Iterator[ObjPath]:
        """Direct children (objects and sub-prefixes), each once."""
        seen: set[str] = set()
        base = len(self.key) + 1 if self.key else 0
        for meta in self.walk_objects():
            first = str(meta["path"])[base:].split("/")[0]
            if first not in seen:
                seen.add(first)
                yield self / first


Location = Union[Path, ObjPath]  # noqa: UP007 (a runtime alias)
"""Where a file or a store lives: a local path or an object in a bucket."""


def is_url(value: object) -> bool:
    """``value`` is an object-store URL this package handles (``s3://...``)."""
    return isinstance(value, str) and value.startswith(SCHEMES)


def location(value: str | os.PathLike[str] | ObjPath, options: StoreOptions | None = None
             ) -> Location:
    """A :data:`Location` from a path, a URL or a location (returned as is).

    A local path stays a plain ``Path`` (exactly what the code did before); an ``s3://``
    URL becomes an :class:`ObjPath` with ``options``.
    """
    if isinstance(value, ObjPath):
        return value
    if is_url(value):
        return ObjPath.from_url(str(value), options)
    if isinstance(value, str) and "://" in value:
        raise ValueError(f"{value!r}: only local paths and s3://bucket/prefix URLs are "
                         "supported as storage locations")
    return Path(value)


def inside(path: Location, root: Location) -> bool:
    """``path`` lies under ``root`` (both local, or both in one bucket)."""
    if isinstance(path, ObjPath) or isinstance(root, ObjPath):
        return isinstance(path, ObjPath) and path.is_relative_to(root)
    return path.is_relative_to(root)


def relative_posix(path: Location, root: Location) -> str:
    """``path`` relative to ``root`` as a POSIX string (ValueError when not under it)."""
    if not inside(path, root):
        raise ValueError(f"{path} is not under {root}")
    if isinstance(path, ObjPath) and isinstance(root, ObjPath):
        return path.relative_to(root).as_posix()
    return Path(str(path)).relative_to(Path(str(root))).as_posix()


def glob_sorted(folder: Location, pattern: str) -> list[Location]:
    """``folder.glob(pattern)`` as a list sorted by name (local or object store)."""
    found: list[Location] = list(folder.glob(pattern))
    return sorted(found, key=str)


def gdal_path(value: str | os.PathLike[str] | ObjPath) -> str:
    """The name GDAL/rasterio opens: the path, or ``/vsis3/bucket/key``.

    For an object, GDAL's S3 options are configured from the location's
    :class:`StoreOptions` first (once per process).
    """
    loc = location(value) if not isinstance(value, ObjPath) else value
    if isinstance(loc, ObjPath):
        from cropassets.core.objstore.gdal_s3 import configure_gdal

        configure_gdal(loc.options, loc.bucket)
        return loc.gdal()
    return str(loc)
