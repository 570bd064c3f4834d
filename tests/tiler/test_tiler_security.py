"""Nothing a client sends is read as a path or URL; bad input is a 4xx naming the value.

Every case goes over real HTTP with the raw (unnormalised) path, and must be answered
4xx with a JSON ``detail`` that does not reveal the data root, never 500 and never the
content of a file outside the root.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import morecantile
import pytest
from tiler_server import http_get

from cropassets.core.publish.manifest_record import ManifestLayers, WeekManifest

W = "{week}"            # a week with a crop layer
W1 = "{week1}"          # a week without one
TILE = f"/layers/crop/{W}/tiles/WebMercatorQuad"

CASES = [
    # (id, path and query, text the detail must contain)
    ("unknown-layer", f"/layers/ndvi/{W}/tiles/WebMercatorQuad/14/0/0.png", "crop, confidence"),
    ("unknown-layer-tilejson", f"/layers/ndvi/{W}/WebMercatorQuad/tilejson.json", "'ndvi'"),
    ("unknown-week", "/layers/crop/2030-01-07/tiles/WebMercatorQuad/14/0/0.png", "2030-01-07"),
    ("malformed-week", "/layers/crop/latest/WebMercatorQuad/tilejson.json", "YYYY-MM-DD"),
    ("week-dotdot", "/layers/crop/../tiles/WebMercatorQuad/14/0/0.png", "'..'"),
    ("week-without-layer", f"/layers/crop/{W1}/tiles/WebMercatorQuad/14/0/0.png", "no crop"),
    ("week-encoded-dotdot", "/layers/crop/%2e%2e%2f%2e%2e%2fetc/tiles/WebMercatorQuad/1/0/0.png",
     "/layers/crop/{week}"),
    ("week-encoded-passwd", "/layers/crop/..%2F..%2Fetc%2Fpasswd/WebMercatorQuad/tilejson.json",
     "/layers/crop/{week}"),
    ("week-absolute", "/layers/crop/%2Fetc%2Fpasswd/tiles/WebMercatorQuad/1/0/0.png", "{week}"),
    ("week-dotdot-json", "/layers/sos/%2e%2e/WebMercatorQuad/tilejson.json", "'..'"),
    ("tile-url-param", f"{TILE}/14/0/0.png?url=file:///etc/passwd", "url"),
    ("tilejson-url-param", f"/layers/crop/{W}/WebMercatorQuad/tilejson.json?url=/etc/passwd",
     "url"),
    ("z-negative", f"{TILE}/-1/0/0.png", "z=-1"),
    ("z-too-deep", f"{TILE}/30/0/0.png", "z=30"),
    ("x-too-large", f"{TILE}/3/8/0.png", "x=8"),
    ("y-negative", f"{TILE}/3/0/-1.png", "y=-1"),
    ("z-not-int", f"{TILE}/a/0/0.png", "z"),
    ("tilesize-huge", f"{TILE}/14/0/0.png?tilesize=100000", "tilesize"),
    ("other-tms", f"/layers/crop/{W}/tiles/WGS1984Quad/1/0/0.png", "WebMercatorQuad"),
    ("lon-200", "/api/point?lon=200&lat=14", "lon 200"),
    ("lat-minus-95", "/api/point?lon=100&lat=-95", "lat -95"),
    ("lon-text", "/api/point?lon=..%2Fetc&lat=1", "lon"),
    ("point-week-traversal", "/api/point?lon=100&lat=14&week=..%2F..%2Fetc", "YYYY-MM-DD"),
    ("download-unknown-tile", f"/download/{W}/T99/crop.tif", "T99"),
    ("download-unknown-product", f"/download/{W}/{{tile}}/passwd.tif", "crop, sos"),
    ("download-missing-product", f"/download/{W1}/{{tile}}/crop.tif", "no crop"),
    ("download-tile-traversal", f"/download/{W}/..%2F..%2F..%2Fetc/crop.tif", "{tile}"),
    ("download-tile-dotdot", f"/download/{W}/../crop.tif", "'..'"),
    ("download-week-traversal", "/download/..%2F..%2Fetc/{tile}/crop.tif", "{week}"),
    ("download-week-absolute", "/download/%2Fetc/{tile}/sos.tif", "{week}"),
    ("download-product-traversal", f"/download/{W}/{{tile}}/..%2F..%2Fcrop.tif", "{product}"),
    ("download-unknown-week", "/download/2030-01-07/T00/crop.tif", "2030-01-07"),
]


def field_tile(published, z: int = 14) -> morecantile.Tile:
    return morecantile.tms.get("WebMercatorQuad").tile(*published.field_point, z)


def fill(path: str, published) -> str:
    return (path.replace("{week}", published.mapped_weeks[0])
            .replace("{week1}", published.weeks[0]).replace("{tile}", published.field_tile))


def assert_clean_4xx(r, data_root: str) -> dict:
    assert 400 <= r.status < 500, (r.status, r.body[:300])
    assert b"root:" not in r.body and data_root.encode() not in r.body
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(("path", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_is_a_clear_4xx(tiler_url, published, data_root, path, expect):
    r = http_get(tiler_url + fill(path, published))
    detail = assert_clean_4xx(r, data_root)["detail"]
    assert fill(expect, published) in detail or expect in detail, detail


@pytest.mark.parametrize("path", ["/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                                  "/static/../../../../etc/passwd", "/../../etc/passwd"])
def test_static_files_stay_in_their_folder(tiler_url, path):
    r = http_get(tiler_url + path)
    assert 400 <= r.status < 500 and b"root:" not in r.body


def test_routes_that_reveal_paths_are_not_registered(tiler_url, published):
    week = published.mapped_weeks[0]
    for tail in ("info", "info.geojson", "tiles", "tiles/WebMercatorQuad",
                 "point/100,14", "point/100,14/assets", "bbox/100,14,101,15/assets",
                 "WebMercatorQuad/map.html", "map"):
        r = http_get(f"{tiler_url}/layers/crop/{week}/{tail}")
        assert r.status == 404, (tail, r.status)
    for path in ("/cog/info?url=/etc/passwd", "/mosaicjson/info?url=/etc/passwd", "/redoc"):
        assert http_get(tiler_url + path).status == 404


def test_stock_query_parameters_are_ignored(tiler_url, published):
    """bidx/expression/colormap/rescale cannot change what a tile shows."""
    t = field_tile(published)
    base = (f"{tiler_url}/layers/crop/{published.mapped_weeks[0]}/tiles/WebMercatorQuad/"
            f"{t.z}/{t.x}/{t.y}.png")
    plain = http_get(base)
    assert plain.status == 200 and plain.body.startswith(b"\x89PNG")
    for q in ("bidx=2", "expression=b1*0", "colormap_name=viridis", "rescale=0,1",
              "nodata=1", "pixel_selection=highest", "buffer=100"):
        r = http_get(f"{base}?{q}")
        assert (r.status, r.body) == (plain.status, plain.body), q


def forge_week(root: Path, key: str, assets: list[str]) -> Path:
    """A manifest + crop mosaic of week ``key`` whose mosaic names ``assets``."""
    folder = root / "week_layers"
    week = WeekManifest.read(next(folder.glob("*.json")))
    crop = json.loads(next(folder.glob("*/crop.mosaic.json")).read_text())
    crop["tiles"] = {qk: assets for qk in crop["tiles"]}
    (folder / key).mkdir()
    (folder / key / "crop.mosaic.json").write_text(json.dumps(crop))
    week = replace(week, week=key, layers=ManifestLayers(crop=True, confidence=True, sos=False,
                                                         coverage=False),
                   mosaics={"crop": f"week_layers/{key}/crop.mosaic.json"})
    path = folder / f"{key}.json"
    path.write_text(week.to_json())
    return path


def remove_week(path: Path) -> None:
    for f in path.with_suffix("").iterdir():
        f.unlink()
    path.with_suffix("").rmdir()
    path.unlink()


def test_mosaic_naming_files_outside_the_root_is_refused(tiler_url, published, data_root):
    root = Path(published.root)
    inside = str(root / "crop_map" / published.field_tile / f"{published.mapped_weeks[0]}.tif")
    for key, asset in (("2031-01-06", "/etc/passwd"),
                       ("2031-01-13", str(root / ".." / ".." / "etc" / "passwd")),
                       ("2031-01-20", "file:///etc/passwd")):
        path = forge_week(root, key, [inside, asset])
        try:
            for url in (f"/layers/crop/{key}/tiles/WebMercatorQuad/0/0/0.png",
                        f"/layers/crop/{key}/WebMercatorQuad/tilejson.json"):
                detail = assert_clean_4xx(http_get(tiler_url + url), data_root)["detail"]
                assert "outside the data root" in detail and "passwd" not in detail
        finally:
            remove_week(path)


def test_server_errors_do_not_reveal_paths(tiler_url, published, data_root):
    root = Path(published.root)
    missing = str(root / "crop_map" / "T00" / "missing.tif")
    path = forge_week(root, "2031-02-03", [missing])
    try:
        t = field_tile(published)
        r = http_get(f"{tiler_url}/layers/crop/2031-02-03/tiles/WebMercatorQuad/"
                     f"{t.z}/{t.x}/{t.y}.png")
        assert r.status == 500 and "server log" in r.json()["detail"]
        assert data_root.encode() not in r.body and b"missing.tif" not in r.body
    finally:
        remove_week(path)
    assert not os.path.exists(path)
