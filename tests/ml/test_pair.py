"""fit_pair: the CNN2D and its forest side by side equal the two fitted one after the other."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.pair import fit_pair
from cropassets.ml.recipe import SeriesRecipe
from cropassets.ml.train import train
from cropassets.ml.train_config import TrainConfig

FAST = TrainConfig(max_steps=40, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)


def test_side_by_side_equals_one_after_the_other(weekly):
    x, y, f = weekly.series, weekly.labels, weekly.field_ids
    recipe = SeriesRecipe(12, cutoff=0.2, order=3)
    kw = dict(class_names=weekly.class_names, features=weekly.features,
              config=replace(FAST, seed=3), device="cpu")
    both, rf_both = fit_pair(x, y, f, recipe, concurrent=True, test=(x[:50], y[:50]), **kw)
    seq, rf_seq = fit_pair(x, y, f, recipe, concurrent=False, test=(x[:50], y[:50]), **kw)
    for name, w in both.weights.items():
        assert torch.equal(w, seq.weights[name]), name
    assert rf_both.metrics["confusion"] == rf_seq.metrics["confusion"]
    assert rf_both.test_metrics["confusion"] == rf_seq.test_metrics["confusion"]
    # the same split the CNN would draw alone, and the forest on it
    alone = train(x, y, f, 12, class_names=weekly.class_names, features=weekly.features,
                  config=replace(FAST, seed=3), device="cpu")
    assert alone.split == both.split
    for name, w in alone.weights.items():
        assert torch.equal(w, both.weights[name]), name
    # the pair's forest: 150 trees on half-size bootstraps (fit_pair's defaults)
    rf = random_forest_baseline(x, y, f, 12, split=alone.field_split, seed=3,
                                class_names=weekly.class_names, n_estimators=150,
                                max_samples=0.5)
    assert len(rf_both.fitted.forest.estimators_) == 150
    assert rf_both.fitted.forest.max_samples == 0.5
    np.testing.assert_array_equal(rf.metrics["confusion"], rf_both.metrics["confusion"])
