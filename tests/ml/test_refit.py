"""TrainConfig.refit: a fresh network on training + validation pixels, same seed."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from cropassets.ml import predict, train
from cropassets.ml.baseline import fit_random_forest
from cropassets.ml.model import ModelConfig, SeededDropout
from cropassets.ml.refit import RefitRun
from cropassets.ml.served import select_served
from cropassets.ml.train_config import TrainConfig

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


def test_refit_beside_the_selection_run_is_bit_identical(weekly):
    """The overlapped refit (second thread, CPU) gives the weights of the refit run after."""
    kw = dict(class_names=weekly.class_names, features=weekly.features, device="cpu")
    runs = {beside: train(weekly.series, weekly.labels, weekly.field_ids, 14,
                          config=replace(FAST, overlap_refit=beside), **kw)
            for beside in (True, False)}
    assert runs[True].metrics["refit"]["beside_selection"] is True
    assert runs[False].metrics["refit"]["beside_selection"] is False
    assert runs[True].metrics["refit"]["steps"] == runs[False].metrics["refit"]["steps"]
    for k in runs[False].weights:
        assert torch.equal(runs[True].weights[k], runs[False].weights[k]), k
    assert not any(t.name == "refit" for t in threading.enumerate())


def test_seeded_dropout_draws_what_f_dropout_draws_from_the_same_state():
    x = torch.randn(64, 40)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    expected = F.dropout(x, 0.2, training=True)
    gen = torch.Generator()
    gen.set_state(state)
    layer = SeededDropout(0.2)
    layer.generator = gen
    assert torch.equal(layer.train()(x), expected)
    assert torch.equal(layer.eval()(x), x)


def _refit_run(weekly) -> RefitRun:
    cfg = replace(FAST, max_steps=120)
    x = torch.randn(96, 3, 6, 14, generator=torch.Generator().manual_seed(0))
    y = torch.arange(96) % 4
    mcfg = ModelConfig(in_features=3, n_classes=4, widths=(4, 8), series_widths=())
    return RefitRun(mcfg, cfg, x, y, n_train=72, n_classes=4, seed=1,
                    dev=torch.device("cpu"), bf16=False)


def test_refit_run_ahead_of_the_final_best_step_keeps_its_weights(weekly):
    """The thread ran past the target of the final best step: the weights at the target."""
    alone = _refit_run(weekly).run_to(10)
    run = _refit_run(weekly)
    run.start()
    run.advance(best_step=10, selection_step=60)  # may run to the target of step 30
    deadline = time.monotonic() + 60
    while run.step < run.steps_for(30) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.step == run.steps_for(30) > run.steps_for(10)
    beside = run.finish(10)
    assert run.info()["steps"] == run.steps_for(10) == round(10 * 96 / 72)
    for k, v in alone.state_dict().items():
        assert torch.equal(beside.state_dict()[k], v), k


def test_a_failing_selection_run_stops_the_refit_thread(weekly):
    def explode(msg: str) -> None:
        if "step 20" in msg:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        train(weekly.series, weekly.labels, weekly.field_ids, 14, config=FAST, log=explode,
              device="cpu")
    assert not any(t.name == "refit" for t in threading.enumerate())


def test_selection_passes_score_a_capped_subset_and_metrics_all_pixels(weekly):
    kw = dict(class_names=weekly.class_names, features=weekly.features, device="cpu")
    full = train(weekly.series, weekly.labels, weekly.field_ids, 14,
                 config=replace(FAST, refit=False), **kw)
    n_val = full.metrics["n_val_pixels"]
    assert full.metrics["n_val_pixels_selection"] == n_val  # below the default cap
    capped = train(weekly.series, weekly.labels, weekly.field_ids, 14,
                   config=replace(FAST, refit=False, max_val_pixels=25), **kw)
    assert capped.metrics["n_val_pixels_selection"] == 25
    assert capped.metrics["n_val_pixels"] == n_val
    assert sum(sum(row) for row in capped.metrics["confusion"]) == n_val
    # the history's accuracies are fractions of the 25 scored pixels
    assert all(round(h["val_accuracy"] * 25, 6) % 1 == 0 for h in capped.history)
