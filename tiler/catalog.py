"""Published week layers as the tiler sees them: manifests, MosaicJSONs and COG paths.

Everything the tiler opens is found here, from ids the client sends (week key, layer,
tile, product), never from a client path or URL. Each id is checked against the published
manifests, and every resolved file must lie inside the data root; anything else is an
:class:`~fastapi.HTTPException` whose detail names the value and what was expected (and
never a filesystem path). Files are re-read when their mtime or size changes, so weeks
published while the server runs appear without a restart.

Each published week has a *version*: a short hash of its manifest file. ``week_layers``
rewrites the manifest whenever it (re)publishes a week (its ``published`` time changes with
it), so the version names one set of pictures and versioned tile URLs can be cached
forever (docs/CONTRACTS.md "Tiler HTTP API").
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
import rasterio.errors
from cogeo_mosaic.mosaic import MosaicJSON
from fastapi import HTTPException

from cropassets.core.objstore import (
    Location,
    ObjPath,
    gdal_path,
    glob_sorted,
    inside,
    is_url,
    location,
)
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.publish.week_layers import LAYERS, PRODUCTS, STYLE_BANDS, WEEK_KEY
from cropassets.settings import load_settings

logger = logging.getLogger(__name__)

LAYER_PRODUCT = {"crop": "crop", "confidence": "crop", "sos": "sos", "coverage": "coverage"}
"""The COG product that holds each served layer."""

VERSION_CHARS = 12
"""Hex digits of a week's version (SHA-256 of its manifest file)."""

OBJECT_STAT_TTL_S = 2.0
"""On object storage a manifest's or mosaic's ETag is checked at most every 2 s: a week
republished there is served within 2 s (locally: at the next request)."""

MAX_DECIMATION_ZOOMS = 3
"""Tiles are served down to 3 zoom levels below a COG's coarsest overview (8 x 8 source
pixels per tile pixel). rio-tiler warps at the resolution of the best overview, so without
overviews each zoom level out costs 4x: a zoom-0 tile would read the whole world at 10 m."""


@dataclass(frozen=True)
class WeekMosaic:
    """A checked MosaicJSON of one week and the zooms it is served at."""

    path: Location
    doc: MosaicJSON
    minzoom: int   # the mosaic's, raised where the COGs lack overviews
    maxzoom: int


class Catalog:
    """Read-only view of the week layers published under one data root."""

    def __init__(self, root: str | Path | ObjPath) -> None:
        self.root: Location = (location(root, load_settings().object_store) if is_url(root)
                               else location(root)).resolve()
        if isinstance(self.root, ObjPath):
            gdal_path(self.root)  # GDAL's /vsis3/ options, before any COG is opened
        self._cache: dict[tuple[Location, str], tuple[tuple[int, int, str], Any]] = {}
        self._stats: dict[ObjPath, tuple[float, tuple[int, int, str]]] = {}
        self._lock = threading.Lock()

    # ---- files -------------------------------------------------------------------------
    def inside(self, relative: str | Path, what: str) -> Location:
        """Absolute path of ``relative`` (to the root); 404 if it resolves outside the root."""
        path = (self.root / relative).resolve()
        if not inside(path, self.root):
            logger.warning("%s resolves outside the data root: %s", what, relative)
            raise HTTPException(404, f"{what} is not available (it is not in the data root)")
        return path

    def _load(self, path: Location, parse: Callable[[bytes], Any], kind: str = "") -> Any:
        """``parse(bytes of path)``, cached until the file's mtime, size or ETag changes.

        ``kind`` names the parse, so that one file can be cached parsed two ways.
        """
        key = self._file_key(path)
        hit = self._cache.get((path, kind))
        if hit is not None and hit[0] == key:
            return hit[1]
        value = parse(path.read_bytes())
        with self._lock:
            self._cache[(path, kind)] = (key, value)
        return value

    def _file_key(self, path: Location) -> tuple[int, int, str]:
        """(mtime, size, ETag) of ``path``; an object's is reused for :data:`OBJECT_STAT_TTL_S`.

        A tile request looks up its manifest and mosaic several times: one HEAD each.
        """
        now = time.monotonic()
        if isinstance(path, ObjPath):
            seen = self._stats.get(path)
            if seen is not None and now - seen[0] < OBJECT_STAT_TTL_S:
                return seen[1]
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size, str(getattr(st, "etag", "")))
        if isinstance(path, ObjPath):
            with self._lock:
                self._stats[path] = (now, key)
        return key

    # ---- manifests ---------------------------------------------------------------------
    def _manifest(self, path: Location) -> WeekManifest:
        """The manifest at ``path``, parsed once per file version.

        Raises:
            OSError: The file cannot be read (FileNotFoundError: removed).
            ValueError: Not a week manifest this library reads (another format version, a
                missing or unknown field), naming the file.
        """
        return self._load(path, lambda body: WeekManifest.from_json(body, source=str(path)),
                          kind="manifest")

    def manifests(self) -> list[WeekManifest]:
        """Every published week manifest, in week order (read fresh when files change).

        A manifest that cannot be read (removed or replaced between listing and reading,
        or refused: another format version...) is left out and logged.
        """
        folder = self.root / "week_layers"
        if not folder.is_dir():
            return []
        out = []
        for path in glob_sorted(folder, "*.json"):
            if not WEEK_KEY.match(path.stem):
                continue
            try:
                out.append(self._manifest(path))
            except (OSError, ValueError) as err:  # removed or replaced between glob and read
                logger.warning("skipping unreadable manifest %s: %s", path.name, err)
        return out

    def week_keys(self) -> list[str]:
        """Keys of the published weeks."""
        return [m.week for m in self.manifests()]

    def _listing(self, keys: list[str]) -> str:
        if not keys:
            return "no week is published yet"
        shown = ", ".join(keys[:60]) + (" ..." if len(keys) > 60 else "")
        return f"published weeks: {shown}"

    def week(self, week: str) -> WeekManifest:
        """The manifest of ``week``; 400 if not a week key, 404 if not published.

        A manifest this library refuses (another format version, a missing or unknown
        field) is a 500 without details; the log names the file and why.
        """
        if not WEEK_KEY.match(week or ""):
            raise HTTPException(400, f"week {_shown(week)} is not a week key (YYYY-MM-DD); "
                                     f"{self._listing(self.week_keys())}")
        path = self.root / "week_layers" / f"{week}.json"
        try:
            return self._manifest(path)
        except FileNotFoundError:
            raise HTTPException(404, f"week {week} is not published; "
                                     f"{self._listing(self.week_keys())}") from None
        except ValueError as err:
            logger.error("week %s cannot be served: %s", week, err)
            raise HTTPException(500, f"the manifest of week {week} cannot be read by this "
                                     "server; see the server log") from None

    def version(self, week: str) -> str:
        """Version of ``week``: the first hex digits of the SHA-256 of its manifest file."""
        self.week(week)  # 400/404 as for the manifest
        path = self.root / "week_layers" / f"{week}.json"
        try:
            return self._load(path, _digest, kind="version")
        except FileNotFoundError:
            raise HTTPException(404, f"week {week} is not published; "
                                     f"{self._listing(self.week_keys())}") from None

    def layer_version(self, layer: str, week: str) -> str:
        """Version of ``week`` if ``layer`` is published in it (else 404 as layer_week)."""
        self.layer_week(layer, week)
        return self.version(week)

    def layer_week(self, layer: str, week: str) -> WeekManifest:
        """The manifest of ``week`` if ``layer`` is published in it, else 404 with the reason."""
        if layer not in LAYERS:
            raise HTTPException(404, f"layer {_shown(layer)} does not exist; "
                                     f"layers: {', '.join(LAYERS)}")
        manifest = self.week(week)
        if not manifest.has_layer(layer):
            with_layer = [m.week for m in self.manifests() if m.has_layer(layer)]
            reason = f" ({manifest.reason})" if manifest.reason else ""
            raise HTTPException(404, f"week {week} has no {layer} layer{reason}; weeks with "
                                     f"it: {', '.join(with_layer) or 'none'}")
        return manifest

    # ---- mosaics and COGs --------------------------------------------------------------
    def mosaic(self, layer: str, week: str) -> WeekMosaic:
        """The MosaicJSON serving ``layer`` in ``week``, checked and with its zoom floor.

        The document is checked once per file version: every asset must be a local file
        inside the data root, or the week is refused (404) and the reason logged.
        """
        manifest = self.layer_week(layer, week)
        product = LAYER_PRODUCT[layer]
        rel = manifest.mosaics.get(product)
        if not rel:
            raise HTTPException(404, f"week {week} has no {product} mosaic")
        path = self.inside(rel, f"the {product} mosaic of week {week}")
        try:
            return self._load(path, lambda b: self._checked_mosaic(path, b, week, product))
        except FileNotFoundError:
            raise HTTPException(404, f"the {product} mosaic of week {week} is missing") from None

    def _checked_mosaic(self, path: Location, body: bytes, week: str, product: str
                        ) -> WeekMosaic:
        doc = MosaicJSON(**json.loads(body))
        files = []
        for assets in doc.tiles.values():
            for asset in assets:
                full = (doc.asset_prefix or "") + asset
                if not self._asset_inside(full):
                    logger.error("%s mosaic of %s names a file outside the data root: %s",
                                 product, week, full)
                    raise HTTPException(404, f"the {product} mosaic of week {week} names files "
                                             "outside the data root; republish the week")
                files.append(full)
        levels = _overview_levels(sorted(set(files)))
        floor = doc.maxzoom - levels - MAX_DECIMATION_ZOOMS
        return WeekMosaic(path, doc, max(doc.minzoom, floor), doc.maxzoom)

    def cog(self, week: str, tile: str, product: str) -> Location:
        """Path of the published COG of ``product`` for ``tile`` in ``week`` (404 if none)."""
        if product not in PRODUCTS:
            raise HTTPException(404, f"product {_shown(product)} does not exist; "
                                     f"products: {', '.join(PRODUCTS)}")
        manifest = self.week(week)
        tiles = manifest.tiles
        if tile not in tiles:
            raise HTTPException(404, f"tile {_shown(tile)} is not published in week {week}; "
                                     f"tiles: {', '.join(sorted(tiles)) or 'none'}")
        rel = tiles[tile].file(product)
        if not rel:
            reason = f" ({manifest.reason})" if manifest.reason else ""
            raise HTTPException(404, f"tile {tile} has no {product} COG in week {week}{reason}")
        path = self.inside(rel, f"the {product} COG of tile {tile} in week {week}")
        if not path.is_file():
            raise HTTPException(404, f"the {product} COG of tile {tile} in week {week} is missing")
        return path


    def style(self, week: str, style: str, tile: str | None = None) -> Location:
        """The QGIS style of layer ``style`` in ``week`` (and, if given, a tile of it)."""
        if style not in STYLE_BANDS:
            raise HTTPException(404, f"style {_shown(style)} does not exist; styles: "
                                     f"{', '.join(STYLE_BANDS)}")
        manifest = self.week(week)
        if tile is not None:
            self.cog(week, tile, STYLE_BANDS[style][0])  # 404 unless the tile has the COG
        rel = manifest.styles.get(style)
        if not rel:
            raise HTTPException(404, f"week {week} has no {style} style; styles: "
                                     f"{', '.join(manifest.styles) or 'none'}")
        path = self.inside(rel, f"the {style} style of week {week}")
        if not path.is_file():
            raise HTTPException(404, f"the {style} style of week {week} is missing")
        return path

    def region(self, week: str, product: str) -> tuple[Location, dict[str, Location]]:
        """The whole-region VRT of ``product`` in ``week`` and its tiles' COGs (tile -> path)."""
        if product not in PRODUCTS:
            raise HTTPException(404, f"product {_shown(product)} does not exist; "
                                     f"products: {', '.join(PRODUCTS)}")
        manifest = self.week(week)
        rel = manifest.regions.get(product)
        if not rel:
            reason = f" ({manifest.reason})" if manifest.reason else ""
            regions = ", ".join(manifest.regions) or "none"
            raise HTTPException(404, f"week {week} has no {product} region file{reason}; "
                                     f"regions: {regions}")
        path = self.inside(rel, f"the {product} region of week {week}")
        if not path.is_file():
            raise HTTPException(404, f"the {product} region of week {week} is missing")
        cogs = {t: self.cog(week, t, product) for t, row in manifest.tiles.items()
                if row.file(product)}
        return path, cogs


    def _asset_inside(self, full: str) -> bool:
        """A mosaic asset names a file inside the data root (``/vsis3/`` on object storage)."""
        if isinstance(self.root, ObjPath):
            prefix = self.root.gdal().rstrip("/") + "/"
            return (full.startswith(prefix) and posixpath.normpath(full) == full
                    and "://" not in full)
        return "://" not in full and Path(full).resolve().is_relative_to(self.root)


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:VERSION_CHARS]


def _overview_levels(files: list[str]) -> int:
    """Fewest overview levels among ``files`` (0 if one cannot be read)."""
    levels = []
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        for f in files:
            try:
                with rasterio.open(f) as ds:
                    levels.append(len(ds.overviews(1)))
            except rasterio.errors.RasterioIOError:
                levels.append(0)
    return min(levels, default=0)


def _shown(value: str | None, limit: int = 40) -> str:
    """``repr`` of a client value, shortened for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"
