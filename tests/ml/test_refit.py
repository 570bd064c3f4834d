"""TrainConfig.refit: a fresh network on training + validation pixels, same seed."""

from __future__ import annotations

from dataclasses import replace

import torch

from cropassets.ml import predict, train
from cropassets.ml.baseline import fit_random_forest
from cropassets.ml.served import select_served
from cropassets.ml.train import TrainConfig

FAST = TrainConfig(max_steps=60, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)


def test_refit_trains_on_all_groups_for_the_selected_passes(weekly):
    kw = dict(class_names=weekly.class_names, features=weekly.features)
    assert TrainConfig().refit  # the library default
    plain = train(weekly.series, weekly.labels, weekly.field_ids, 14,
                  config=replace(FAST, refit=False), **kw)
    refit = train(weekly.series, weekly.labels, weekly.field_ids, 14,
                  config=replace(FAST, refit=True), **kw)
    again = train(weekly.series, weekly.labels, weekly.field_ids, 14,
                  config=replace(FAST, refit=True), **kw)
    m, r = plain.metrics, refit.metrics
    assert m["refit"] is None
    # the selection run is the same, so are its validation metrics
    assert r["best_step"] == m["best_step"] and r["overall_accuracy"] == m["overall_accuracy"]
    n_all = r["n_train_pixels"] + r["n_val_pixels"]
    assert r["refit"]["n_pixels"] == n_all
    assert r["refit"]["steps"] == round(r["best_step"] * n_all / r["n_train_pixels"])
    assert any(not torch.equal(plain.weights[k], refit.weights[k]) for k in plain.weights)
    for k in refit.weights:  # deterministic for the seed
        assert torch.equal(refit.weights[k], again.weights[k]), k
    cls, _ = predict(refit, weekly.series)
    assert cls.shape == (len(weekly.labels),) and (cls[2:] >= 0).all()


def test_no_combination_score_for_a_refit_network(weekly):
    """A refit CNN2D has seen the validation fields: the combination is not scored on them."""
    x, y, f = weekly.series, weekly.labels, weekly.field_ids
    scores = {}
    for refit in (False, True):
        ck = train(x, y, f, 14, config=replace(FAST, refit=refit))
        forest = fit_random_forest(x, y, f, 14, split=ck.field_split, n_estimators=20)
        scores[refit] = select_served(ck, forest, x, y, f)
    assert scores[False].get("combination_val_accuracy") is not None
    assert "combination_not_scored" not in scores[False]
    assert "combination_val_accuracy" not in scores[True]
    assert "refit" in scores[True]["combination_not_scored"]
    assert scores[True]["model"] in ("cnn2d", "random_forest")
