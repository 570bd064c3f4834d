"""Quality measurements behind the asset checks: numbers, edge cases, corrupt files."""

import warnings
from datetime import date

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

from cropassets.core import quality
from cropassets.core.plots import class_profiles_png, confusion_png
from cropassets.core.publish.cog import write_cog

TRANSFORM = from_origin(500000, 1600000, 10, 10)


# ------------------------------------------------------------------ scenes and clouds

def test_scene_count_minimums():
    assert quality.scene_count(2, 1).passed
    assert quality.scene_count(1, 0).passed  # a week without S1 pass is normal
    r = quality.scene_count(0, 1)
    assert not r.passed and r.metadata["s2_scenes"] == 0 and r.metadata["min_s2_scenes"] == 1
    assert not quality.scene_count(1, 0, min_s1=1).passed


def test_raw_clear_share_counts_valid_observations_only():
    scl = np.zeros((2, 2, 5), np.uint8)
    scl[0] = [[4, 4, 4, 9, 0], [5, 6, 7, 3, 0]]  # 6 clear of 8 valid (0 = outside swath)
    scl[1] = [[9, 9, 9, 9, 9], [8, 8, 10, 4, 0]]  # 1 clear of 9 valid
    r = quality.raw_clear_share(scl, min_share=0.3, scene_ids=["a", "b"])
    assert r.metadata["valid_observations"] == 17 and r.metadata["clear_observations"] == 7
    assert r.metadata["clear_share"] == pytest.approx(7 / 17)
    assert r.metadata["clear_share_per_scene"] == {"a": 0.75, "b": round(1 / 9, 4)}
    assert r.passed
    assert not quality.raw_clear_share(scl, min_share=0.5).passed


def test_raw_clear_share_of_an_empty_week_fails():
    r = quality.raw_clear_share(np.zeros((0, 4, 4), np.uint8))
    assert not r.passed and np.isnan(r.metadata["clear_share"]) and r.metadata["scenes"] == 0
    r = quality.raw_clear_share(np.zeros((1, 4, 4), np.uint8))  # a scene of nodata only
    assert not r.passed and r.metadata["valid_observations"] == 0
    assert r.metadata["clear_share_per_scene"] == {"0": None}


def test_cube_clear_share():
    n = np.array([[0, 1], [2, 0]], np.uint8)
    r = quality.cube_clear_share(n, min_share=0.5)
    assert r.passed and r.metadata["clear_pixel_share"] == 0.5
    assert r.metadata["mean_clear_observations"] == 0.75
    assert not quality.cube_clear_share(np.zeros((3, 3), np.uint8)).passed  # all clouded
    empty = quality.cube_clear_share(np.zeros((0, 0), np.uint8))  # empty tile
    assert not empty.passed and empty.metadata["pixels"] == 0


# ------------------------------------------------------------------ value ranges

def test_feature_ranges_reports_min_max_and_out_of_range():
    f = np.full((3, 2, 3), np.nan, np.float32)
    f[0] = [[0.1, 0.9, -0.2], [np.nan, 1.0, -1.0]]  # ndvi: all inside (bounds inclusive)
    f[1] = [[1.5, 0.2, np.nan], [np.nan, np.nan, np.nan]]  # lswi: 1 of 2 out
    f[2] = [[-12.0, -55.0, np.inf], [np.nan, -20, 3.0]]  # vh dB: -55 and inf out
    r = quality.feature_ranges(f, ["ndvi", "lswi", "vh"])
    assert not r.passed and r.metadata["out_of_range"] == 3
    per = r.metadata["features"]
    assert per["ndvi"] == {"range": [-1.0, 1.0], "finite": 5, "min": -1.0, "max": 1.0,
                           "out_of_range": 0, "out_of_range_share": 0.0}
    assert per["lswi"]["out_of_range_share"] == 0.5 and per["lswi"]["max"] == 1.5
    assert per["vh"]["out_of_range"] == 2 and per["vh"]["min"] == -55.0
    assert per["vh"]["out_of_range_share"] == pytest.approx(2 / 5)  # 4 finite + 1 inf
    assert "values out of range in ['lswi', 'vh']" in r.summary


def test_feature_ranges_all_nan_week_passes_and_unknown_features_are_listed():
    r = quality.feature_ranges(np.full((2, 4, 4), np.nan, np.float32), ["ndvi", "evi"])
    assert r.passed and r.metadata["unchecked_features"] == ["evi"]
    assert r.metadata["features"]["ndvi"] == {"range": [-1.0, 1.0], "finite": 0, "min": None,
                                             "max": None, "out_of_range": 0,
                                             "out_of_range_share": 0.0}


# ------------------------------------------------------------------ gap fill

def _cubes(values: np.ndarray, n_s2: np.ndarray, n_s1: np.ndarray):
    """values (F=2: ndvi, vv; W; y; x), counts (W, y, x)."""
    raw = xr.DataArray(values, dims=("feature", "week", "y", "x"),
                       coords={"feature": ["ndvi", "vv"]})
    n_obs = xr.DataArray(np.stack([n_s2, n_s1]), dims=("sensor", "week", "y", "x"),
                         coords={"sensor": ["s2", "s1"]})
    return raw, n_obs


def _fill(raw: xr.DataArray) -> xr.DataArray:
    """Stand-in gap-fill along week: the series mean in every hole, NaN if never seen."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return raw.fillna(raw.mean("week"))


def test_gap_fill_check_passes_where_unobserved_pixels_stay_nan():
    v = np.full((2, 3, 1, 3), np.nan, np.float32)
    v[0, 0, 0, 0], v[0, 2, 0, 0] = 0.2, 0.4  # ndvi seen in weeks 1 and 3 at pixel 0
    v[1, :, 0, :2] = -10.0  # vv everywhere but pixel 2
    n_s2 = np.zeros((3, 1, 3), np.uint8)
    n_s2[[0, 2], 0, 0] = 1
    n_s1 = (np.isfinite(v[1])).astype(np.uint8)
    raw, n_obs = _cubes(v, n_s2, n_s1)
    r = quality.gap_fill_check(_fill(raw), raw, n_obs)
    assert r.passed and r.metadata["failed_pairs"] == 0
    assert r.metadata["observed_pairs"] == 3  # ndvi@0, vv@0, vv@1
    assert r.metadata["legit_nan_share"] == pytest.approx(3 / 6)
    assert r.metadata["nan_share_after_fill"] == pytest.approx(9 / 18)
    assert r.metadata["features"]["ndvi"]["observed_share"] == pytest.approx(1 / 3)


def test_gap_fill_check_fails_on_holes_and_on_values_counts_do_not_explain():
    v = np.full((2, 2, 1, 2), 0.5, np.float32)
    v[1] = -8.0
    counts = np.ones((2, 1, 2), np.uint8)
    raw, n_obs = _cubes(v, counts, counts)
    filled = raw.copy()
    filled[0, 1, 0, 0] = np.nan  # a hole left in an observed ndvi series
    r = quality.gap_fill_check(filled, raw, n_obs)
    assert not r.passed and r.metadata["unfilled_pairs"] == 1
    assert r.metadata["failed_share"] == pytest.approx(1 / 4)
    # all-NaN composites whose counts say "observed": the composite lost its values
    lost = raw.copy(data=np.full(raw.shape, np.nan, np.float32))
    r = quality.gap_fill_check(lost, lost, n_obs)
    assert not r.passed and r.metadata["failed_share"] == 1.0
    # a value where nothing was ever observed is invented
    nothing = xr.zeros_like(n_obs)
    r = quality.gap_fill_check(raw, lost, nothing)
    assert not r.passed and r.metadata["invented_pairs"] == 4
    assert r.metadata["failed_share"] == 1.0  # no observed pair: any failure is total


def test_gap_fill_check_all_nan_week_and_empty_tile():
    # an all-NaN week with zero counts (all clouded out, no S1 pass) is legitimately NaN
    v = np.full((2, 1, 2, 2), np.nan, np.float32)
    zeros = np.zeros((1, 2, 2), np.uint8)
    raw, n_obs = _cubes(v, zeros, zeros)
    r = quality.gap_fill_check(raw, raw, n_obs)
    assert r.passed and r.metadata["observed_share"] == 0 and r.metadata["legit_nan_share"] == 1
    # empty tile: no pixel at all
    raw, n_obs = _cubes(np.zeros((2, 1, 0, 0), np.float32), np.zeros((1, 0, 0), np.uint8),
                        np.zeros((1, 0, 0), np.uint8))
    r = quality.gap_fill_check(raw, raw, n_obs)
    assert r.passed and r.metadata["pixels"] == 0 and np.isnan(r.metadata["observed_share"])


def test_gap_fill_check_is_lazy_on_dask():
    v = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    ones = np.ones((3, 8, 8), np.uint8)
    raw, n_obs = _cubes(v, ones, ones)
    r = quality.gap_fill_check(raw.chunk({"y": 4}), raw.chunk({"x": 4}), n_obs.chunk({"y": 2}))
    assert r.passed and r.metadata["observed_pairs"] == 128


# ------------------------------------------------------------------ COGs

def _sos_cog(path, data=None, **kw):
    data = np.array([[0, 130], [140, 0]] * 16, np.uint16).repeat(16, axis=1) \
        if data is None else data
    return write_cog(path, data, "EPSG:32647", TRANSFORM, kw.pop("nodata", 0), **kw)


def test_cog_check_valid_sos_cog(tmp_path):
    r = quality.cog_check(_sos_cog(tmp_path / "a.tif"), quality.SOS_COG)
    assert r.passed, r.summary
    assert r.metadata["valid_cog"] and r.metadata["dtypes"] == ["uint16"]
    assert r.metadata["nodata"] == [0.0] and r.metadata["bands"] == 1 and not r.metadata["problems"]


def test_cog_check_contract_mismatches(tmp_path):
    path = _sos_cog(tmp_path / "a.tif")
    r = quality.cog_check(path, quality.CROP_COG)  # uint16, nodata 0, 1 band
    assert not r.passed
    assert {p.split(" ")[0] for p in r.metadata["problems"]} == {"1", "dtype", "nodata"}
    r = quality.cog_check(_sos_cog(tmp_path / "b.tif", nodata=65535), quality.SOS_COG)
    assert not r.passed and r.metadata["problems"] == ["nodata [65535.0], expected 0"]


def test_cog_check_plain_geotiff_is_not_a_cog(tmp_path):
    path = tmp_path / "plain.tif"
    data = np.ones((600, 600), np.uint16)
    with rasterio.open(path, "w", driver="GTiff", width=600, height=600, count=1,
                       dtype="uint16", crs="EPSG:32647", transform=TRANSFORM, nodata=0) as dst:
        dst.write(data, 1)  # striped, no overviews
    r = quality.cog_check(path, quality.SOS_COG)
    assert not r.passed and not r.metadata["valid_cog"]
    assert any(p.startswith("COG:") for p in r.metadata["problems"])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_cog_check_corrupt_files(tmp_path, damage):
    path = _sos_cog(tmp_path / "a.tif", data=np.arange(512 * 512, dtype=np.uint16)
                    .reshape(512, 512) % 300 + 1)
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a tiff" * 100)
    else:
        path.unlink()
    r = quality.cog_check(path, quality.SOS_COG)
    assert not r.passed and r.metadata["problems"]
    if damage != "missing":
        assert r.metadata["bytes"] > 0


def test_cog_files_check_lists_invalid_files(tmp_path):
    good = _sos_cog(tmp_path / "good.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(good.read_bytes()[:300])
    r = quality.cog_files_check([good, bad], quality.SOS_COG)
    assert not r.passed and r.metadata["files"] == 2 and r.metadata["invalid"] == 1
    assert list(r.metadata["invalid_files"]) == [str(bad)]
    assert quality.cog_files_check([], quality.SOS_COG).passed  # nothing to validate


# ------------------------------------------------------------------ SOS, crop values

def test_sos_in_season_window_and_year_wrap():
    start = date(2024, 5, 6)  # day of year 127
    doy = np.array([[0, 127, 130], [147, 148, 0]], np.uint16)
    r = quality.sos_in_season(doy, 0, start, date(2024, 5, 26))  # days 0..20
    assert not r.passed and r.metadata["outside"] == 1  # 148 = day 21
    assert r.metadata["started_pixels"] == 4 and r.metadata["started_share"] == pytest.approx(4 / 6)
    assert (r.metadata["min_days_since_start"], r.metadata["max_days_since_start"]) == (0, 21)
    # a season across New Year: day 3 of 2025 is day 60 of a season from 2024-11-04 (309)
    wrap = quality.sos_in_season(np.array([[3, 309]], np.uint16), 0, date(2024, 11, 4),
                                 date(2025, 1, 5))
    assert wrap.passed and wrap.metadata["max_days_since_start"] == 60
    before = quality.sos_in_season(np.array([[300]], np.uint16), 0, date(2024, 11, 4),
                                   date(2025, 1, 5))
    assert not before.passed  # 2024-10-26, before the season started
    none = quality.sos_in_season(np.zeros((3, 3), np.uint16), 0, start, date(2024, 5, 12))
    assert none.passed and none.metadata["started_share"] == 0


def test_sos_in_season_counts_a_large_map_block_by_block():
    """A full tile's map is counted in blocks of rows (no int64 copy of it): same counts."""
    doy = np.random.default_rng(0).choice(np.array([0, 127, 140, 200], np.uint16), (5, 2**21))
    r = quality.sos_in_season(doy, 0, date(2024, 5, 6), date(2024, 6, 30))  # days 0..55
    assert r.metadata["started_pixels"] == int((doy != 0).sum())
    assert r.metadata["outside"] == int((doy == 200).sum()) > 0
    assert (r.metadata["min_days_since_start"], r.metadata["max_days_since_start"]) == (0, 73)


def test_crop_values_check():
    cls = np.array([[1, 2, 255], [7, 255, 3]], np.uint8)
    conf = np.array([[90, 55, 255], [100, 255, 40]], np.uint8)
    assert quality.crop_values_check(cls, conf, range(1, 8)).passed
    r = quality.crop_values_check(np.where(cls == 7, 9, cls), np.where(conf == 90, 101, conf),
                                  range(1, 8))
    assert not r.passed
    assert (r.metadata["unknown_class_pixels"], r.metadata["bad_confidence_pixels"]) == (1, 1)
    conf[0, 2] = 50  # nodata in band 1 only
    r = quality.crop_values_check(cls, conf, range(1, 8))
    assert not r.passed and r.metadata["nodata_mismatch_pixels"] == 1
    assert r.metadata["nodata_share"] == pytest.approx(2 / 6)


# ------------------------------------------------------------------ training

def test_knee_check():
    assert quality.knee_check(5, [3, 4, 5, 6], "kneed").passed
    r = quality.knee_check(None, [3, 4, 5])
    assert not r.passed and r.metadata["knee_week"] == -1
    assert not quality.knee_check(9, [3, 4, 5]).passed
    assert not quality.knee_check(3, []).passed


def test_accuracy_floor_severity_follows_the_knee():
    at_knee = quality.accuracy_floor(17, 0.93, 0.88, knee_week=17, full_season_week=28)
    assert at_knee.passed and at_knee.severity == "error" and at_knee.metadata["binding"]
    low_cur = quality.accuracy_floor(20, 0.93, 0.80, knee_week=17, full_season_week=28)
    assert not low_cur.passed and low_cur.severity == "error"
    assert "current season 0.800 < 0.85" in low_cur.summary
    early = quality.accuracy_floor(8, 0.70, 0.60, knee_week=17, full_season_week=28)
    assert not early.passed and early.severity == "warn"
    # no knee report yet: only the full-season checkpoint is held to the floors
    assert quality.accuracy_floor(20, 0.5, None, None, 28).severity == "warn"
    full = quality.accuracy_floor(28, 0.95, None, None, 28)
    assert full.passed and full.severity == "error" and np.isnan(
        full.metadata["current_season_accuracy"])
    nan = quality.accuracy_floor(28, float("nan"), None, None, 28)
    assert not nan.passed
    custom = quality.accuracy_floor(28, 0.7, 0.6, 20, 28, min_validation=0.6, min_current=0.5)
    assert custom.passed


def test_class_coverage():
    labels = np.array([1] * 30 + [2] * 5 + [3] * 25)
    r = quality.class_coverage(labels, {1: "rice", 2: "maize", 3: "cassava", 4: "forest"})
    assert not r.passed and r.metadata["short_classes"] == ["maize", "forest"]
    assert r.metadata["samples_per_class"] == {"rice": 30, "maize": 5, "cassava": 25,
                                               "forest": 0}
    assert quality.class_coverage(labels, {1: "rice", 3: "cassava"}).passed
    assert not quality.class_coverage(np.array([], int), {1: "rice"}).passed  # empty sample


# ------------------------------------------------------------------ plots

def test_new_plots_are_small_pngs():
    rng = np.random.default_rng(0)
    series = rng.random((40, 6))
    series[:5] = np.nan  # a class with no observation at all is left out
    labels = np.repeat([1, 2, 3, 4], 10)
    png = class_profiles_png(series, labels, {1: "rice", 2: "maize", 3: "cassava", 4: "x"})
    assert png[:4] == b"\x89PNG" and len(png) < 60_000
    cm = rng.integers(0, 20, (7, 7))
    png = confusion_png({"validation": cm, "current season": cm * 0}, list("abcdefg"))
    assert png[:4] == b"\x89PNG" and len(png) < 60_000


def test_feature_ranges_say_which_features_have_no_value_and_why():
    f = np.stack([np.full((4, 4), 0.5, np.float32), np.full((4, 4), np.nan, np.float32)])
    r = quality.feature_ranges(f, ["ndvi", "vh"],
                               absent_reason="radar none: no sentinel-1-rtc scene this week")
    assert r.passed and r.metadata["empty_features"] == ["vh"]
    assert r.summary.endswith("no value at all of ['vh'] (radar none: no sentinel-1-rtc "
                              "scene this week)")
    assert "no value" not in quality.feature_ranges(f[:1], ["ndvi"]).summary
