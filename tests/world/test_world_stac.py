import json
from pathlib import Path

import pystac
import rasterio

from cropassets.world.catalog_items import COG_TYPE

S2_PROPS = {"eo:cloud_cover", "proj:epsg", "s2:processing_baseline", "platform", "constellation",
            "earthsearch:boa_offset_applied", "mgrs:utm_zone", "mgrs:latitude_band",
            "mgrs:grid_square", "grid:code", "datetime"}
S1_PROPS = {"sar:polarizations", "sar:instrument_mode", "sat:orbit_state", "sat:relative_orbit",
            "proj:epsg", "datetime", "platform"}


def _check_common(it, collection):
    assert it["stac_version"] == "1.0.0" and it["collection"] == collection
    pystac.Item.from_dict(it)  # parses
    west, south, east, north = it["bbox"]
    assert 100.0 < west < east < 100.4 and 14.4 < south < north < 14.8
    assert it["geometry"]["type"] == "Polygon"
    for asset in it["assets"].values():
        assert asset["type"] == COG_TYPE
        assert asset["roles"][0] == "data"
        assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()
        assert "proj:shape" in asset and "proj:transform" in asset and "gsd" in asset


def test_s2_items(s2_items):
    platforms = set()
    for it in s2_items:
        _check_common(it, "sentinel-2-l2a")
        p = it["properties"]
        assert S2_PROPS <= p.keys()
        assert p["s2:processing_baseline"] == "05.10"
        assert p["earthsearch:boa_offset_applied"] is False
        assert p["constellation"] == "sentinel-2"
        platforms.add(p["platform"])
        assert set(it["assets"]) == {"blue", "green", "red", "nir", "swir16", "scl"}
        assert it["assets"]["nir"]["gsd"] == 10 and it["assets"]["swir16"]["gsd"] == 20
        rb = it["assets"]["swir16"]["raster:bands"][0]
        assert rb == {**rb, "scale": 0.0001, "offset": -0.1, "nodata": 0, "data_type": "uint16"}
        exts = " ".join(it["stac_extensions"])
        for e in ("eo", "projection", "raster", "mgrs", "grid"):
            assert f"stac-extensions.github.io/{e}/" in exts
    assert platforms == {"sentinel-2a", "sentinel-2b"}
    with rasterio.open(s2_items[0]["assets"]["scl"]["href"]) as src:
        assert list(src.shape) == s2_items[0]["assets"]["scl"]["proj:shape"]
        assert src.dtypes[0] == "uint8"


def test_s1_items(s1_items):
    for it in s1_items:
        _check_common(it, "sentinel-1-rtc")
        p = it["properties"]
        assert S1_PROPS <= p.keys()
        assert p["sar:polarizations"] == ["VV", "VH"] and p["sar:instrument_mode"] == "IW"
        assert set(it["assets"]) == {"vv", "vh"}
        rb = it["assets"]["vv"]["raster:bands"][0]
        assert rb["nodata"] == -32768 and rb["data_type"] == "float32"
        assert "stac-extensions.github.io/sar/" in " ".join(it["stac_extensions"])
    assert len({it["properties"]["sat:relative_orbit"] for it in s1_items}) == 2


def test_collections(world, s2_items, s1_items):
    doc = json.loads((world / "stac" / "collections.json").read_text())
    colls = {c["id"]: c for c in doc["collections"]}
    assert set(colls) == {"sentinel-2-l2a", "sentinel-1-rtc"}
    for cid, items in (("sentinel-2-l2a", s2_items), ("sentinel-1-rtc", s1_items)):
        c = pystac.Collection.from_dict(colls[cid])
        interval = colls[cid]["extent"]["temporal"]["interval"][0]
        times = sorted(i["properties"]["datetime"] for i in items)
        assert interval == [times[0], times[-1]]
        bbox = c.extent.spatial.bboxes[0]
        assert all(bbox[0] <= i["bbox"][0] and i["bbox"][2] <= bbox[2] for i in items)
    assert colls["sentinel-2-l2a"]["summaries"]["proj:epsg"] == [32647, 32648]
