"""The published products as STAC: the static catalog on disk and the tiler's STAC API,
searched with pystac-client over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pystac
import pytest
import rasterio
from pyproj import Transformer
from pystac_client import Client
from tiler_server import http_get

from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.publish.product_stac import stac_root, validate
from cropassets.core.publish.week_layers import manifest_path


def _point_box(lon: float, lat: float, d: float = 0.0005) -> list[float]:
    return [lon - d, lat - d, lon + d, lat + d]


def test_static_catalog_on_disk_is_complete_and_valid(published):
    root = Path(published.root)
    cat = pystac.Catalog.from_file(str(stac_root(root) / "catalog.json"))
    children = {c.id: c for c in cat.get_children()}
    assert sorted(children) == ["cropassets-coverage", "cropassets-crop", "cropassets-sos"]
    n_tiles = len(WeekManifest.read(manifest_path(root, published.weeks[0])).tiles)
    crop_items = list(children["cropassets-crop"].get_items())
    sos_items = list(children["cropassets-sos"].get_items())
    assert len(crop_items) == n_tiles * len(published.mapped_weeks)
    assert len(sos_items) == n_tiles * len(published.weeks)
    for item in crop_items + sos_items:
        validate(item.to_dict(include_self_link=False, transform_hrefs=False))
        # the relative href reaches the product COG on disk
        assert Path(item.assets["data"].get_absolute_href()).is_file()
    # the crop collection's extent covers every week published
    extent = children["cropassets-crop"].extent.temporal.intervals[0]
    assert extent[0].date().isoformat() == published.mapped_weeks[0]


def test_item_carries_projection_raster_classification_and_week(published):
    root = Path(published.root)
    week = published.mapped_weeks[0]
    doc = json.loads((stac_root(root) / "cropassets-crop"
                      / f"crop-{published.field_tile}-{week}.json").read_text())
    manifest = WeekManifest.read(manifest_path(root, week))
    props = doc["properties"]
    assert props["start_datetime"] == f"{week}T00:00:00Z" == props["datetime"]
    assert props["end_datetime"] == f"{manifest.last_observation_date}T23:59:59Z"
    assert props["cropassets:preliminary"] is manifest.preliminary is True
    assert props["cropassets:week_of_season"] == 3 and props["cropassets:season"] == "2025"
    # a manifest from before the served-model choice: the CNN2D's, val_accuracy = accuracy
    assert props["cropassets:model"]["val_accuracy"] == 0.9
    assert props["cropassets:model"]["kind"] == "cnn2d"
    assert props["cropassets:model"]["title"] == "CNN2D"
    cog = root / str(manifest.tiles[published.field_tile].crop)
    with rasterio.open(cog) as ds:
        assert props["proj:code"] == ds.crs.to_string()
        assert props["proj:shape"] == [ds.height, ds.width]
        assert props["proj:transform"] == list(ds.transform)[:6]
        assert props["proj:bbox"] == list(ds.bounds)
    bands = doc["assets"]["data"]["raster:bands"]
    assert [(b["name"], b["data_type"], b["nodata"], b.get("unit")) for b in bands] == [
        ("class", "uint8", 255, None), ("confidence", "uint8", 255, "%")]
    classes = doc["assets"]["data"]["classification:classes"]
    assert classes == bands[0]["classification:classes"]
    assert [(c["value"], c["name"], "#" + c["color_hint"].lower()) for c in classes] == [
        (c.code, c.name, c.color) for c in manifest.classes]
    assert any("classification" in e for e in doc["stac_extensions"])


def test_pystac_client_finds_a_weeks_items_by_bbox_and_datetime(published, tiler_url):
    client = Client.open(f"{tiler_url}/stac")
    assert {c.id for c in client.get_collections()} == {"cropassets-crop", "cropassets-sos",
                                                          "cropassets-coverage"}
    lon, lat = published.field_point
    week = published.mapped_weeks[1]
    search = client.search(bbox=_point_box(lon, lat), datetime=f"{week}T12:00:00Z",
                           collections=["cropassets-crop"])
    items = list(search.items())
    assert [i.id for i in items] == [f"crop-{published.field_tile}-{week}"]
    item = items[0]
    # the served asset is the tiler's download URL; reading it gives the field's class
    href = item.assets["data"].href
    assert href == f"{tiler_url}/download/{week}/{published.field_tile}/crop.tif"
    with rasterio.open(f"/vsicurl/{href}") as ds:
        x, y = Transformer.from_crs("EPSG:4326", ds.crs, always_xy=True).transform(lon, lat)
        assert next(ds.sample([(x, y)], indexes=1))[0] == published.field_class
    assert item.get_self_href() == (f"{tiler_url}/stac/collections/cropassets-crop/items/"
                                    f"{item.id}")
    validate(item.to_dict(transform_hrefs=False))
    # a whole week, both collections, GET paging of 1 item a page: every item once
    whole = client.search(datetime=f"{week}/{week}T23:59:59Z", limit=1, method="GET")
    ids = sorted(i.id for i in whole.items())
    tiles = sorted(WeekManifest.read(manifest_path(published.root, week)).tiles)
    assert ids == sorted(f"{p}-{t}-{week}" for t in tiles for p in ("crop", "sos", "coverage"))
    # week 1 has no model: SOS and coverage items only
    first = client.search(datetime=published.weeks[0], method="POST")
    assert {i.collection_id for i in first.items()} == {"cropassets-sos", "cropassets-coverage"}
    # outside every tile: nothing
    assert list(client.search(bbox=[0, 0, 0.1, 0.1]).items()) == []


@pytest.mark.parametrize(("path", "status", "names"), [
    ("/stac/collections/nope", 404, "cropassets-crop"),
    ("/stac/collections/cropassets-crop/items/crop-T99-2025-05-19", 404, "crop-T"),
    ("/stac/collections/..%2F..%2Fetc/items", 404, "cropassets-sos"),
    ("/stac/search?bbox=1,2", 400, "west,south,east,north"),
    ("/stac/search?bbox=a,b,c,d", 400, "bbox"),
    ("/stac/search?datetime=yesterday", 400, "RFC 3339"),
    ("/stac/search?datetime=2025-06-01/2025-05-01", 400, "start is after end"),
    ("/stac/search?collections=cropassets-nope", 404, "cropassets-crop"),
    ("/stac/search?limit=0", 400, "1..1000"),
    ("/stac/search?token=-3", 400, "token"),
])
def test_bad_stac_requests_name_what_exists(tiler_url, data_root, path, status, names):
    r = http_get(tiler_url + path)
    assert r.status == status, r.body[:300]
    detail = r.json()["detail"]
    assert names in detail
    assert data_root not in r.body.decode() and ".json" not in detail


def test_bad_post_search_is_400_not_500(tiler_url, data_root):
    import urllib.request

    from tiler_server import _DIRECT

    for body in ({"bbox": 5}, {"datetime": {"a": 1}}, {"collections": "x"},
                 {"limit": "ten"}, {"intersects": {"type": "Point"}}, {"ids": [1]}):
        req = urllib.request.Request(f"{tiler_url}/stac/search", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            _DIRECT.open(req, timeout=10)
            raise AssertionError(f"{body} was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400, (body, e.code, e.read()[:200])
            assert data_root not in e.read().decode()
