"""The published products' STAC catalog as a STAC API (core, collections, item search).

``week_layers`` writes a static catalog under ``<data>/stac`` (cropassets/core/
product_stac.py); these routes serve it with every href rewritten to this server's URLs:
a product COG becomes ``/download/{week}/{tile}/{product}.tif``, a QGIS style
``/download/{week}/{tile}/{style}.qml``; nothing else (no file path) leaves the server.
pystac-client opens ``/stac`` and searches ``/stac/search`` (GET or POST; ``bbox``,
``datetime``, ``collections``, ``ids``, ``limit``, paging by ``token``)::

    GET  /stac                                      landing page (Catalog + conformance)
    GET  /stac/conformance
    GET  /stac/collections, /stac/collections/{collection_id}
    GET  /stac/collections/{collection_id}/items[?bbox=&datetime=&limit=&token=]
    GET  /stac/collections/{collection_id}/items/{item_id}
    GET  /stac/search, POST /stac/search

Unknown collections and items are 404 naming what exists; malformed ``bbox``,
``datetime``, ``limit`` or ``token`` are 400 naming the value and the expected form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.responses import JSONResponse
from starlette.requests import Request

from cropassets.core.objstore import glob_sorted
from cropassets.core.publish.product_stac import (
    COLLECTION_PREFIX,
    ITEM_ID,
    PRODUCT_INFO,
    collection_id,
    stac_root,
)
from tiler.catalog import Catalog, _shown

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
GEOJSON = "application/geo+json"
JSON = "application/json"
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


class StacFiles:
    """Read-only view of ``<data>/stac``: collections and items, re-read when files change."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.folder = stac_root(catalog.root)

    def collection_ids(self) -> list[str]:
        """Ids of the collections that have a collection.json."""
        return [collection_id(p) for p in PRODUCT_INFO
                if (self.folder / collection_id(p) / "collection.json").is_file()]

    def collection(self, cid: str) -> dict[str, Any]:
        """The stored collection ``cid``; 404 naming the collections if there is none."""
        if cid not in self.collection_ids():
            raise HTTPException(404, f"collection {_shown(cid)} does not exist; collections: "
                                     f"{', '.join(self.collection_ids()) or 'none yet'}")
        return self.catalog._load(self.folder / cid / "collection.json", json.loads)

    def items(self, cid: str) -> list[dict[str, Any]]:
        """Every stored item of collection ``cid`` (which must exist), by id."""
        self.collection(cid)
        out = []
        for path in glob_sorted(self.folder / cid, "*.json"):
            if not ITEM_ID.match(path.stem):
                continue
            try:
                out.append(self.catalog._load(path, json.loads))
            except (OSError, ValueError):  # replaced between glob and read
                continue
        return out

    def item(self, cid: str, iid: str) -> dict[str, Any]:
        """The stored item ``iid`` of ``cid``; 404 naming the collection's items if none."""
        items = self.items(cid)
        for it in items:
            if it["id"] == iid:
                return it
        shown = ", ".join(i["id"] for i in items[:30]) + (" ..." if len(items) > 30 else "")
        raise HTTPException(404, f"item {_shown(iid)} is not in collection {cid}; items: "
                                 f"{shown or 'none'}")


# ------------------------------------------------------------------------------ hrefs

def served_item(item: dict[str, Any], base: str) -> dict[str, Any]:
    """``item`` with its links and asset hrefs as URLs of this server (``base`` ends with /).

    Assets other than the product COG (``data``) and QGIS styles (``style-<name>``) are
    dropped: no stored href is passed through.
    """
    props = item["properties"]
    week, tile, product = props["cropassets:week"], props["cropassets:tile"], \
        props["cropassets:product"]
    cid = item["collection"]
    assets = {}
    for key, asset in item.get("assets", {}).items():
        if key == "data":
            href = f"{base}download/{week}/{tile}/{product}.tif"
        elif key.startswith("style-"):
            href = f"{base}download/{week}/{tile}/{key.removeprefix('style-')}.qml"
        else:
            continue
        assets[key] = {**asset, "href": href}
    return {**item, "assets": assets, "links": [
        {"rel": "self", "href": f"{base}stac/collections/{cid}/items/{item['id']}",
         "type": GEOJSON},
        {"rel": "parent", "href": f"{base}stac/collections/{cid}", "type": JSON},
        {"rel": "collection", "href": f"{base}stac/collections/{cid}", "type": JSON},
        {"rel": "root", "href": f"{base}stac", "type": JSON}]}


def served_collection(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """A stored collection with links of this server (no item links: use /items)."""
    cid = doc["id"]
    return {**doc, "links": [
        {"rel": "self", "href": f"{base}stac/collections/{cid}", "type": JSON},
        {"rel": "parent", "href": f"{base}stac", "type": JSON},
        {"rel": "root", "href": f"{base}stac", "type": JSON},
        {"rel": "items", "href": f"{base}stac/collections/{cid}/items", "type": GEOJSON}]}


# ------------------------------------------------------------------------------ filters

def parse_bbox(value: str | list[float] | None) -> tuple[float, float, float, float] | None:
    """``west,south,east,north`` (string or list of 4 numbers, degrees); 400 otherwise."""
    if value is None or value == "":
        return None
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        nums = [float(p) for p in parts]
    except (TypeError, ValueError):
        nums = []
    if len(nums) != 4 or not (-180 <= nums[0] <= 180 and -180 <= nums[2] <= 180
                              and -90 <= nums[1] <= nums[3] <= 90):
        raise HTTPException(400, f"bbox {_shown(str(value))} is not west,south,east,north "
                                 "in degrees (4 numbers, south <= north)")
    return nums[0], nums[1], nums[2], nums[3]


def _instant(text: str, what: str) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"datetime {what} {_shown(text)} is not RFC 3339 (e.g. "
                                 "2025-06-02T00:00:00Z) or '..'") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """A datetime or an interval ``start/end`` (either may be ``..``); 400 if malformed."""
    if not value:
        return None
    if value.count("/") > 1:
        raise HTTPException(400, f"datetime {_shown(value)} is not an instant or start/end")
    if "/" in value:
        a, b = value.split("/")
        lo, hi = _instant(a, "start"), _instant(b, "end")
        if lo and hi and lo > hi:
            raise HTTPException(400, f"datetime {_shown(value)}: start is after end")
        return lo, hi
    t = _instant(value, "")
    return t, t


def _matches(item: dict[str, Any], bbox: tuple[float, float, float, float] | None,
             interval: tuple[datetime | None, datetime | None] | None,
             ids: set[str] | None) -> bool:
    if ids is not None and item["id"] not in ids:
        return False
    if bbox is not None:
        w, s, e, n = item["bbox"]
        if w > bbox[2] or e < bbox[0] or s > bbox[3] or n < bbox[1]:
            return False
    if interval is not None:
        props = item["properties"]
        start = _instant(props.get("start_datetime") or props["datetime"], "start")
        end = _instant(props.get("end_datetime") or props["datetime"], "end")
        lo, hi = interval
        if (hi is not None and start is not None and start > hi) or (
                lo is not None and end is not None and end < lo):
            return False
    return True


def _list(value: str | list[str] | None) -> list[str] | None:
    if value is None or value == "":
        return None
    return [v for v in (value.split(",") if isinstance(value, str) else value) if v]


# ------------------------------------------------------------------------------ routes

def stac_router(catalog: Catalog) -> APIRouter:
    """The STAC API routes over the catalog under ``catalog``'s data root."""
    files = StacFiles(catalog)
    router = APIRouter(prefix="/stac", tags=["stac"])

    def search(request: Request, collections: list[str] | None, ids: list[str] | None,
               bbox: Any, dt: str | None, limit: int | None, token: str | None,
               route: str) -> JSONResponse:
        base = str(request.base_url)
        known = files.collection_ids()
        for cid in collections or []:
            if cid not in known:
                raise HTTPException(404, f"collection {_shown(cid)} does not exist; "
                                         f"collections: {', '.join(known) or 'none yet'}")
        box, interval = parse_bbox(bbox), parse_datetime(dt)
        limit = DEFAULT_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_LIMIT:
            raise HTTPException(400, f"limit {limit} is outside 1..{MAX_LIMIT}")
        try:
            offset = int(token) if token else 0
            if offset < 0:
                raise ValueError
        except ValueError:
            raise HTTPException(400, f"token {_shown(token)} is not a page token from a "
                                     "'next' link") from None
        wanted = set(ids) if ids else None
        found = [it for cid in (collections or known) for it in files.items(cid)
                 if _matches(it, box, interval, wanted)]
        found.sort(key=lambda i: (i["properties"]["datetime"], i["id"]))
        page = found[offset:offset + limit]
        links = [{"rel": "root", "href": f"{base}stac", "type": JSON}]
        if offset + limit < len(found):
            params = {k: v for k, v in {
                "collections": ",".join(collections) if collections else None,
                "ids": ",".join(ids) if ids else None,
                "bbox": ",".join(str(v) for v in box) if box else None,
                "datetime": dt, "limit": limit, "token": offset + limit}.items()
                if v is not None}
            links.append({"rel": "next", "type": GEOJSON, "method": "GET",
                          "href": f"{base}{route}?{urlencode(params)}"})
        return JSONResponse({"type": "FeatureCollection",
                             "features": [served_item(i, base) for i in page],
                             "numberMatched": len(found), "numberReturned": len(page),
                             "links": links}, media_type=GEOJSON)

    @router.get("")
    def landing(request: Request) -> dict[str, Any]:
        """STAC API landing page: the catalog of the published products."""
        base = str(request.base_url)
        return {
            "type": "Catalog", "stac_version": "1.1.0", "id": "cropassets",
            "title": "cropassets products",
            "description": "Weekly crop-type, start-of-season and coverage maps per tile.",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": f"{base}stac", "type": JSON},
                {"rel": "root", "href": f"{base}stac", "type": JSON},
                {"rel": "conformance", "href": f"{base}stac/conformance", "type": JSON},
                {"rel": "data", "href": f"{base}stac/collections", "type": JSON},
                {"rel": "search", "href": f"{base}stac/search", "type": GEOJSON,
                 "method": "GET"},
                {"rel": "search", "href": f"{base}stac/search", "type": GEOJSON,
                 "method": "POST"},
                {"rel": "service-desc", "href": f"{base}openapi.json",
                 "type": "application/vnd.oai.openapi+json;version=3.0"},
                *({"rel": "child", "href": f"{base}stac/collections/{cid}", "type": JSON}
                  for cid in files.collection_ids())]}

    @router.get("/conformance")
    def conformance() -> dict[str, Any]:
        """Conformance classes of this STAC API."""
        return {"conformsTo": CONFORMANCE}

    @router.get("/collections")
    def collections(request: Request) -> dict[str, Any]:
        """Every product collection."""
        base = str(request.base_url)
        return {"collections": [served_collection(files.collection(c), base)
                                for c in files.collection_ids()],
                "links": [{"rel": "self", "href": f"{base}stac/collections", "type": JSON},
                          {"rel": "root", "href": f"{base}stac", "type": JSON}]}

    @router.get("/collections/{collection_id}")
    def collection(collection_id: str, request: Request) -> dict[str, Any]:
        """One product collection (``cropassets-crop``, ``cropassets-sos``...)."""
        return served_collection(files.collection(collection_id), str(request.base_url))

    @router.get("/collections/{collection_id}/items")
    def items(request: Request, collection_id: str,
              bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
              datetime: Annotated[str | None, Query(description="instant or start/end")] = None,
              limit: Annotated[int | None, Query(description=f"1..{MAX_LIMIT}")] = None,
              token: Annotated[str | None, Query(description="page token")] = None
              ) -> JSONResponse:
        """Items of one collection, filtered like a search."""
        return search(request, [collection_id], None, bbox, datetime, limit, token,
                      f"stac/collections/{collection_id}/items")

    @router.get("/collections/{collection_id}/items/{item_id}")
    def item(collection_id: str, item_id: str, request: Request) -> JSONResponse:
        """One item (``<product>-<tile>-<week>``)."""
        return JSONResponse(served_item(files.item(collection_id, item_id),
                                        str(request.base_url)), media_type=GEOJSON)

    @router.get("/search")
    def search_get(
            request: Request,
            collections: Annotated[str | None, Query(description="comma-separated ids")] = None,
            ids: Annotated[str | None, Query(description="comma-separated item ids")] = None,
            bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
            datetime: Annotated[str | None, Query(description="instant or start/end")] = None,
            limit: Annotated[int | None, Query(description=f"1..{MAX_LIMIT}")] = None,
            token: Annotated[str | None, Query(description="page token")] = None
    ) -> JSONResponse:
        """Item search over every product collection."""
        return search(request, _list(collections), _list(ids), bbox, datetime, limit, token,
                      "stac/search")

    @router.post("/search")
    def search_post(request: Request,
                    body: Annotated[dict[str, Any], Body(description="STAC search body")]
                    ) -> JSONResponse:
        """Item search with a JSON body.

        Keys: ``collections``, ``ids``, ``bbox``, ``datetime``, ``limit``, ``token``.
        """
        unknown = sorted(set(body) - {"collections", "ids", "bbox", "datetime", "limit",
                                      "token", "intersects", "fields", "sortby"})
        if unknown or body.get("intersects") is not None:
            raise HTTPException(400, f"search parameters {unknown or ['intersects']} are not "
                                     "supported; use collections, ids, bbox, datetime, limit")
        for key in ("datetime", "token"):
            if body.get(key) is not None and not isinstance(body[key], str | int):
                raise HTTPException(400, f"{key} {_shown(str(body[key]))} is not a string")
        for key in ("collections", "ids"):
            if body.get(key) is not None and not (
                    isinstance(body[key], list) and all(isinstance(v, str) for v in body[key])):
                raise HTTPException(400, f"{key} {_shown(str(body[key]))} is not a list of "
                                         "strings")
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise HTTPException(400, f"limit {_shown(str(limit))} is not an integer")
        return search(request, _list(body.get("collections")), _list(body.get("ids")),
                      body.get("bbox"), None if body.get("datetime") is None
                      else str(body["datetime"]), limit,
                      None if body.get("token") is None else str(body["token"]),
                      "stac/search")

    @router.get("/{rest:path}", include_in_schema=False)
    def no_such_stac_route(rest: str) -> None:
        """404 naming the routes and collections, for any other path under /stac."""
        raise HTTPException(404, "no such STAC route; expected /stac, /stac/conformance, "
                                 "/stac/collections[/{collection_id}[/items[/{item_id}]]] or "
                                 "/stac/search; collections: "
                                 f"{', '.join(files.collection_ids()) or 'none yet'}")

    return router


__all__ = ["COLLECTION_PREFIX", "StacFiles", "served_item", "stac_router"]
