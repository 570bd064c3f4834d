"""Slow: the default classifier on REAL crop series against the random forest.

The French LPIS set of ``../shared/realdata`` (Sentinel-1 + Sentinel-2 on 10-day dekads,
about half of the optical values missing, 10 classes, one parcel per sample): 3-fold
stratified cross-validation (each parcel is its own group), the library's defaults
(``train`` / ``predict`` with the set's dates) against the library's random-forest
baseline fitted on the same training folds, at half and full season. Accuracy floors with
a fixed seed, never timings. ``bench/bench_real_series.py`` is the full comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from cropassets.ml import predict, train
from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.splits import FieldSplit
from cropassets.ml.train_config import TrainConfig

pytestmark = pytest.mark.slow

NAME = "worldcereal_france_lpis2023_dekadal"
FOLDS = 3  # the quick benchmark protocol; 5 folds: see the issue-12 note
MARGIN = 0.02  # the classifier may trail the forest by at most 2 points


def _data_dir() -> Path:
    env = os.environ.get("CROPASSETS_REALDATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "realdata"


@pytest.fixture(scope="module")
def france() -> dict[str, np.ndarray]:
    path = _data_dir() / f"{NAME}.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared/realdata beside the checkout, or set "
                    "CROPASSETS_REALDATA)")
    with np.load(path, allow_pickle=False) as z:
        return {"x": z["X"].astype(np.float32), "y": z["y"].astype(np.int64),
                "groups": z["group_ids"].astype(np.int64),
                "dates": z["dates"].astype("datetime64[D]")}


def _cross_validated(d: dict[str, np.ndarray], k: int) -> tuple[float, float]:
    """Pooled test accuracy of the library and of the forest over the same folds."""
    x, y, g, dates = d["x"], d["y"], d["groups"], d["dates"]
    hits_lib = hits_rf = n = 0
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    for tr, te in folds.split(x, y):
        ck = train(x[tr], y[tr], g[tr], k, dates=dates, config=TrainConfig(seed=0),
                   device="cpu")
        idx, _ = predict(ck, x[te], dates=dates, device="cpu")
        codes = np.asarray(ck.class_codes)
        hits_lib += int((np.where(idx >= 0, codes[np.maximum(idx, 0)], -1) == y[te]).sum())
        g_te = np.arange(len(te), dtype=np.int64) + int(g.max()) + 1
        split = FieldSplit(train=np.unique(g[tr]), val=g_te, test=np.zeros(0, np.int64))
        rf = random_forest_baseline(np.concatenate([x[tr], x[te]]),
                                    np.concatenate([y[tr], y[te]]),
                                    np.concatenate([g[tr], g_te]), k, split=split, seed=0)
        confusion = np.asarray(rf.metrics["confusion"])
        assert confusion.sum() == len(te)  # every test parcel has observations
        hits_rf += int(np.trace(confusion))
        n += len(te)
    return hits_lib / n, hits_rf / n


@pytest.mark.parametrize("fraction", [0.5, 1.0])
def test_default_classifier_within_two_points_of_the_forest(france, fraction):
    k = round(france["x"].shape[2] * fraction)
    lib, rf = _cross_validated(france, k)
    print(f"France LPIS k={k}: library {lib:.3f}, random forest {rf:.3f}")
    assert lib >= rf - MARGIN, (k, lib, rf)
    assert lib > 0.6  # far above the majority class (0.39)
