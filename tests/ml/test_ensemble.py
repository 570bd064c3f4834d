"""The served ensemble of small training sets: refit network, selection network, more seeds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from cropassets.ml import predict, predict_proba, train
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.model import CNN2D, CNN2DEnsemble, ModelConfig, inference_model
from cropassets.ml.train_config import TrainConfig

FAST = TrainConfig(max_steps=60, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)


@pytest.fixture(scope="module")
def runs(weekly):
    """Checkpoints of one seed: selection only, refit only, refit + selection, the default."""
    x, y, f = weekly.series, weekly.labels, weekly.field_ids
    kw = dict(class_names=weekly.class_names, features=weekly.features)
    return {
        "selection": train(x, y, f, 14, config=replace(FAST, refit=False), **kw),
        "refit": train(x, y, f, 14, config=replace(FAST, extra_refits=0), **kw),
        "both": train(x, y, f, 14, config=replace(FAST, keep_selection=True, extra_refits=0),
                      **kw),
        "default": train(x, y, f, 14, config=FAST, **kw),
        "all3": train(x, y, f, 14, config=replace(FAST, keep_selection=True), **kw),
        "large": train(x, y, f, 14, config=replace(FAST, ensemble_max_pixels=100), **kw),
    }


def test_small_sets_serve_two_refit_networks_of_consecutive_seeds(runs):
    cfg = TrainConfig()
    assert cfg.refit and not cfg.keep_selection and cfg.extra_refits == 1
    sel, ref, default = runs["selection"], runs["refit"], runs["default"]
    n_pixels = default.metrics["n_train_pixels"] + default.metrics["n_val_pixels"]
    assert n_pixels <= cfg.ensemble_max_pixels
    assert (sel.n_members, ref.n_members, default.n_members) == (1, 1, 2)
    assert default.metrics["n_members"] == 2 and ref.metrics["n_members"] == 1
    # member 0 is the refit network of the seed (the single-network run's weights); the
    # other is a refit of seed + 1, another network than both
    for k, w in default.weights.items():
        assert torch.equal(w, ref.weights[k]), k
    extra = default.member_weights[0]
    assert any(not torch.equal(extra[k], ref.weights[k]) for k in extra)
    assert any(not torch.equal(extra[k], sel.weights[k]) for k in extra)
    # the reported validation metrics are the selection run's in all of them
    assert default.metrics["overall_accuracy"] == sel.metrics["overall_accuracy"]
    assert default.metrics["flops_per_sample"] == 2 * ref.metrics["flops_per_sample"]


def test_keep_selection_adds_the_selection_run_network(runs):
    sel, ref, both, all3 = runs["selection"], runs["refit"], runs["both"], runs["all3"]
    assert (both.n_members, all3.n_members) == (2, 3)
    for k, w in both.weights.items():
        assert torch.equal(w, ref.weights[k]), k
    for k, w in both.member_weights[0].items():
        assert torch.equal(w, sel.weights[k]), k
    for k, w in all3.member_weights[1].items():  # the refit of seed + 1, as in the default
        assert torch.equal(w, runs["default"].member_weights[0][k]), k
    assert all3.metrics["flops_per_sample"] == 3 * ref.metrics["flops_per_sample"]


def test_sets_above_the_ensemble_bound_serve_one_refit_network(runs):
    large, ref = runs["large"], runs["refit"]
    assert large.n_members == 1 and large.metrics["n_members"] == 1
    for k, w in large.weights.items():
        assert torch.equal(w, ref.weights[k]), k


def test_bad_ensemble_settings_are_refused():
    with pytest.raises(ValueError, match="extra_refits must be >= 0"):
        TrainConfig(extra_refits=-1)


def test_the_ensemble_predicts_the_mean_of_its_members_probabilities(runs, weekly):
    x = weekly.series
    p_sel, ok_sel = predict_proba(runs["selection"], x)
    p_ref, ok_ref = predict_proba(runs["refit"], x)
    p_both, ok_both = predict_proba(runs["both"], x)
    assert np.array_equal(ok_both, ok_sel) and np.array_equal(ok_both, ok_ref)
    mean = (p_sel + p_ref) / 2
    np.testing.assert_allclose(p_both, mean, atol=2e-5)
    np.testing.assert_allclose(p_both[ok_both].sum(1), 1.0, atol=1e-5)
    cls, conf = predict(runs["both"], x)
    sure = ok_both & (np.sort(mean, 1)[:, -1] - np.sort(mean, 1)[:, -2] > 1e-3)
    assert np.array_equal(cls[sure], mean[sure].argmax(1))
    np.testing.assert_allclose(conf[ok_both], p_both[ok_both].max(1), atol=1e-6)


def test_an_ensemble_checkpoint_round_trips_and_old_ones_load_as_one_network(runs, tmp_path):
    both = runs["both"]
    loaded = Checkpoint.load(both.save(tmp_path / "k14.pt"))
    assert loaded.n_members == 2
    for k, w in both.member_weights[0].items():
        assert torch.equal(w, loaded.member_weights[0][k]), k
    assert loaded.summary()["n_members"] == 2 and "member_weights" not in loaded.summary()
    old = runs["refit"].to_dict()
    del old["member_weights"]  # written before ensembles existed
    single = Checkpoint.from_dict(old)
    assert single.n_members == 1 and isinstance(single.build_model(), CNN2D)
    assert isinstance(loaded.build_model(), CNN2DEnsemble)


def test_the_fused_ensemble_matches_the_eager_one():
    torch.manual_seed(3)
    cfg = ModelConfig(in_features=2, n_classes=4, widths=(4, 8), series_widths=(8, 8))
    members = []
    for _ in range(3):
        m = CNN2D(cfg)
        norms = (mod for mod in m.modules()
                 if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d))
        for bn in norms:  # statistics away from (0, 1), so folding them is tested
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        members.append(m.eval())
    eager = CNN2DEnsemble(members).eval()
    fused = inference_model(eager, "cpu")
    x = torch.randn(16, 2, 6, 12)
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(x), 1) for m in members]).mean(0)
        got_eager = torch.softmax(eager(x), 1)
        got_fused = torch.softmax(fused(x.contiguous(memory_format=torch.channels_last)), 1)
    torch.testing.assert_close(got_eager, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_fused, want, atol=1e-5, rtol=0)


def test_an_ensemble_needs_two_members():
    with pytest.raises(ValueError, match="at least two members"):
        CNN2DEnsemble([CNN2D(ModelConfig(in_features=1, n_classes=2))])
