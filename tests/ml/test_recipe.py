"""SeriesRecipe: one preprocessing object from training through the checkpoint to inference.

The fitted recipe a checkpoint stores reproduces ``prepare_inputs`` of its training pixels
exactly; checkpoints of layout 1 (the recipe's parts as top-level keys) load with the same
recipe and predict exactly as before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from step_dates import dekads

from cropassets.core.timeseries.timeaxis import day_offsets, nominal_step_days, regular_grid
from cropassets.ml import Checkpoint, SeriesRecipe, predict_proba, train
from cropassets.ml.cwt import default_scales
from cropassets.ml.prepare import prepare_inputs, valid_pixels
from cropassets.ml.train_config import TrainConfig

FAST = TrainConfig(max_steps=40, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)
K = 12


@pytest.fixture(scope="module")
def dated(weekly) -> tuple[Checkpoint, list[str]]:
    """A checkpoint of irregular dekadal steps, cutoff and scales in days of its own."""
    dates = dekads("2023-09-01", weekly.series.shape[2])
    recipe = SeriesRecipe(K, cutoff=0.15, order=2, scales_days=[25.0, 50.0, 100.0])
    ck = train(weekly.series, weekly.labels, weekly.field_ids, recipe, dates=dates,
               class_names=weekly.class_names, features=weekly.features, config=FAST)
    return ck, dates


def _v1_layout(ck: Checkpoint) -> dict:
    """The dict a layout-1 checkpoint file held: the recipe's parts as top-level keys."""
    d = ck.to_dict()
    r = d.pop("recipe")
    d.update({
        "n_steps": r["n_steps"], "scales": r["scales"], "wavelet": r["wavelet"],
        "cutoff": r["cutoff"], "order": r["order"], "time_step_days": r["time_step_days"],
        "step_days": r["step_days"], "stats": r["stats"], "presmoothed": r["presmoothed"],
        "format_version": 1,
    })
    return d


def test_the_saved_recipe_reproduces_prepare_inputs_exactly(dated, weekly, tmp_path):
    ck, dates = dated
    rec = ck.recipe
    assert rec.fitted and rec.n_steps == K and (rec.cutoff, rec.order) == (0.15, 2)
    assert rec.time_step_days == 10.0 and rec.irregular_steps and rec.scales_days is None
    np.testing.assert_allclose(rec.scales, np.array([25.0, 50.0, 100.0]) / 10.0, rtol=1e-15)
    # refit the unfitted recipe on the training pixels: the same stats, the same inputs
    train_px = np.isin(weekly.field_ids, ck.split["train"]) & valid_pixels(weekly.series, K)
    x_fit, refitted = prepare_inputs(weekly.series[train_px], replace(rec, stats=None))
    assert refitted == rec
    loaded = Checkpoint.load(ck.save(tmp_path / "k12.pt"))
    assert loaded.recipe == rec
    x_again, same = prepare_inputs(weekly.series[train_px], loaded.recipe)
    assert same == rec
    np.testing.assert_array_equal(x_again, x_fit)
    assert x_fit.shape == (int(train_px.sum()), 3, 3 + 1, rec.n_grid)
    assert rec.n_grid == regular_grid(rec.day_offsets, 10.0).size  # the 10-day grid


def test_training_with_a_fitted_recipe_fits_it_again(dated, weekly):
    ck, dates = dated
    again = train(weekly.series, weekly.labels, weekly.field_ids, ck.recipe, dates=dates,
                  class_names=weekly.class_names, features=weekly.features, config=FAST)
    assert again.recipe == ck.recipe  # same choices, same data: the same fit
    other = train(weekly.series + 0.5, weekly.labels, weekly.field_ids, ck.recipe,
                  dates=dates, config=replace(FAST, max_steps=10))
    assert other.recipe.stats != ck.recipe.stats  # fitted on these series, not reused
    assert replace(other.recipe, stats=None) == replace(ck.recipe, stats=None)


def test_a_layout_1_checkpoint_loads_with_its_recipe_and_predicts_the_same(dated, weekly):
    ck, dates = dated
    old = Checkpoint.from_dict(_v1_layout(ck))
    assert old.recipe == ck.recipe
    assert (old.n_steps, old.scales, old.cutoff, old.order, old.wavelet) == (
        ck.n_steps, ck.scales, ck.cutoff, ck.order, ck.wavelet)
    assert old.step_days == ck.step_days and old.time_step_days == ck.time_step_days
    want = predict_proba(ck, weekly.series, dates=dates)
    got = predict_proba(old, weekly.series, dates=dates)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    for name, w in ck.weights.items():
        assert torch.equal(old.weights[name], w), name
    # saved again, it is written in the current layout
    d = old.to_dict()
    assert d["format_version"] == 2 and "scales" not in d and d["recipe"]["n_steps"] == K


def test_a_layout_1_checkpoint_without_step_days_or_presmoothed_is_regular(weekly):
    ck = train(weekly.series, weekly.labels, weekly.field_ids, 6, config=replace(FAST,
               max_steps=10, refit=False))
    d = _v1_layout(ck)
    del d["step_days"], d["presmoothed"], d["format_version"]  # the oldest files
    old = Checkpoint.from_dict(d)
    assert old.recipe.step_days is None and old.step_days == () and not old.presmoothed
    np.testing.assert_array_equal(old.day_offsets, ck.day_offsets)
    np.testing.assert_array_equal(predict_proba(old, weekly.series)[0],
                                  predict_proba(ck, weekly.series)[0])


def test_unknown_layouts_and_unfitted_recipes_are_refused(dated):
    ck, _ = dated
    d = ck.to_dict()
    d["format_version"] = 3
    with pytest.raises(ValueError, match="format version 3 is not supported"):
        Checkpoint.from_dict(d)
    d = ck.to_dict()
    d["recipe"] = dict(d["recipe"], stats=None)
    with pytest.raises(ValueError, match="fitted recipe"):
        Checkpoint.from_dict(d)
    with pytest.raises(ValueError, match=r"unknown fields \['smoothing'\]"):
        SeriesRecipe.from_dict({"n_steps": 5, "smoothing": 0.2})


def test_recipe_round_trip_and_normalisation():
    r = SeriesRecipe(np.int64(8), time_step_days=16, step_days=np.arange(8) * 16.0,
                     scales=np.array([2.0, 4.0]))
    assert r.n_steps == 8 and type(r.n_steps) is int and r.time_step_days == 16.0
    assert r.step_days == tuple(16.0 * i for i in range(8)) and r.scales == (2.0, 4.0)
    assert not r.irregular_steps and r.n_grid == 8 and not r.fitted
    assert SeriesRecipe.from_dict(r.to_dict()) == r
    assert SeriesRecipe.of(9) == SeriesRecipe(9) and SeriesRecipe.of(r) is r


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_steps": 2}, "n_steps must be an integer >= 3"),
    ({"n_steps": 5.5}, "n_steps must be an integer >= 3"),
    ({"n_steps": 5, "time_step_days": -1}, "time_step_days must be a positive"),
    ({"n_steps": 5, "scales": [2], "scales_days": [14]}, "not both"),
    ({"n_steps": 5, "step_days": [0, 7, 14], "time_step_days": 7}, "3 day offsets"),
    ({"n_steps": 3, "step_days": [0, 7, 14]}, "step_days need time_step_days"),
])
def test_invalid_recipes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SeriesRecipe(**kwargs)


def test_on_time_axis_fixes_grid_steps_and_scales():
    # no dates: regular steps of the given step (7 days by default), default scales
    r = SeriesRecipe(10).on_time_axis(None, 28)
    assert r.time_step_days == 7.0 and r.step_days == tuple(7.0 * i for i in range(10))
    assert r.scales == tuple(default_scales(10).tolist()) and r.scales_days is None
    # dates: the median spacing of all of them, the first k offsets, scales in days
    dates = dekads("2023-09-01", 28)
    r = SeriesRecipe(10, scales_days=[30.0, 60.0]).on_time_axis(dates, 28)
    off = day_offsets(dates)
    assert r.time_step_days == nominal_step_days(off) == 10.0
    assert r.step_days == tuple(off[:10].tolist()) and r.scales == (3.0, 6.0)
    with pytest.raises(ValueError, match="fewer than the sequence length"):
        SeriesRecipe(10).on_time_axis(None, 9)
    fixed = SeriesRecipe(3, time_step_days=7, step_days=[0, 7, 14])
    assert fixed.on_time_axis([5, 12, 19, 26], 4) == fixed.on_time_axis(None, 4)
    with pytest.raises(ValueError, match=r"the recipe's step_days at \[0.0, 7.0, 14.0\]"):
        fixed.on_time_axis([0, 7, 15], 3)


def test_train_config_carries_seed_and_precision():
    assert (TrainConfig().seed, TrainConfig().precision) == (0, "fp32")
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16'"):
        TrainConfig(precision="fp16")  # type: ignore[arg-type]
