"""Replay of real Planetary Computer items end to end (profile ``planetary-computer``).

Sentinel-2: the two real ``sentinel-2-l2a`` T13TDE items of 2024-08-23/25 carry no raster
extension, so the reflectance offset must come from ``s2:processing_baseline`` (05.11:
-0.1). Sentinel-1: a real ``sentinel-1-rtc`` frame of 2024-04-19 (linear gamma0, float32,
nodata -32768, EPSG:32633): the weekly cube's backscatter is in dB. Hrefs are rewritten to
local COGs (``tests/replay_world.py``); local hrefs need no URL signing, so the
planetary-computer package is not needed here.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer
from replay_world import local_asset, real_items, rewrite, run_one_tile

from cropassets.core.storage import open_zarr

pytestmark = pytest.mark.slow

S2_TILE = (500000.0, 4440000.0, 500640.0, 4440640.0)  # EPSG:32613, lon -105.0 lat 40.1
S2_REFL = {"B02": 0.04, "B03": 0.07, "B04": 0.05, "B08": 0.40, "B11": 0.20}
S1_LINEAR = {"vv": 0.05, "vh": 0.01}


def _area(tile):
    return (tile[0] - 640, tile[1] - 640, tile[2] + 640, tile[3] + 640)


@pytest.fixture(scope="module")
def s2_replay(tmp_path_factory):
    items = real_items("planetarycomputer_sentinel-2-l2a_*_T13TDE_*.json")
    if len(items) != 2:
        pytest.skip("the two Planetary Computer T13TDE items of ../shared/real-stac")
    root = tmp_path_factory.mktemp("pc_s2")
    local = []
    for it in items:
        folder = root / "cogs" / it["id"]
        hrefs = {k: local_asset(folder / f"{k}.tif", _area(S2_TILE), "EPSG:32613",
                                10.0 if k != "B11" else 20.0, "uint16", 0,
                                round((v + 0.1) / 1e-4)) for k, v in S2_REFL.items()}
        hrefs["SCL"] = local_asset(folder / "SCL.tif", _area(S2_TILE), "EPSG:32613", 20.0,
                                   "uint8", 0, 4)
        local.append(rewrite(it, hrefs, root / "absent"))
    data = run_one_tile(root, {"sentinel-2-l2a": local, "sentinel-1-rtc": []}, "EPSG:32613",
                        S2_TILE, "2023-08-21", "2024-08-19", 2, "planetary-computer")
    return data, items


def test_s2_offset_from_the_processing_baseline(s2_replay):
    data, items = s2_replay
    assert {it["properties"]["s2:processing_baseline"] for it in items} == {"05.11"}
    raw = open_zarr(data / "raw_scenes" / "R00" / "2024-08-19.zarr")
    assert sorted(str(v) for v in raw["s2_id"].values) == sorted(it["id"] for it in items)
    names = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16"}
    for key, refl in S2_REFL.items():
        values = raw[names[key]].values
        assert (values >= 0).all() and (values <= 1.2).all()
        np.testing.assert_allclose(values, refl, atol=1e-4, err_msg=key)
    assert raw.attrs["radar"] == "none: no sentinel-1-rtc scene this week"


@pytest.fixture(scope="module")
def s1_replay(tmp_path_factory):
    items = real_items(
        "planetarycomputer_sentinel-1-rtc_*_20240419T045814_20240419T045839_*.json")
    if len(items) != 1:
        pytest.skip("the Planetary Computer RTC frame of 2024-04-19 of ../shared/real-stac")
    item = items[0]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(
        15.734, 32.99)  # inside this frame only
    tile = (round(x, -3), round(y, -3), round(x, -3) + 640, round(y, -3) + 640)
    root = tmp_path_factory.mktemp("pc_s1")
    hrefs = {k: local_asset(root / "cogs" / f"{k}.tif", _area(tile), "EPSG:32633", 10.0,
                            "float32", -32768, v) for k, v in S1_LINEAR.items()}
    data = run_one_tile(
        root, {"sentinel-2-l2a": [], "sentinel-1-rtc": [rewrite(item, hrefs, root / "absent")]},
        "EPSG:32633", tile, "2023-04-17", "2024-04-15", 1, "planetary-computer")
    return data, item


def test_s1_rtc_backscatter_in_db(s1_replay):
    data, item = s1_replay
    raw = open_zarr(data / "raw_scenes" / "R00" / "2024-04-15.zarr")
    assert [str(v) for v in raw["s1_id"].values] == [item["id"]]
    assert raw.attrs["radar"] == "loaded"
    np.testing.assert_allclose(raw["vv"].values, S1_LINEAR["vv"], rtol=1e-5)
    cube = open_zarr(data / "weekly_cube" / "R00" / "2024-04-15.zarr")
    vv = cube["features"].sel(feature="vv").values
    vh = cube["features"].sel(feature="vh").values
    np.testing.assert_allclose(vv, 10 * np.log10(S1_LINEAR["vv"]), atol=0.01)  # -13.0 dB
    np.testing.assert_allclose(vh, 10 * np.log10(S1_LINEAR["vh"]), atol=0.01)  # -20.0 dB
    assert (vv > -30).all() and (vv < 5).all()
