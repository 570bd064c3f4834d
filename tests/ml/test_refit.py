"""TrainConfig.refit: a fresh network on training + validation pixels, same seed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from cropassets.ml import predict, train
from cropassets.ml.train import TrainConfig

FAST = TrainConfig(max_steps=60, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)


def test_refit_trains_on_all_groups_for_the_selected_passes(weekly):
    kw = dict(class_names=weekly.class_names, features=weekly.features)
    plain = train(weekly.series, weekly.labels, weekly.field_ids, 14, config=FAST, **kw)
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
