"""Time in days: scales mean periods in days on any step; dated, irregular steps; refusal.

A scale of the default cmor wavelet (centre frequency 1) is a period: scale ``s`` grid
steps is a period of ``s * time_step_days`` days.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from step_dates import dekads, modis_dates

from cropassets.core.timeseries.timeaxis import day_offsets, regular_grid
from cropassets.ml import Checkpoint, predict, train
from cropassets.ml.prepare import prepare_inputs, smoothed_prefix
from cropassets.ml.recipe import SeriesRecipe, grid_length
from cropassets.ml.train_config import TrainConfig

FAST = TrainConfig(max_steps=40, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)
PERIOD_DAYS = 96.0
SCALES_DAYS = np.geomspace(40.0, 240.0, 24)


def sinusoids(t_days: np.ndarray, n: int = 6, period: float = PERIOD_DAYS) -> np.ndarray:
    """(n, 1, T) sinusoids of ``period`` days with random phases, sampled at ``t_days``."""
    phase = np.random.default_rng(1).uniform(0, 2 * np.pi, (n, 1, 1))
    return np.sin(2 * np.pi * t_days[None, None, :] / period + phase).astype(np.float32)


def peak_scale_days(x: np.ndarray, step: float, offsets: np.ndarray | None = None) -> float:
    """Scale (days) of the strongest mean scalogram row, in the middle third of the series."""
    k = x.shape[-1]
    out, _ = prepare_inputs(x, SeriesRecipe(k, scales=SCALES_DAYS / step, series_row=False,
                                            step_days=offsets, time_step_days=step))
    n_t = out.shape[-1]
    mid = out[:, 0, :, n_t // 3: 2 * n_t // 3].mean(axis=(0, 2))
    return float(SCALES_DAYS[int(np.argmax(mid))])


@pytest.mark.parametrize("step", [4.0, 8.0, 10.0, 16.0])
def test_same_period_same_scale_on_any_step(step):
    t = np.arange(0.0, 480.0, step)
    peak = peak_scale_days(sinusoids(t), step)
    ref = peak_scale_days(sinusoids(np.arange(0.0, 480.0, 8.0)), 8.0)
    assert peak == ref
    assert PERIOD_DAYS / 1.25 < peak < PERIOD_DAYS * 1.25


def test_modis_restart_resampled_onto_the_16_day_grid():
    dates = modis_dates(2021, 30)  # crosses 1 January once (one 13-day step)
    off = day_offsets(dates)
    x = sinusoids(off)
    k = off.size
    grid = regular_grid(off, 16.0)
    assert grid_length(k, off, 16.0) == grid.size
    out, recipe = prepare_inputs(x, SeriesRecipe(k, scales=SCALES_DAYS / 16.0, step_days=off,
                                                 time_step_days=16.0))
    stats = recipe.stats
    assert out.shape == (6, 1, SCALES_DAYS.size + 1, grid.size)
    # the series row is the smoothed series interpolated at the grid days
    sm, _ = smoothed_prefix(x, k)
    want = np.stack([np.interp(grid, off, s) for s in sm[:, 0].astype(np.float64)])
    z = out[:, 0, -1] * stats.series_std[0] + stats.series_mean[0]
    np.testing.assert_allclose(z, want, rtol=0, atol=1e-5)
    # and its scales mean the same periods as on regular 16-day steps
    assert peak_scale_days(x, 16.0, off) == peak_scale_days(
        sinusoids(np.arange(0.0, off[-1] + 1, 16.0)), 16.0)


def test_regular_dates_change_nothing(weekly):
    dates = np.arange(28) * np.timedelta64(7, "D") + np.datetime64("2024-03-04")
    kw = dict(class_names=weekly.class_names, features=weekly.features, config=FAST)
    plain = train(weekly.series, weekly.labels, weekly.field_ids, 12, **kw)
    dated = train(weekly.series, weekly.labels, weekly.field_ids, 12, dates=dates, **kw)
    assert dated.time_step_days == 7.0 and not dated.irregular_steps
    assert dated.step_days == tuple(7.0 * i for i in range(12))
    for name, w in plain.weights.items():
        assert torch.equal(w, dated.weights[name]), name
    assert dated.scales == plain.scales


@pytest.fixture(scope="module")
def dekadal(weekly):
    """The weekly test series relabelled as dekads (irregular: 9-11 days) from September."""
    dates = dekads("2023-09-01", weekly.series.shape[2])
    ck = train(weekly.series, weekly.labels, weekly.field_ids, 18, dates=dates,
               class_names=weekly.class_names, features=weekly.features, config=FAST)
    return ck, dates


def test_dated_irregular_checkpoint_records_and_resamples(dekadal, weekly, tmp_path):
    ck, dates = dekadal
    off = day_offsets(dates)
    assert ck.time_step_days == 10.0 and ck.irregular_steps
    assert ck.step_days == tuple(off[:18].tolist())
    k_grid = regular_grid(off[:18], 10.0).size
    assert ck.metrics["flops_per_sample"] > 0
    np.testing.assert_allclose(np.asarray(ck.scales_days), np.asarray(ck.scales) * 10.0)
    assert max(ck.scales) == pytest.approx(k_grid)  # default scales span the grid's length
    cls, conf = predict(ck, weekly.series, dates=dates)
    assert (cls[2:] >= 0).all() and (conf[2:] > 0).all()
    ck.save(tmp_path / "k18.pt")
    back = Checkpoint.load(tmp_path / "k18.pt")
    assert back.step_days == ck.step_days
    assert np.array_equal(predict(back, weekly.series, dates=dates)[0], cls)


def test_checkpoint_refuses_mismatched_steps(dekadal, weekly):
    ck, dates = dekadal
    with pytest.raises(ValueError, match="pass the series' dates="):
        predict(ck, weekly.series)
    monthly = [str(np.datetime64("2023-09") + np.timedelta64(i, "M")) + "-01"
               for i in range(weekly.series.shape[2])]
    with pytest.raises(ValueError, match=r"steps do not match the model's: step 1 is day 30"):
        predict(ck, weekly.series, dates=monthly)
    with pytest.raises(ValueError, match="one date per step"):
        predict(ck, weekly.series, dates=dates[:20])
    # another year's dekads from the same day: the same steps within a tenth of a step
    # (February has 28 days, not 29, so the later offsets differ by one day; the
    # interpolation weights differ with them, hence agreement, not equality)
    again = dekads("2024-09-01", weekly.series.shape[2])
    a = predict(ck, weekly.series, dates=again)[0]
    b = predict(ck, weekly.series, dates=dates)[0]
    assert (a == b).mean() >= 0.95


def test_training_refuses_bad_dates(weekly):
    kw = dict(class_names=weekly.class_names, config=FAST)
    dates = dekads("2023-09-01", weekly.series.shape[2])
    swapped = list(dates)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    with pytest.raises(ValueError, match=r"strictly increasing: step 4"):
        train(weekly.series, weekly.labels, weekly.field_ids, 12, dates=swapped, **kw)
    with pytest.raises(ValueError, match="dates has 10 entries but the series has 28 steps"):
        train(weekly.series, weekly.labels, weekly.field_ids, 12, dates=dates[:10], **kw)
    with pytest.raises(ValueError, match="time_step_days must be a positive"):
        train(weekly.series, weekly.labels, weekly.field_ids,
              SeriesRecipe(12, time_step_days=0), **kw)
    with pytest.raises(ValueError, match="not both"):
        train(weekly.series, weekly.labels, weekly.field_ids,
              SeriesRecipe(12, scales=[2, 4], scales_days=[20, 40]), **kw)


def test_checkpoints_without_step_days_load_as_regular(weekly):
    ck = train(weekly.series, weekly.labels, weekly.field_ids,
               SeriesRecipe(6, time_step_days=16), class_names=weekly.class_names, config=FAST)
    d = ck.to_dict()
    recipe = d.pop("recipe")  # the layout-1 form: the recipe's parts as top-level keys
    d.update({k: recipe[k] for k in ("n_steps", "scales", "wavelet", "cutoff", "order",
                                     "time_step_days", "stats", "presmoothed")})
    d["format_version"] = 1  # and without step_days: written before dates existed
    old = Checkpoint.from_dict(d)
    assert old.step_days == () and not old.irregular_steps
    np.testing.assert_array_equal(old.day_offsets, np.arange(6) * 16.0)
    old.check_compatible(dates=np.arange(10) * 16 + 3)
    with pytest.raises(ValueError, match="step 1 is day 10"):
        old.check_compatible(dates=np.arange(10) * 10)
