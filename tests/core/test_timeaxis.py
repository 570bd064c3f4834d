"""Dated steps: day offsets, the regular day grid, linear resampling, step matching."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from step_dates import dekads, modis_dates

from cropassets.core.timeseries.timeaxis import (
    check_same_steps,
    day_offsets,
    needs_resampling,
    nominal_step_days,
    regular_grid,
    resample_matrix,
)


def test_day_offsets_from_every_date_form():
    want = np.array([0.0, 16.0, 32.0])
    assert np.array_equal(day_offsets(["2024-01-01", "2024-01-17", "2024-02-02"]), want)
    assert np.array_equal(
        day_offsets(np.array(["2024-01-01", "2024-01-17", "2024-02-02"], "datetime64[D]")),
        want,
    )
    assert np.array_equal(
        day_offsets([dt.date(2024, 1, 1), dt.date(2024, 1, 17), dt.date(2024, 2, 2)]), want
    )
    assert np.array_equal(day_offsets([100, 116, 132]), want)
    # sub-day timestamps keep their fraction
    assert day_offsets(["2024-01-01T00:00", "2024-01-01T12:00"])[1] == 0.5


def test_modis_restart_is_one_short_step():
    off = day_offsets(modis_dates(2021, 23))
    steps = np.diff(off)
    assert set(steps.tolist()) == {16.0, 13.0}  # 2021 is not a leap year: 353 + 13 = 366
    assert int((steps == 13.0).sum()) == 1
    assert nominal_step_days(off) == 16.0
    assert needs_resampling(off, 16.0)
    grid = regular_grid(off, 16.0)
    assert grid[-1] <= off[-1] and off[-1] - grid[-1] < 16
    assert np.array_equal(grid, np.arange(grid.size) * 16.0)


def test_regular_steps_need_no_resampling():
    off = day_offsets(np.arange("2024-03-04", "2024-06-03", 7, dtype="datetime64[D]"))
    assert not needs_resampling(off, 7.0)
    assert np.array_equal(regular_grid(off, 7.0), off)
    assert np.array_equal(resample_matrix(off, off), np.eye(off.size))


@pytest.mark.parametrize("dates", [
    ["2024-01-01", "2024-01-11", "2024-01-11"],
    ["2024-01-01", "2024-01-21", "2024-01-11"],
])
def test_dates_out_of_order_are_refused(dates):
    with pytest.raises(ValueError, match=r"strictly increasing: step 2 \(2024-01-1"):
        day_offsets(dates)


@pytest.mark.parametrize("bad, match", [
    (["2024-01-01", "NaT"], r"no date at steps \[1\]"),
    ([0.0, np.nan, 3.0], r"no date at steps \[1\]"),
    ([["2024-01-01"]], "1-D"),
    ([], "non-empty"),
    (["2024-01-01", "yesterday"], "must be dates"),
])
def test_bad_dates_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        day_offsets(bad, name="dates")


def test_resample_matrix_is_linear_interpolation():
    rng = np.random.default_rng(0)
    off = day_offsets(dekads("2023-09-01", 30))
    assert set(np.diff(off).tolist()) == {9.0, 10.0, 11.0}  # leap February, 31-day months
    grid = regular_grid(off, 10.0)
    r = resample_matrix(off, grid)
    assert r.shape == (off.size, grid.size)
    assert np.allclose(r.sum(axis=0), 1.0) and (r >= 0).all()
    x = rng.normal(size=(5, off.size))
    want = np.stack([np.interp(grid, off, row) for row in x])
    np.testing.assert_allclose(x @ r, want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="no extrapolation"):
        resample_matrix(off, np.array([off[-1] + 5.0]))


def test_check_same_steps_names_the_first_difference():
    ref = day_offsets(dekads("2023-09-01", 12))
    check_same_steps(ref, ref + 0.5, tolerance_days=1.0)
    check_same_steps(ref, np.concatenate([ref, [400.0]]), tolerance_days=1.0)  # longer: ok
    other = day_offsets(modis_dates(2023, 12))
    with pytest.raises(ValueError, match=r"step 1 is day 16 after step 0, the model's step 1 "
                                         r"is day 10"):
        check_same_steps(ref, other, tolerance_days=1.0)
    with pytest.raises(ValueError, match="fewer than the model's 12"):
        check_same_steps(ref, ref[:5], tolerance_days=1.0)
