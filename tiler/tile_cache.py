"""Rendered tiles kept for reuse: a byte-bounded in-process LRU and an optional tile folder.

A tile is identified by :class:`TileKey`: layer, week, the week's published version (a
hash of its manifest, :meth:`tiler.catalog.Catalog.layer_version`), z/x/y and tile size.
A republished week gets a new version, so a key never names two different pictures.

* :class:`MemoryTiles`: LRU by bytes, thread-safe; never holds more than its bound.
* :class:`DiskTiles`: ``<folder>/<layer>/<week>/<version>/<tilesize>/<z>/<x>/<y>.png``
  (``.204`` for an empty tile), each written once, atomically (temp file + rename).
  Any ``OSError`` (unwritable or full folder) is logged, at most once a minute per
  kind, and the tile is served anyway. Folders of superseded versions of a week are
  removed when a new version is first written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ENTRY_OVERHEAD = 200
"""Bytes counted per cached tile besides its body (key, entry, dict slot), roughly."""


@dataclass(frozen=True)
class TileKey:
    """What a rendered tile depends on."""

    layer: str
    week: str
    version: str
    z: int
    x: int
    y: int
    tilesize: int = 256


@dataclass(frozen=True)
class Tile:
    """A rendered tile: status 200 with a PNG body, or 204 (nothing there)."""

    status: int
    body: bytes = b""
    media_type: str = "image/png"

    @property
    def size(self) -> int:
        """Bytes counted against a cache bound."""
        return len(self.body) + ENTRY_OVERHEAD


class MemoryTiles:
    """Least-recently-used tiles, at most ``max_bytes`` (body bytes + per-entry overhead)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._entries: OrderedDict[TileKey, Tile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now (never more than ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: TileKey) -> Tile | None:
        """The cached tile of ``key`` (now the most recently used), or None."""
        with self._lock:
            tile = self._entries.get(key)
            if tile is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return tile

    def put(self, key: TileKey, tile: Tile) -> bool:
        """Keep ``tile``, evicting the least recently used; False if it can never fit."""
        size = tile.size
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            while self._entries and self._bytes + size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size
                self.evictions += 1
            self._entries[key] = tile
            self._bytes += size
            return True

    def stats(self) -> dict[str, int]:
        """Entries, bytes, bound, hits, misses and evictions so far."""
        return {"entries": len(self._entries), "bytes": self._bytes,
                "max_bytes": self.max_bytes, "hits": self.hits, "misses": self.misses,
                "evictions": self.evictions}


class ThrottledLog:
    """Warnings logged at most once per ``every_s`` seconds per kind (no log flood)."""

    def __init__(self, log: logging.Logger, every_s: float = 60.0) -> None:
        self.log = log
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str) -> None:
        """Log ``message`` unless a warning of ``kind`` was logged less than every_s ago."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.every_s:
                return
            self._last[kind] = now
        self.log.warning("%s", message)


class DiskTiles:
    """A folder of rendered tiles; problems with it are logged, never raised."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).absolute()
        self._seen: dict[tuple[str, str], str] = {}  # (layer, week) -> newest version written
        self._lock = threading.Lock()
        self._log = ThrottledLog(logger)
        self.write_errors = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.folder, prefix=".probe-")
            probe.close()
        except OSError as e:
            self._warn("unusable", f"tile folder {self.folder} is not usable ({e}); tiles "
                                   "are rendered from source and kept in memory only")

    def path(self, key: TileKey, status: int = 200) -> Path:
        """File of ``key`` (``.png``, or ``.204`` for an empty tile)."""
        return (self.folder / key.layer / key.week / key.version / str(key.tilesize) /
                str(key.z) / str(key.x) / f"{key.y}.{'png' if status == 200 else '204'}")

    def get(self, key: TileKey) -> Tile | None:
        """The stored tile of ``key``, or None (also when the folder cannot be read)."""
        for status in (200, 204):
            path = self.path(key, status)
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as e:
                self._warn("read", f"cannot read the tile folder {self.folder} ({e}); "
                                   "rendering from source")
                return None
            if status == 200 and not body:  # a torn file cannot exist (rename), but be safe
                return None
            return Tile(status, body if status == 200 else b"")
        return None

    def put(self, key: TileKey, tile: Tile) -> bool:
        """Write ``tile`` once (temp file + rename); False (and a log line) on any OSError."""
        path = self.path(key, tile.status)
        if path.exists():
            return True
        self._prune_superseded(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "wb") as f:
                f.write(tile.body)
            os.replace(tmp, path)
            return True
        except OSError as e:
            self.write_errors += 1
            self._warn(f"write-{e.errno}", f"cannot write to the tile folder {self.folder} "
                                           f"({e}); serving from source and memory")
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            return False

    def _prune_superseded(self, key: TileKey) -> None:
        """Remove the folders of other versions of this layer and week (once per version)."""
        week_key = (key.layer, key.week)
        with self._lock:
            if self._seen.get(week_key) == key.version:
                return
            self._seen[week_key] = key.version
        folder = self.folder / key.layer / key.week
        try:
            old = [p for p in folder.iterdir() if p.is_dir() and p.name != key.version]
        except OSError:
            return
        for p in old:
            shutil.rmtree(p, ignore_errors=True)
            logger.info("removed the tiles of superseded version %s of %s %s",
                        p.name, key.layer, key.week)

    def _warn(self, kind: str, message: str) -> None:
        self._log.warning(kind, message)
