"""The tiler application: layer tiles, JSON API, downloads and the web map page.

``create_app(root)`` serves the week layers published under ``root``;
``uvicorn tiler.app:app`` serves ``$CROPASSETS_DATA`` (default ``<repo>/data``), the app
being built on first access of ``tiler.app.app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from cropassets.core.layers import LAYERS
from tiler.api import api_router
from tiler.catalog import Catalog
from tiler.errors import add_error_handlers, check_layer_request
from tiler.factory import TMS_ID, layer_factory

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAPLIBRE_DIR = Path(__file__).resolve().parents[1] / "node_modules" / "maplibre-gl" / "dist"


def create_app(data_root: str | Path, maplibre_dir: str | Path | None = None) -> FastAPI:
    """The tiler app over the week layers published under ``data_root``.

    Args:
        data_root: Data root holding ``week_layers/`` (docs/CONTRACTS.md).
        maplibre_dir: MapLibre GL ``dist`` folder served at ``/static/maplibre``
            (default ``<repo>/node_modules/maplibre-gl/dist``, when it exists).
    """
    catalog = Catalog(data_root)
    app = FastAPI(title="cropassets tiler", version="0.1.0", openapi_url=None,
                  docs_url=None, redoc_url=None,
                  description="Crop-type, confidence and start-of-season maps per week.")
    add_error_handlers(app, catalog.root)
    for layer in LAYERS:
        factory = layer_factory(layer, catalog)
        app.include_router(factory.router, prefix=factory.router_prefix,
                           tags=[f"{layer} layer"], dependencies=[Depends(check_layer_request)])
    app.include_router(api_router(catalog))

    @app.get("/layers/{layer}/{rest:path}", include_in_schema=False)
    def no_such_layer_route(layer: str, rest: str) -> None:
        """404 naming what exists, for any other path under /layers."""
        if layer not in LAYERS:
            raise HTTPException(404, f"layer {layer[:40]!r} does not exist; layers: "
                                     f"{', '.join(LAYERS)}")
        prefix = f"/layers/{layer}/{{week}}"
        raise HTTPException(404, f"no such route under /layers/{layer}; expected "
                                 f"{prefix}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}.png or "
                                 f"{prefix}/{TMS_ID}/tilejson.json with a week from /api/weeks")

    _add_page(app, Path(maplibre_dir) if maplibre_dir else MAPLIBRE_DIR)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"],
                       allow_headers=["*"])
    return app


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
        from cropassets.settings import load_settings

        globals()["app"] = create_app(load_settings().data_root)
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
