"""train / predict / checkpoint: determinism, round trip, refusal, streaming, nodata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from float_checks import assert_same_classes_up_to_ties

from cropassets.ml import Checkpoint, predict, train
from cropassets.ml.predict import NODATA, evaluate
from cropassets.ml.train_config import TrainConfig

FAST = TrainConfig(max_steps=60, min_steps=20, eval_every=10, patience_steps=20,
                   batch_size=64)
K = 20


@pytest.fixture(scope="module")
def checkpoint(weekly) -> Checkpoint:
    return train(weekly.series, weekly.labels, weekly.field_ids, K,
                 class_names=weekly.class_names, features=weekly.features, config=FAST)


def test_checkpoint_contents(checkpoint, weekly):
    ck = checkpoint
    assert ck.n_steps == K and ck.features == weekly.features
    assert ck.class_names == weekly.class_names
    assert ck.class_codes == weekly.class_codes.tolist()
    m = ck.metrics
    for key in ("overall_accuracy", "macro_f1", "per_class_f1", "confusion", "best_step",
                "flops_per_sample", "n_train_pixels_dropped", "precision"):
        assert key in m
    assert set(m["per_class_f1"]) == set(weekly.class_names)
    assert np.asarray(m["confusion"]).shape == (4, 4)
    assert m["n_invalid_pixels"] == 2
    assert set(ck.versions) >= {"torch", "numpy", "pywt", "cropassets"}
    assert 1 <= m["best_step"] <= m["steps_run"] <= FAST.max_steps
    assert m["n_train_pixels_dropped"] == 0 and m["precision"] == "fp32"
    assert [h["step"] for h in ck.history][:2] == [10, 20]
    # the best epoch's weights were restored: its val loss is the reported one
    best = next(h for h in ck.history if h["step"] == m["best_step"])
    assert m["val_loss"] == pytest.approx(best["val_loss"])
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in ck.history)
    assert m["overall_accuracy"] == pytest.approx(best["val_accuracy"])
    assert set(ck.split["train"]).isdisjoint(ck.split["val"])


def test_same_seed_same_metrics_and_weights(checkpoint, weekly):
    again = train(weekly.series, weekly.labels, weekly.field_ids, K,
                  class_names=weekly.class_names, features=weekly.features, config=FAST)
    assert again.metrics["overall_accuracy"] == checkpoint.metrics["overall_accuracy"]
    assert again.metrics["confusion"] == checkpoint.metrics["confusion"]
    assert again.history == checkpoint.history
    for name, w in checkpoint.weights.items():
        assert torch.equal(w, again.weights[name]), name


def test_caller_rng_state_untouched(weekly):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(weekly.series, weekly.labels, weekly.field_ids, 5, config=TrainConfig(max_steps=2))
    assert torch.equal(torch.rand(3), expected)
    assert not torch.are_deterministic_algorithms_enabled()


def test_training_threads_are_restored(weekly):
    """The optimisation runs on one CPU thread (TrainConfig.cpu_threads); the caller's stays."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(weekly.series, weekly.labels, weekly.field_ids, 5, config=TrainConfig(max_steps=2))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_save_load_round_trip(checkpoint, weekly, tmp_path):
    path = checkpoint.save(tmp_path / "sub" / "ck.pt")
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]  # no temp file left
    loaded = Checkpoint.load(path)
    assert loaded.summary() == checkpoint.summary()
    for name, w in checkpoint.weights.items():
        assert torch.equal(w, loaded.weights[name])
    a = predict(checkpoint, weekly.series)
    b = predict(loaded, weekly.series)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # plain types only: loadable with weights_only=True
    torch.load(path, weights_only=True)


def test_refuses_mismatched_features_and_scales(checkpoint, weekly):
    checkpoint.check_compatible(weekly.features, checkpoint.scales, K)  # same: fine
    with pytest.raises(ValueError, match="feature list"):
        checkpoint.check_compatible(features=["f1", "f0", "f2"])
    with pytest.raises(ValueError, match="scale list"):
        checkpoint.check_compatible(scales=np.asarray(checkpoint.scales) * 1.01)
    with pytest.raises(ValueError, match="scale list"):
        checkpoint.check_compatible(scales=checkpoint.scales[:-1])
    with pytest.raises(ValueError, match="sequence length"):
        checkpoint.check_compatible(n_steps=K + 1)
    with pytest.raises(ValueError, match="feature list"):
        predict(checkpoint, weekly.series, features=("a", "b", "c"))
    with pytest.raises(ValueError, match="3"):
        predict(checkpoint, weekly.series[:, :2])  # wrong feature count
    with pytest.raises(ValueError, match="steps"):
        predict(checkpoint, weekly.series[:, :, : K - 1])


def test_predict_streaming_equals_one_shot_and_nodata(checkpoint, weekly):
    x = weekly.series
    one_cls, one_conf = predict(checkpoint, x, batch_size=len(x))
    st_cls, st_conf = predict(checkpoint, x, batch_size=7)
    # batches of all pixels vs of 7: other convolution shapes, equal to float32 rounding
    assert_same_classes_up_to_ties(one_cls, np.round(one_conf * 100), st_cls,
                                   np.round(st_conf * 100), nodata=NODATA)
    np.testing.assert_allclose(one_conf, st_conf, rtol=0, atol=1e-5)
    assert one_cls.dtype == np.int64 and one_conf.dtype == np.float32
    assert (one_cls[:2] == NODATA).all() and (one_conf[:2] == 0.0).all()
    ok = one_cls != NODATA
    assert ((one_conf[ok] > 0) & (one_conf[ok] <= 1)).all()
    assert one_cls[ok].max() < len(checkpoint.class_names)


def test_predict_reads_only_the_first_k_steps(checkpoint, weekly):
    x = weekly.series.copy()
    x[:, :, K:] = 99.0
    a = predict(checkpoint, weekly.series)
    b = predict(checkpoint, x)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_evaluate_on_another_season(checkpoint, weekly):
    from synthetic_series import make_labelled_series

    cur = make_labelled_series(n_classes=4, fields_per_class=3, pixels_per_field=10,
                               n_steps=28, n_features=3, seed=9, year_shift=0.01)
    labels = cur.labels.copy()
    labels[:5] = 999  # a class the model never saw: left out and counted
    m = evaluate(checkpoint, cur.series, labels)
    assert m["n_unknown_label"] == 5 and m["n"] == len(labels) - 5
    assert 0.0 <= m["overall_accuracy"] <= 1.0


def test_class_names_must_match_labels(weekly):
    with pytest.raises(ValueError, match="class_names"):
        train(weekly.series, weekly.labels, weekly.field_ids, 5, class_names=["a", "b"],
              config=TrainConfig(max_steps=2))


def test_too_few_fields_error_reaches_train(weekly):
    keep = (weekly.labels != weekly.class_codes[1]) | (weekly.field_ids == weekly.field_ids[
        weekly.labels == weekly.class_codes[1]][0])
    with pytest.raises(ValueError, match=r"'class_1'.*1 field"):
        train(weekly.series[keep], weekly.labels[keep], weekly.field_ids[keep], 5,
              class_names=weekly.class_names, config=TrainConfig(max_steps=2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_train_and_predict_match_cpu_classes(checkpoint, weekly):
    ck = train(weekly.series, weekly.labels, weekly.field_ids, K, device="cuda", config=FAST)
    assert ck.weights[next(iter(ck.weights))].device.type == "cpu"
    cpu_cls, _ = predict(checkpoint, weekly.series, device="cpu")
    gpu_cls, gpu_conf = predict(checkpoint, weekly.series, device="cuda", precision="auto")
    assert (cpu_cls == gpu_cls).mean() > 0.98  # bf16 autocast may flip a near-tie
    assert ((gpu_conf >= 0) & (gpu_conf <= 1)).all()


def test_field_split_property(checkpoint):
    s = checkpoint.field_split
    assert s.train.tolist() == checkpoint.split["train"]
    assert s.val.tolist() == checkpoint.split["val"] and s.test.size == 0


def test_ambient_cpu_autocast_does_not_change_training(checkpoint, weekly):
    """bf16 autocast around train() (as on AVX-512-BF16 CPUs) once ended near chance."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = train(weekly.series, weekly.labels, weekly.field_ids, K,
                      class_names=weekly.class_names, features=weekly.features, config=FAST)
    assert again.metrics["precision"] == "fp32"
    assert again.history == checkpoint.history
    for name, w in checkpoint.weights.items():
        assert torch.equal(w, again.weights[name]), name


def test_pixel_cap_is_reported(weekly):
    cfg = TrainConfig(max_steps=2, max_pixels_per_field=3)
    ck = train(weekly.series, weekly.labels, weekly.field_ids, 5, config=cfg)
    m = ck.metrics
    assert m["n_train_pixels"] == 3 * m["n_train_fields"]
    valid = np.isfinite(weekly.series[:, :, :5]).any(axis=(1, 2))
    eligible = int((np.isin(weekly.field_ids, ck.split["train"]) & valid).sum())
    assert m["n_train_pixels_dropped"] == eligible - m["n_train_pixels"] > 0


def test_learning_rate_schedule_warms_up_then_decays():
    cfg = TrainConfig(max_steps=100, lr=1e-2, warmup_fraction=0.1, final_lr_fraction=0.05)
    lrs = [cfg.lr_at(s) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(1e-2 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * 89 / 90))))
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)


def test_single_class_labels_are_refused(weekly):
    with pytest.raises(ValueError, match="single class"):
        train(weekly.series, np.zeros(len(weekly.labels), int), weekly.field_ids, 5)


def test_small_training_set_gets_the_full_step_budget(weekly):
    """Steps, not epochs: 2 fields per class still get max_steps optimiser steps."""
    keep = np.isin(weekly.field_ids, np.unique(weekly.field_ids)[::4])
    cfg = TrainConfig(max_steps=40, min_steps=40, eval_every=10, batch_size=16)
    ck = train(weekly.series[keep], weekly.labels[keep], weekly.field_ids[keep], 8, config=cfg)
    assert ck.metrics["steps_run"] == 40
    assert ck.metrics["epochs_run"] > 10  # a few dozen pixels seen many times
