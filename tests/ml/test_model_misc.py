"""Model shapes for any T >= 3, FLOPs, device selection, metrics, baseline."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.cwt_precision import cpu_prefers_bf16
from cropassets.ml.device import autocast_context, select_device
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.model import CNN2D, ModelConfig, flops_per_sample
from cropassets.ml.splits import split_fields


@pytest.mark.parametrize("t", [3, 4, 9, 28, 52])
@pytest.mark.parametrize("widths", [(8,), (8, 16), (16, 32, 32)])
def test_any_length(t, widths):
    m = CNN2D(ModelConfig(in_features=3, n_classes=5, widths=widths)).eval()
    assert m(torch.zeros(2, 3, 16, t)).shape == (2, 5)
    assert flops_per_sample(m, 3, 16, t) > 0


def test_flops_grow_with_width_and_length():
    small = CNN2D(ModelConfig(5, 7, (8, 16)))
    big = CNN2D(ModelConfig(5, 7, (16, 32)))
    assert flops_per_sample(small, 5, 16, 28) < flops_per_sample(big, 5, 16, 28)
    assert flops_per_sample(small, 5, 16, 10) < flops_per_sample(small, 5, 16, 28)


def test_config_round_trip_and_validation():
    c = ModelConfig(4, 3, (8, 16), pool_steps=3)
    assert ModelConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError):
        ModelConfig(4, 1)
    with pytest.raises(ValueError):
        ModelConfig(4, 3, ())


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    ctx = autocast_context("cpu")
    if cpu_prefers_bf16():
        assert isinstance(ctx, torch.autocast)
    else:
        assert isinstance(ctx, contextlib.nullcontext)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            select_device("cuda")


def test_metrics_by_hand():
    m = classification_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, -1]),
                               ["a", "b", "c"])
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert m["n_nodata"] == 1
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert m["per_class_f1"]["a"] == pytest.approx(2 / 3)
    assert m["per_class_f1"]["b"] == pytest.approx(0.8)
    assert m["per_class_f1"]["c"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)


def test_baseline_same_split_and_keys(weekly):
    split = split_fields(weekly.labels, weekly.field_ids, seed=0)
    b = random_forest_baseline(weekly.series, weekly.labels, weekly.field_ids, 20, split=split,
                               n_estimators=30,
                               test=(weekly.series[:50], weekly.labels[:50]))
    assert b.metrics["n"] == int(np.isin(weekly.field_ids, split.val).sum())
    assert {"overall_accuracy", "macro_f1", "per_class_f1", "confusion"} <= set(b.metrics)
    assert b.test_metrics is not None and b.test_metrics["n_nodata"] == 2
    again = random_forest_baseline(weekly.series, weekly.labels, weekly.field_ids, 20,
                                   split=split, n_estimators=30)
    assert again.metrics == b.metrics


def test_series_branch_model_and_old_configs():
    from cropassets.ml.model import CNN2D, inference_model

    c = ModelConfig(5, 7, (4, 8), series_widths=(16, 16))
    assert ModelConfig.from_dict(c.to_dict()) == c
    old = c.to_dict()
    del old["series_widths"]  # checkpoints written before the branch existed
    assert ModelConfig.from_dict(old).series_widths == ()
    torch.manual_seed(0)
    m = CNN2D(c).eval()
    x = torch.randn(9, 5, 17, 12)
    y = m(x)
    assert y.shape == (9, 7)
    # the branch reads the last row only: changing a scalogram row changes the image branch
    x2 = x.clone()
    x2[:, :, -1] += 1.0
    assert not torch.allclose(m(x2), y)
    fused = inference_model(m)
    with torch.no_grad():
        np.testing.assert_allclose(fused(x.contiguous(memory_format=torch.channels_last)),
                                   y.detach(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="series_widths"):
        ModelConfig(5, 7, series_widths=(0,))
