"""prepare_inputs with a SeriesRecipe: truncation first, shapes, gaps, all-NaN handling,
stats reuse, the recipe itself."""

from __future__ import annotations

import numpy as np
import pytest

from cropassets.ml.cwt import default_scales
from cropassets.ml.prepare import prepare_inputs, smoothed_prefix, valid_pixels
from cropassets.ml.recipe import InputStats, SeriesRecipe


def test_shape_dtype_and_default_scales(weekly):
    x, recipe = prepare_inputs(weekly.series, SeriesRecipe(10, cutoff=0.2, order=3,
                                                           series_row=False))
    n, f, _ = weekly.series.shape
    assert x.shape == (n, f, len(default_scales(10)), 10)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    stats = recipe.stats
    assert stats.n_steps == 10 and not stats.series_row and not recipe.series_row
    assert len(stats.scalogram.mean) == f
    assert recipe.scales == tuple(default_scales(10).tolist())  # the fitted recipe keeps them


def test_series_row_is_the_standardised_smoothed_series(weekly):
    plain, _ = prepare_inputs(weekly.series, SeriesRecipe(10, series_row=False))
    x, recipe = prepare_inputs(weekly.series, 10)
    stats = recipe.stats
    assert stats.series_row and x.shape[2] == plain.shape[2] + 1
    np.testing.assert_array_equal(x[:, :, :-1], plain)
    sm, _ = smoothed_prefix(weekly.series, 10, fill=stats.fill)
    z = (sm - np.asarray(stats.series_mean)[:, None]) / np.asarray(stats.series_std)[:, None]
    np.testing.assert_allclose(x[:, :, -1], z, atol=1e-5)
    # with given stats their choice wins over the argument (inference repeats training)
    again, _ = prepare_inputs(weekly.series, SeriesRecipe(10, stats=stats, series_row=False))
    np.testing.assert_array_equal(again, x)


@pytest.mark.parametrize("k", [3, 7, 16, 27])
def test_later_observations_never_change_output_for_k(weekly, k):
    """Rule 1: replacing every value after step k (data, gaps, NaN) changes nothing."""
    x = weekly.series.copy()
    rng = np.random.default_rng(k)
    y = x.copy()
    y[:, :, k:] = rng.normal(5.0, 3.0, y[:, :, k:].shape)  # wild later observations
    y[:, :, k + 1 :: 2] = np.nan
    fit_x, st_x = prepare_inputs(x, k)
    fit_y, st_y = prepare_inputs(y, k)
    assert st_x == st_y  # fitted stats do not see later steps either
    np.testing.assert_array_equal(fit_x, fit_y)
    # and with given stats (inference); also a longer array than needed
    longer = np.concatenate([y, y], axis=2)
    np.testing.assert_array_equal(prepare_inputs(longer, st_x)[0], fit_x)


def test_prefix_equals_truncated_input(weekly):
    k = 9
    a, st = prepare_inputs(weekly.series, k)
    b, _ = prepare_inputs(weekly.series[:, :, :k].copy(), st)
    np.testing.assert_array_equal(a, b)


def test_all_nan_pixels_and_features(weekly):
    x = weekly.series.copy()
    x[5, 1, :] = np.nan  # one feature of a pixel never observed
    valid = valid_pixels(x, 12)
    assert not valid[:2].any() and valid[2:].all()  # first two pixels are all-NaN
    sm, fill = smoothed_prefix(x[valid], 12)
    assert np.isfinite(sm).all()
    np.testing.assert_array_equal(sm[5 - 2, 1], fill[1])  # filled with the training mean
    out, _ = prepare_inputs(x, 12)
    assert np.isfinite(out).all()


def test_stats_round_trip_and_mismatch(weekly):
    _, recipe = prepare_inputs(weekly.series, 8)
    st = recipe.stats
    again = InputStats.from_dict(st.to_dict())
    assert again == st
    with pytest.raises(ValueError, match="fill curve"):
        prepare_inputs(weekly.series, SeriesRecipe(9, stats=st))  # stats of another length
    with pytest.raises(ValueError, match="features"):
        prepare_inputs(weekly.series[:, :2],
                       SeriesRecipe(8, stats=InputStats(st.scalogram, st.fill[:2])))


@pytest.mark.parametrize("k", [0, 2, 29])
def test_bad_lengths(weekly, k):
    with pytest.raises(ValueError):
        prepare_inputs(weekly.series, k)


def test_presmoothed_prefix_gives_the_same_inputs(weekly):
    """Series smoothed on exactly the k-step prefix (as sos_map computes them)."""
    from cropassets.core.timeseries.smoothing import smooth_series

    k = 11
    direct, st = prepare_inputs(weekly.series, SeriesRecipe(k, cutoff=0.2, order=3))
    pre = smooth_series(weekly.series[:, :, :k], 0.2, 3)
    again, st2 = prepare_inputs(pre, SeriesRecipe(k, cutoff=0.2, order=3, presmoothed=True))
    assert st2.stats == st.stats
    np.testing.assert_array_equal(again, direct)
