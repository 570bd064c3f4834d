"""Error answers: titiler's status codes, request checks, and no filesystem path in any text.

Every error is JSON ``{"detail": "..."}``. Server errors (5xx) say only that the request
failed (the log has the cause); client errors keep their message with the data root and
file names replaced, so no answer tells a client where or which files exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from titiler.core.errors import DEFAULT_STATUS_CODES
from titiler.mosaic.errors import MOSAIC_STATUS_CODES

from cropassets.core.objstore import ObjPath
from tiler.factory import WEB_MERCATOR

logger = logging.getLogger(__name__)

TILE_SIZES = ("256", "512")
"""``tilesize`` values a tile request may ask for (default: 256)."""

_FILE_NAME = re.compile(r"[^\s'\"(),;]*\.(?:tiff?|json|vrt|xml|ovr)\b", re.IGNORECASE)


def scrub(text: str, root: Path | ObjPath) -> str:
    """``text`` with the data root (also as GDAL names it) and any file name replaced."""
    forms = {str(root), root.as_posix()} | ({root.gdal()} if isinstance(root, ObjPath) else set())
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "<data>")
    return _FILE_NAME.sub("<file>", text)


def add_error_handlers(app: FastAPI, root: Path | ObjPath) -> None:
    """Map exceptions to statuses as titiler does (core and mosaic), with scrubbed messages."""
    codes: dict[type[Exception], int] = {**DEFAULT_STATUS_CODES, **MOSAIC_STATUS_CODES}
    for exc_class, status in codes.items():
        app.add_exception_handler(exc_class, _handler(status, root))
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]


def _handler(status: int, root: Path | ObjPath) -> Callable[[Request, Exception], Response]:
    def handle(request: Request, exc: Exception) -> Response:
        if status == 204:
            return Response(status_code=204)
        if status >= 500:
            logger.error("%s failed", request.url.path, exc_info=exc)
            return JSONResponse({"detail": f"internal error while serving {request.url.path}; "
                                           "see the server log"}, status_code=status)
        return JSONResponse({"detail": scrub(str(exc), root)}, status_code=status)

    return handle


def _validation_handler(request: Request, exc: RequestValidationError) -> Response:
    """422 with one readable line per invalid input instead of pydantic's list."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        got = err.get("input")
        shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:56] + "...'"
        parts.append(f"{loc}: {err.get('msg', 'invalid')} (got {shown})")
    return JSONResponse({"detail": "; ".join(parts)}, status_code=422)


async def check_layer_request(request: Request) -> None:
    """Router dependency of the layer routes: tile index in range, no client paths/URLs.

    Raises:
        HTTPException: 400 naming the value when ``z``/``x``/``y`` lie outside
            WebMercatorQuad, ``tilesize`` is not 256 or 512, or a ``url`` is given.
    """
    query = request.query_params
    if "url" in query:
        raise HTTPException(400, "this tiler does not read client paths or URLs (url=...): pick "
                                 "a published layer by /layers/{layer}/{week}; see /api/weeks")
    if "tilesize" in query and query["tilesize"] not in TILE_SIZES:
        raise HTTPException(400, f"tilesize {query['tilesize'][:20]!r} is not one of "
                                 f"{', '.join(TILE_SIZES)}")
    check_tile_index(request.path_params)


def check_tile_index(params: dict[str, Any]) -> None:
    """400 if path params ``z``/``x``/``y`` are integers outside WebMercatorQuad.

    Non-integers are left to FastAPI's validation (422).
    """
    if "z" not in params:
        return
    try:
        z, x, y = (int(params[k]) for k in ("z", "x", "y"))
    except (KeyError, ValueError):
        return
    lo, hi = WEB_MERCATOR.minzoom, WEB_MERCATOR.maxzoom
    if not lo <= z <= hi:
        raise HTTPException(400, f"zoom z={z} is outside WebMercatorQuad (z in {lo}..{hi})")
    n = 2 ** z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < n:
            raise HTTPException(400, f"tile {name}={value} is outside WebMercatorQuad at zoom "
                                     f"{z} ({name} in 0..{n - 1})")
