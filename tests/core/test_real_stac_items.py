"""Every real STAC item of ``../shared/real-stac/items`` read as the profiles read them.

The items are exactly what Earth Search, Planetary Computer and the Copernicus Data Space
publish (README there). For each: the assets a profile needs resolve, the scale/offset rule
is the right one for that item, the CRS comes from ``proj:epsg`` or ``proj:code`` at item
or asset level, the datetimes parse and the Sentinel-1 product kind is recognised.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from cropassets.core.stac.catalog_profiles import (
    CDSE,
    EARTH_SEARCH,
    PLANETARY_COMPUTER,
    S1_BANDS,
    S2_BANDS,
    get_profile,
)
from cropassets.core.stac.item_metadata import (
    UnsupportedScene,
    asset_crs,
    item_datetime,
    item_interval,
    processing_baseline,
    reflectance_scale_offset,
    s1_product_kind,
)
from cropassets.core.stac.scenes import check_s1_item


def _items_dir() -> Path:
    env = os.environ.get("CROPASSETS_REAL_STAC")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "real-stac" / "items"


ITEMS = sorted(_items_dir().glob("*.json")) if _items_dir().is_dir() else []
pytestmark = pytest.mark.skipif(not ITEMS, reason="../shared/real-stac/items not found "
                                "(or set CROPASSETS_REAL_STAC)")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _kind(path: Path) -> str:
    """<provider>_<collection> of the file name."""
    provider, collection = path.name.split("_")[:2]
    return f"{provider}_{collection}"


def test_all_forty_items_are_there():
    assert len(ITEMS) == 40
    assert {_kind(p) for p in ITEMS} == {
        "cdse_sentinel-2-l2a", "earthsearch_sentinel-1-grd", "earthsearch_sentinel-2-c1-l2a",
        "earthsearch_sentinel-2-l2a", "planetarycomputer_sentinel-1-grd",
        "planetarycomputer_sentinel-1-rtc", "planetarycomputer_sentinel-2-l2a"}


PROFILE_OF = {"earthsearch_sentinel-2-c1-l2a": EARTH_SEARCH,
              "earthsearch_sentinel-2-l2a": EARTH_SEARCH,  # same asset keys, old collection
              "planetarycomputer_sentinel-2-l2a": PLANETARY_COMPUTER,
              "cdse_sentinel-2-l2a": CDSE}


def _expected_offset(item: dict, kind: str) -> tuple[float, str]:
    """The offset each catalog's documentation and the README's quirks call right."""
    props = item["properties"]
    if kind == "earthsearch_sentinel-2-l2a":  # the flag is the truth (earth-search#9)
        applied = props["earthsearch:boa_offset_applied"]
        pb = float(props["s2:processing_baseline"])
        return (0.0 if applied or pb < 4 else -0.1), "earthsearch:boa_offset_applied"
    if kind == "earthsearch_sentinel-2-c1-l2a":
        return -0.1, "raster:bands"
    if kind == "cdse_sentinel-2-l2a":
        return -0.1, "raster:scale/raster:offset"
    pb = float(props["s2:processing_baseline"])  # Planetary Computer: nothing declared
    return (-0.1 if pb >= 4 else 0.0), "processing baseline"


@pytest.mark.parametrize("path", [p for p in ITEMS if _kind(p) in PROFILE_OF],
                         ids=lambda p: p.stem)
def test_sentinel2_item_assets_scale_offset_crs_and_dates(path):
    item = _load(path)
    kind = _kind(path)
    profile = PROFILE_OF[kind]
    offset, rule = _expected_offset(item, kind)
    for band in (*S2_BANDS, "scl"):
        key = profile.s2_assets[band]
        assert key in item["assets"], f"{path.name}: {band} -> {key} missing"
        assert item["assets"][key]["href"]
        if band == "scl":
            continue
        got = reflectance_scale_offset(item, key)
        assert got.scale == pytest.approx(1e-4) and got.offset == pytest.approx(offset), (
            f"{path.name} {key}: {got}")
        assert got.rule.startswith(rule), got.rule
        # a typical vegetated DN lands in reflectance range
        assert 0.0 <= 3000 * got.scale + got.offset <= 1.2
    crs = asset_crs(item, profile.s2_assets["red"])
    assert crs is not None and crs[:8] in ("EPSG:326", "EPSG:327"), crs
    start, end = item_interval(item)
    assert start <= item_datetime(item) <= end
    assert item_datetime(item).year >= 2020 and str(item_datetime(item).tz) == "UTC"


def test_same_acquisition_two_catalogs_two_baselines_two_offsets():
    """T32TMT 2020-07-05: PC kept baseline 02.12 (no offset), CDSE reprocessed it (05.00)."""
    pc = _load(_items_dir() / "planetarycomputer_sentinel-2-l2a_S2B_MSIL2A_20200705T101559_"
               "R065_T32TMT_20200825T083452.json")
    cdse = _load(_items_dir() / "cdse_sentinel-2-l2a_S2B_MSIL2A_20200705T101559_N0500_R065_"
                 "T32TMT_20230530T175912.json")
    assert processing_baseline(pc) == (2, 12) and processing_baseline(cdse) == (5, 0)
    assert reflectance_scale_offset(pc, "B04").offset == 0.0
    assert reflectance_scale_offset(cdse, "B04_10m").offset == pytest.approx(-0.1)
    assert item_datetime(pc) == item_datetime(cdse)
    assert asset_crs(pc, "B04") == asset_crs(cdse, "B04_10m") == "EPSG:32632"


def test_earth_search_flag_beats_the_declared_offset():
    """ES old collection, same date, two sequences: offset 0 declared + flag false (02.14),
    offset -0.1 declared + flag true (05.00): both mean reflectance = DN * 1e-4."""
    old = _load(_items_dir() / "earthsearch_sentinel-2-l2a_S2A_32TMT_20200305_0_L2A.json")
    new = _load(_items_dir() / "earthsearch_sentinel-2-l2a_S2A_32TMT_20200305_1_L2A.json")
    assert new["assets"]["red"]["raster:bands"][0]["offset"] == -0.1
    for item in (old, new):
        assert reflectance_scale_offset(item, "red").offset == 0.0
    flipped = json.loads(json.dumps(new))
    flipped["properties"]["earthsearch:boa_offset_applied"] = False
    assert reflectance_scale_offset(flipped, "red").offset == pytest.approx(-0.1)


def test_cdse_quirks_are_tolerated():
    """STAC 1.1: asset-level proj:code, a null proj:code on the thumbnail, storage:refs as
    a string; the baseline is processing:version; millisecond datetimes."""
    path = next(p for p in ITEMS if _kind(p) == "cdse_sentinel-2-l2a")
    item = _load(path)
    assert item["stac_version"] == "1.1.0"
    assert "proj:epsg" not in item["properties"] and "proj:code" not in item["properties"]
    assert asset_crs(item, "B04_10m") == "EPSG:32632"
    if "thumbnail" in item["assets"]:
        assert item["assets"]["thumbnail"].get("proj:code", "absent") in (None, "absent")
        assert asset_crs(item, "thumbnail") is None  # falls back to properties: none there
    assert processing_baseline(item) >= (5, 0)
    assert item_datetime(item).microsecond % 1000 == 0


S1_EXPECTED = {"planetarycomputer_sentinel-1-rtc": "RTC",
               "planetarycomputer_sentinel-1-grd": "GRD",
               "earthsearch_sentinel-1-grd": "GRD"}


@pytest.mark.parametrize("path", [p for p in ITEMS if _kind(p) in S1_EXPECTED],
                         ids=lambda p: p.stem)
def test_sentinel1_item_kind_dates_and_crs(path):
    item = _load(path)
    kind = _kind(path)
    assert s1_product_kind(item) == S1_EXPECTED[kind]
    assert item["properties"]["sar:product_type"] == "GRD"  # even on the RTC items
    start, end = item_interval(item)  # PC: "2024-04-19 04:59:04.220006+00:00"
    assert start < end and start <= item_datetime(item) <= end
    assert (end - start) < pd.Timedelta(minutes=2)
    if kind == "planetarycomputer_sentinel-1-rtc":
        check_s1_item(item)  # accepted
        for band in S1_BANDS:
            key = PLANETARY_COMPUTER.s1_assets[band]
            assert key in item["assets"]
            assert item["assets"][key]["raster:bands"][0]["nodata"] == -32768
        assert asset_crs(item, "vv").startswith("EPSG:326")
    else:
        with pytest.raises(UnsupportedScene, match=item["id"]) as err:
            check_s1_item(item)
        assert "sentinel-1-rtc" in str(err.value) and "GRD" in str(err.value)
    if kind == "earthsearch_sentinel-1-grd":
        assert asset_crs(item) == "EPSG:4326"  # GCP-derived lat/lon grid
    if kind == "planetarycomputer_sentinel-1-grd":
        assert asset_crs(item) is None  # no projection extension at all


def test_planetary_computer_s1_start_datetime_is_not_rfc3339_and_still_parses():
    path = next(p for p in ITEMS if _kind(p) == "planetarycomputer_sentinel-1-rtc")
    item = _load(path)
    raw = item["properties"]["start_datetime"]
    assert " " in raw and raw.endswith("+00:00")
    start, _ = item_interval(item)
    assert start == pd.Timestamp(raw.replace(" ", "T"))


def test_profiles_match_the_real_catalogs():
    assert EARTH_SEARCH.s2_collection == "sentinel-2-c1-l2a"
    assert EARTH_SEARCH.s1_collection is None and "sentinel-1-rtc" in EARTH_SEARCH.s1_note
    assert PLANETARY_COMPUTER.s1_collection == "sentinel-1-rtc" and PLANETARY_COMPUTER.sign_urls
    assert CDSE.s2_collection == "sentinel-2-l2a" and CDSE.s1_collection is None
    for profile in (EARTH_SEARCH, PLANETARY_COMPUTER, CDSE):
        assert profile.access
        assert get_profile(profile.name) is profile
    with pytest.raises(ValueError, match="unknown catalog profile 'earthsearch'.*cdse"):
        get_profile("earthsearch")


def test_an_item_that_cannot_tell_its_offset_is_refused_by_name():
    item = {"id": "S2X_NOINFO", "properties": {}, "assets": {"red": {"href": "x.tif"}}}
    with pytest.raises(ValueError, match="S2X_NOINFO.*'red'.*offset"):
        reflectance_scale_offset(item, "red")
    with pytest.raises(KeyError, match="S2X_NOINFO.*'nir'"):
        reflectance_scale_offset(item, "nir")


def test_a_declared_scale_without_offset_takes_the_baseline_offset():
    item = {"id": "S2Y", "properties": {"s2:processing_baseline": "05.10"},
            "assets": {"red": {"raster:bands": [{"scale": 0.0001}]}}}
    got = reflectance_scale_offset(item, "red")
    assert (got.scale, got.offset) == (pytest.approx(1e-4), pytest.approx(-0.1))
    assert got.rule == "processing baseline 05.10"


def test_planetary_computer_hrefs_are_signed_local_ones_pass_unchanged():
    import importlib.util

    import pystac

    from cropassets.resources.stac_catalog import StacCatalog

    path = next(p for p in ITEMS if _kind(p) == "planetarycomputer_sentinel-2-l2a")
    item = pystac.Item.from_dict(_load(path))
    sign = StacCatalog(url="http://127.0.0.1:1", profile="planetary-computer")._modifier()
    assert StacCatalog(url="http://127.0.0.1:1", profile="earth-search")._modifier() is None
    local = item.clone()
    for asset in local.assets.values():
        asset.href = "/data/local/" + asset.href.rsplit("/", 1)[-1]
    assert sign(local) is local  # nothing on Planetary Computer's storage: no token needed
    if importlib.util.find_spec("planetary_computer") is None:
        with pytest.raises(ImportError, match=f"{item.id}.*cropassets\\[planetary-computer\\]"):
            sign(item)
