"""Start of Season: amplitude rule against an analytic curve, not-started NaN, radar fallback."""

from datetime import date

import numpy as np
import pytest
import xarray as xr

from cropassets.core.timeseries.start_of_season import (
    amplitude_crossing,
    days_to_doy,
    start_of_season,
    week_mid_days,
)


def _logistic(t, base=0.2, amp=0.6, mid=60.0, rate=8.0):
    return base + amp / (1 + np.exp(-(t - mid) / rate))


def test_amplitude_crossing_matches_the_analytic_crossing():
    t = week_mid_days(28)
    series = np.stack([_logistic(t, mid=m) for m in (40.0, 60.0, 90.0)], axis=1)
    got = amplitude_crossing(series, t, fraction=0.2, min_amplitude=0.15)
    fine = np.linspace(0, 200, 200001)
    for k, m in enumerate((40.0, 60.0, 90.0)):
        curve = _logistic(fine, mid=m)
        lo, hi = _logistic(t, mid=m).min(), _logistic(t, mid=m).max()
        expected = fine[np.argmax(curve >= lo + 0.2 * (hi - lo))]
        assert got[k] == pytest.approx(expected, abs=1.5)  # linear interpolation of weekly steps


def test_not_started_flat_or_nan_series_is_nan():
    t = week_mid_days(10)
    flat = np.full(10, 0.75)  # evergreen forest: no rise
    small = 0.2 + 0.05 * np.linspace(0, 1, 10)  # rise below min_amplitude
    nan = np.full(10, np.nan)
    got = amplitude_crossing(np.stack([flat, small, nan], axis=1), t, 0.2, 0.15)
    assert np.isnan(got).all()
    with pytest.raises(ValueError, match="fraction"):
        amplitude_crossing(flat[:, None], t, fraction=1.5)


def test_radar_fallback_where_optical_is_clouded_out():
    n = 12
    t = week_mid_days(n)
    ndvi = np.full(n, 0.2)
    ndvi[6:] = np.linspace(0.25, 0.3, 6)  # optical last seen before green-up: flat-ish
    vh = np.full(n, -18.0)
    vh[3:6] = -24.0  # flooded paddy
    vh[6:] = np.linspace(-22.0, -15.0, 6)  # transplanted rice growing
    series = xr.DataArray(np.stack([ndvi, vh])[:, :, None, None],
                          dims=("feature", "week", "y", "x"), coords={"feature": ["ndvi", "vh"]})
    clear = np.zeros((n, 1, 1), np.uint8)
    clear[:4] = 1  # monsoon: no clear optical observation after week 4
    start = date(2024, 5, 6)
    optical_only = start_of_season(series, start, 0.2, 0.15)
    fused = start_of_season(series, start, 0.2, 0.15, clear_obs=clear,
                            radar_min_amplitude_db=3.0)
    assert np.isnan(optical_only[0, 0])
    expected = days_to_doy(amplitude_crossing(vh[:, None], t, 0.2, 3.0), start)[0]
    assert fused[0, 0] == expected
    assert start.timetuple().tm_yday + 42 <= fused[0, 0] <= start.timetuple().tm_yday + 70


def test_days_to_doy_wraps_the_year():
    assert days_to_doy(np.array([0.0, 10.0, np.nan]), date(2024, 12, 23)).tolist()[:2] == [
        358.0, 2.0]
