"""HTTP caching of the layer routes: versions in URLs, ETag, 304 and tiles from the caches.

An ASGI middleware in front of the app. For ``GET`` of a layer's PNG tile or TileJSON
(plain ``/layers/{layer}/{week}/...`` or versioned ``/layers/{layer}/{week}/v/{version}/...``)
whose week, layer and tile index are valid and whose version (if given) is current:

* ``ETag: "<version>"``; ``Cache-Control: public, max-age=31536000, immutable`` on versioned
  URLs (a republished week has another version, so the answer never changes), ``no-cache``
  on plain ones (revalidate: the answer changes when the week is republished);
* ``304`` without rendering when ``If-None-Match`` names that ETag (or ``*``); a malformed
  or huge header is simply no match;
* tiles (200 and 204) come from the in-process LRU, else the tile folder, else are
  rendered by the app once (concurrent requests for the same tile wait for one render;
  at most :data:`MAX_RENDERS` renders at once) and kept in both. Only the PNG route
  without other query parameters than ``tilesize`` (256, 512) is cached; everything
  else, and every error, is the app's answer unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import HTTPException

from tiler.catalog import Catalog
from tiler.errors import TILE_SIZES, check_tile_index
from tiler.tile_cache import DiskTiles, MemoryTiles, ThrottledLog, Tile, TileKey

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MAX_RENDERS = max(2, os.cpu_count() or 2)
"""Cacheable tiles rendered at once; more wait their turn (first come, first served).
On 2 busy cores, 20 clients' cold p95 fell from about 660 to 505 ms (bench_tiles.py) at
the same throughput: rendering is CPU-bound, and 20 renders at once only share the CPUs."""
MAX_IF_NONE_MATCH = 4096
"""Characters of ``If-None-Match`` looked at; a longer header is ignored (and logged)."""

_ROUTE = re.compile(
    r"/layers/(?P<layer>[a-z]{1,20})/(?P<week>\d{4}-\d{2}-\d{2})(?:/v/(?P<version>[^/]{1,64}))?"
    r"/(?:tiles/WebMercatorQuad/(?P<z>\d{1,2})/(?P<x>\d{1,10})/(?P<y>\d{1,10})\.png"
    r"|WebMercatorQuad/tilejson\.json)")


@dataclass(frozen=True)
class LayerRequest:
    """A tile or TileJSON request as the middleware reads it."""

    layer: str
    week: str
    version: str | None   # None: the plain (unversioned) URL
    z: int | None         # None: TileJSON
    x: int = 0
    y: int = 0
    tilesize: int = 256


def parse_request(scope: Scope) -> LayerRequest | None:
    """The layer request of a GET ``scope``, or None when the middleware leaves it alone."""
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    m = _ROUTE.fullmatch(path)
    if m is None:
        return None
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    tilesize = 256
    for name, value in query:
        if name != "tilesize" or m["z"] is None or value not in TILE_SIZES:
            return None  # the app answers (and ignores or refuses the parameter)
        tilesize = int(value)
    if m["z"] is None:
        return LayerRequest(m["layer"], m["week"], m["version"], None)
    return LayerRequest(m["layer"], m["week"], m["version"], int(m["z"]), int(m["x"]),
                        int(m["y"]), tilesize)


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` (weak comparison) names ``etag``; False for odd headers."""
    if not header:
        return False
    if len(header) > MAX_IF_NONE_MATCH:
        return False
    if header.strip() == "*":
        return True
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class LayerCacheMiddleware:
    """ETag/304/Cache-Control for the layer routes and the tile caches in front of them."""

    def __init__(self, app: ASGIApp, catalog: Catalog, memory: MemoryTiles | None = None,
                 disk: DiskTiles | None = None, max_renders: int | None = None) -> None:
        self.app = app
        self.catalog = catalog
        self.memory = memory
        self.disk = disk
        self._inflight: dict[TileKey, asyncio.Future[Tile | None]] = {}
        self._log = ThrottledLog(logger)
        self._background: set[asyncio.Future[Any]] = set()
        self._renders = asyncio.Semaphore(max_renders or MAX_RENDERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve from the caches what can be; pass everything else to the app."""
        req = parse_request(scope) if scope["type"] == "http" and scope["method"] == "GET" \
            else None
        if req is None:
            await self.app(scope, receive, send)
            return
        try:
            version = self.catalog.layer_version(req.layer, req.week)
            if req.z is not None:
                check_tile_index({"z": req.z, "x": req.x, "y": req.y})
        except HTTPException:  # the app's routes answer with the reason
            await self.app(scope, receive, send)
            return
        if req.version is not None and req.version != version:
            await self.app(scope, receive, send)  # 404 naming the current version
            return
        headers = [(b"etag", f'"{version}"'.encode()),
                   (b"cache-control", (IMMUTABLE if req.version else REVALIDATE).encode())]
        if etag_matches(self._if_none_match(scope), f'"{version}"'):
            await _respond(send, 304, headers)
            return
        if req.z is None:  # TileJSON: built each time (cheap), with the cache headers
            await self.app(scope, receive, _adding_headers(send, headers))
            return
        key = TileKey(req.layer, req.week, version, req.z, req.x, req.y, req.tilesize)
        tile = await self._cached(key)
        if tile is None:
            tile = await self._render_once(key, scope, receive, send)
            if tile is None:  # the app's error answer was sent
                return
        if tile.status == 200:
            headers += [(b"content-type", tile.media_type.encode()),
                        (b"content-length", str(len(tile.body)).encode())]
        await _respond(send, tile.status, headers, tile.body)

    def _if_none_match(self, scope: Scope) -> str | None:
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"]
        header = ", ".join(values)
        if len(header) > MAX_IF_NONE_MATCH:
            self._log.warning("if-none-match", f"ignored an If-None-Match header of "
                                               f"{len(header)} characters (at most "
                                               f"{MAX_IF_NONE_MATCH} are read)")
        return header or None

    async def _cached(self, key: TileKey) -> Tile | None:
        tile = self.memory.get(key) if self.memory is not None else None
        if tile is None and self.disk is not None:
            tile = await anyio.to_thread.run_sync(self.disk.get, key)
            if tile is not None and self.memory is not None:
                self.memory.put(key, tile)
        return tile

    async def _render_once(self, key: TileKey, scope: Scope, receive: Receive, send: Send
                           ) -> Tile | None:
        """Render ``key`` through the app, once for all concurrent requests of it."""
        pending = self._inflight.get(key)
        if pending is not None:
            tile = await asyncio.shield(pending)
            if tile is not None:
                return tile
            return await self._render(key, scope, receive, send)  # that render failed
        future: asyncio.Future[Tile | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        tile = None
        try:
            tile = await self._render(key, scope, receive, send)
        finally:
            del self._inflight[key]
            future.set_result(tile)
        return tile

    async def _render(self, key: TileKey, scope: Scope, receive: Receive, send: Send
                      ) -> Tile | None:
        """The app's tile; kept when 200/204 and still current, else its answer is sent."""
        start: Message = {}
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        async with self._renders:
            await self.app(scope, receive, capture)
        status = start.get("status", 500)
        if status not in (200, 204):
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(body)})
            return None
        media = next((v.decode("latin-1") for k, v in start.get("headers", [])
                      if k.lower() == b"content-type"), "image/png")
        tile = Tile(status, b"".join(body) if status == 200 else b"", media)
        try:
            current = self.catalog.layer_version(key.layer, key.week)
        except HTTPException:
            current = None
        if current == key.version:  # not republished while it rendered
            if self.memory is not None:
                self.memory.put(key, tile)
            if self.disk is not None:
                job = asyncio.get_running_loop().run_in_executor(None, self.disk.put, key, tile)
                self._background.add(job)
                job.add_done_callback(self._background.discard)
        return tile


def _adding_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    """``send`` that sets ``headers`` on a 200 answer (replacing headers of those names)."""
    names = {k for k, _ in headers}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message = {**message, "headers": kept + headers}
        await send(message)

    return wrapped


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                   body: bytes = b"") -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
