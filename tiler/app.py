"""The tiler application: layer tiles, JSON API, downloads, API docs and the web map page.

``create_app(root)`` serves the week layers published under ``root``;
``uvicorn tiler.app:app`` serves ``$CROPASSETS_DATA`` (default ``<repo>/data``), the app
being built on first access of ``tiler.app.app``. Rendered tiles are cached as
``$CROPASSETS_TILE_CACHE_MB`` and ``$CROPASSETS_TILE_DIR`` say (tiler/http_cache.py).
The OpenAPI document of the public routes is ``/openapi.json``, shown at ``/docs`` with
Swagger UI files served from the ``fastapi-offline`` package (nothing from a CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from cropassets.core.objstore import ObjPath
from cropassets.core.publish.week_layers import LAYERS
from cropassets.settings import Settings, load_settings
from tiler.api import api_router
from tiler.catalog import Catalog
from tiler.errors import add_error_handlers, check_layer_request
from tiler.factory import TMS_ID, layer_factory
from tiler.http_cache import LayerCacheMiddleware
from tiler.stac import stac_router
from tiler.tile_cache import DiskTiles, MemoryTiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAPLIBRE_DIR = Path(__file__).resolve().parents[1] / "node_modules" / "maplibre-gl" / "dist"
SWAGGER_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DESCRIPTION = """Crop-type, confidence and start-of-season maps per published week.

Take the week keys, versions and URLs from `/api/weeks`. Versioned tile and TileJSON
URLs (`/layers/{layer}/{week}/v/{version}/...`) never change their answer and are sent
with `Cache-Control: public, max-age=31536000, immutable`; the plain ones
(`/layers/{layer}/{week}/...`) with `no-cache`. Both carry an `ETag` and answer `304` to
a matching `If-None-Match`. A version that is no longer current is a 404."""


def create_app(data_root: str | Path | ObjPath, maplibre_dir: str | Path | None = None,
               settings: Settings | None = None) -> FastAPI:
    """The tiler app over the week layers published under ``data_root``.

    Args:
        data_root: Data root holding ``week_layers/`` (docs/CONTRACTS.md): a folder or an
            object-store location (``s3://bucket/prefix``; a URL string is reached with
            the settings' object-store options).
        maplibre_dir: MapLibre GL ``dist`` folder served at ``/static/maplibre``
            (default ``<repo>/node_modules/maplibre-gl/dist``, when it exists).
        settings: Where the tile cache settings come from (default: the environment,
            ``CROPASSETS_TILE_CACHE_MB`` and ``CROPASSETS_TILE_DIR``).
    """
    settings = settings or load_settings()
    catalog = Catalog(data_root)
    memory = (MemoryTiles(int(settings.tile_cache_mb * 2**20))
              if settings.tile_cache_mb > 0 else None)
    disk = DiskTiles(settings.tile_dir) if settings.tile_dir else None
    app = FastAPI(title="cropassets tiler", version="0.1.0", openapi_url="/openapi.json",
                  docs_url=None, redoc_url=None, description=DESCRIPTION)
    add_error_handlers(app, catalog.root)
    for layer in LAYERS:
        for versioned in (False, True):
            factory = layer_factory(layer, catalog, versioned=versioned)
            app.include_router(factory.router, prefix=factory.router_prefix,
                               tags=[f"{layer} layer"],
                               dependencies=[Depends(check_layer_request)])
    app.include_router(api_router(catalog, memory.stats if memory is not None else None))
    app.include_router(stac_router(catalog))

    @app.get("/layers/{layer}/{rest:path}", include_in_schema=False)
    def no_such_layer_route(layer: str, rest: str) -> None:
        """404 naming what exists, for any other path under /layers."""
        if layer not in LAYERS:
            raise HTTPException(404, f"layer {layer[:40]!r} does not exist; layers: "
                                     f"{', '.join(LAYERS)}")
        prefix = f"/layers/{layer}/{{week}}[/v/{{version}}]"
        raise HTTPException(404, f"no such route under /layers/{layer}; expected "
                                 f"{prefix}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}.png or "
                                 f"{prefix}/{TMS_ID}/tilejson.json with a week (and version) "
                                 "from /api/weeks")

    _add_docs(app)
    _add_page(app, Path(maplibre_dir) if maplibre_dir else MAPLIBRE_DIR)
    app.add_middleware(LayerCacheMiddleware, catalog=catalog, memory=memory, disk=disk)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                       allow_headers=["*"], expose_headers=["ETag"])
    return app


def _add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI of ``/openapi.json``, its files served at ``/static/docs``."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # relative URLs: the page works behind a path prefix too
        return get_swagger_ui_html(openapi_url="openapi.json", title="cropassets tiler API",
                                   swagger_js_url="static/docs/swagger-ui-bundle.js",
                                   swagger_css_url="static/docs/swagger-ui.css",
                                   swagger_favicon_url="static/docs/favicon.png")

    if SWAGGER_DIR.is_dir():  # before /static, which would shadow it
        app.mount("/static/docs", StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")


def _add_page(app: FastAPI, maplibre_dir: Path) -> None:
    """``/`` (the web map), ``/static`` and ``/static/maplibre``, where they exist."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise HTTPException(404, "the web map page is not installed (tiler/static/index.html)")
        return FileResponse(page, media_type="text/html")

    if maplibre_dir.is_dir():  # before /static, which would shadow it
        app.mount("/static/maplibre", StaticFiles(directory=maplibre_dir), name="maplibre")
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def __getattr__(name: str) -> Any:
    """Build ``app`` lazily from the environment (``uvicorn tiler.app:app``)."""
    if name == "app":
        globals()["app"] = create_app(load_settings().data_root)
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
