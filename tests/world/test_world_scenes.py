import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rio_cogeo.cogeo import cog_validate

from cropassets.world import sentinel1 as s1
from cropassets.world import sentinel2 as s2
from cropassets.world.clouds import SCL_CLOUDS, SCL_SHADOW
from cropassets.world.noise import upsample2


def _read(item, key):
    with rasterio.open(item["assets"][key]["href"]) as src:
        return src.read(1)


def _scene(model, item_id):
    return next(s for s in s2.plan_scenes(model) if s.id == item_id)


def _monsoon(items):
    return [it for it in items if 6 <= int(it["properties"]["datetime"][5:7]) <= 10]


def test_monsoon_is_cloudy_with_some_clear_scenes(s2_items):
    wet = [it["properties"]["eo:cloud_cover"] for it in _monsoon(s2_items)]
    assert len(wet) > 40
    assert np.median(wet) > 35
    assert sum(c > 60 for c in wet) >= 8
    months = {}
    for it in s2_items:
        months.setdefault(it["properties"]["datetime"][:7], []).append(
            it["properties"]["eo:cloud_cover"])
    for month, covers in months.items():
        if len(covers) >= 5:  # full months
            assert min(covers) < 10, month


def test_scl_marks_most_but_not_all_clouds(model, s2_items):
    cloudy = [it for it in _monsoon(s2_items) if it["properties"]["proj:epsg"] == 32647
              and 30 < it["properties"]["eo:cloud_cover"] < 90]
    assert cloudy
    thick_flagged, thick_total, thin_missed, shadow_missed, shadow_total = 0, 0, 0, 0, 0
    for it in cloudy[:4]:
        r = s2.render(model, _scene(model, it["id"]))
        scl = _read(it, "scl")
        np.testing.assert_array_equal(scl, r.scl)
        flagged = np.isin(scl, SCL_CLOUDS)
        thick = r.clouds.alpha > 0.5
        thick_total += thick.sum()
        thick_flagged += (thick & flagged).sum()
        thin_missed += ((r.clouds.alpha > 0.05) & (r.clouds.alpha < 0.3) & ~flagged).sum()
        shadow = (r.clouds.shadow > 0.4) & ~flagged
        shadow_total += shadow.sum()
        shadow_missed += (shadow & (scl != SCL_SHADOW)).sum()
    assert thick_flagged / thick_total >= 0.8
    assert thin_missed > 100  # thin cloud edges left unmarked
    assert 0.05 < shadow_missed / shadow_total < 0.6  # part of the shadow missed


def test_dn_matches_model_reflectance(model, s2_items):
    it = next(i for i in s2_items if i["properties"]["proj:epsg"] == 32647
              and 5 < i["properties"]["eo:cloud_cover"] < 80)
    r = s2.render(model, _scene(model, it["id"]))
    a20 = r.clouds.alpha + r.clouds.shadow + r.clouds.cirrus
    clear = upsample2(a20, r.surface.shape[1:]) == 0  # clouds as applied at 10 m
    assert clear.sum() > 1000
    band = it["assets"]["red"]["raster:bands"][0]
    assert (band["scale"], band["offset"], band["nodata"]) == (0.0001, -0.1, 0)
    dn = _read(it, "red")
    assert dn.dtype == np.uint16 and dn.min() >= 1000  # BOA offset: reflectance 0 -> 1000
    refl = dn.astype(np.float64) * band["scale"] + band["offset"]
    err = np.abs(refl - r.surface[2])[clear]
    assert err.max() <= 0.5e-4 + 1e-6
    np.testing.assert_allclose(refl, r.observed[2], atol=0.5e-4 + 1e-6, rtol=0)
    swir = _read(it, "swir16").astype(np.float64) * 1e-4 - 0.1
    assert swir.shape == (dn.shape[0] // 2, dn.shape[1] // 2)
    np.testing.assert_allclose(swir, r.observed20[4], atol=0.5e-4 + 1e-6, rtol=0)


def test_neighbour_zone_scenes(model, s2_items):
    n = [it for it in s2_items if it["properties"]["proj:epsg"] == 32648]
    assert 0.15 < len(n) / len(s2_items) < 0.35
    it = n[0]
    assert it["properties"]["grid:code"].startswith("MGRS-48")
    with rasterio.open(it["assets"]["red"]["href"]) as src:
        assert src.crs.to_epsg() == 32648
        assert list(src.shape) == it["assets"]["red"]["proj:shape"]
        assert list(src.transform)[:6] == it["assets"]["red"]["proj:transform"]
        sim = model.layout.sim
        with WarpedVRT(src, crs=sim.crs, transform=sim.transform, width=sim.width,
                       height=sim.height, resampling=Resampling.bilinear) as vrt:
            back = vrt.read(1)
    r = s2.render(model, _scene(model, it["id"]))
    m = model.layout.margin
    inner = (slice(m, -m), slice(m, -m))
    assert (back[inner] > 0).all(), "the region is fully covered"
    diff = np.abs(back[inner] * 1e-4 - 0.1 - r.observed[2][inner])
    assert np.median(diff) < 0.01


def test_cogs_validate(s2_items, s1_items):
    for it in (s2_items[0], next(i for i in s2_items if i["properties"]["proj:epsg"] == 32648),
               s1_items[0]):
        for asset in it["assets"].values():
            assert Path(asset["href"]).is_absolute()
            ok, errors, _ = cog_validate(asset["href"], quiet=True)
            assert ok, errors


def test_s1_backscatter_and_speckle(model, s1_items):
    it = next(i for i in s1_items if i["properties"]["sat:orbit_state"] == "descending")
    scene = next(s for s in s1.plan_scenes(model) if s.id == it["id"])
    r = s1.render(model, scene)
    vv, vh = _read(it, "vv"), _read(it, "vh")
    assert vv.dtype == np.float32
    np.testing.assert_array_equal(np.stack([vv, vh]), r.gamma0)
    ratio = (r.gamma0 / r.clean).ravel()
    assert abs(ratio.mean() - 1) < 0.02
    assert abs(ratio.var() - 1 / s1.LOOKS) < 0.03
    # state levels from the clean (speckle-free) image at 20 m, by parcel class
    fid20 = model.parcels.fid[::2, ::2]
    sm, _ = model.season_at(scene.date)
    code = sm.code[fid20]
    db = 10 * np.log10(r.clean)
    assert -24 < np.median(db[0][code == 6]) < -19  # open water VV
    assert -9 < np.median(db[0][code == 5]) < -5  # forest VV
    assert -4 < np.median(db[0][code == 7]) < 0  # built-up VV


def test_s1_orbits_and_coverage(s1_items):
    states = {it["properties"]["sat:orbit_state"] for it in s1_items}
    assert states == {"ascending", "descending"}
    asc = next(i for i in s1_items if i["properties"]["sat:orbit_state"] == "ascending")
    vv = _read(asc, "vv")
    w = vv.shape[1]
    assert (vv[:, : int(0.15 * w)] == -32768).all()  # west outside the swath
    assert (vv[:, int(0.45 * w):] > 0).all()
    dates = sorted({dt.date.fromisoformat(i["properties"]["datetime"][:10]) for i in s1_items})
    gaps = {(b - a).days for a, b in zip(dates, dates[1:], strict=False)}
    assert 6 in gaps and min(gaps) >= 6


@pytest.mark.parametrize("collection", ["s2", "s1"])
def test_revisit(s2_items, s1_items, collection):
    items = s2_items if collection == "s2" else s1_items
    times = sorted(dt.datetime.fromisoformat(i["properties"]["datetime"].replace("Z", "+00:00"))
                   for i in items)
    first = times[0].date()
    assert first <= dt.date(2024, 5, 6) - dt.timedelta(days=7)
    if collection == "s2":
        assert all(t.hour == 3 and 40 <= t.minute <= 50 for t in times)
        assert {(b - a).days for a, b in zip(times, times[1:], strict=False)} >= {5}
