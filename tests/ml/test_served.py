"""The served model of week k: the choice, the forest file, the plain predictor."""

from __future__ import annotations

import math

import joblib
import numpy as np
import pytest
from float_checks import assert_same_classes_up_to_ties
from synthetic_series import make_labelled_series

from cropassets.ml import predict, train
from cropassets.ml.baseline import ForestModel, random_forest_baseline
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.predict import predict_proba
from cropassets.ml.prepare import smoothed_prefix
from cropassets.ml.served import (
    KIND_TITLES,
    SERVED_RULE,
    ServedModel,
    choose_served,
    evaluate_served,
    forest_path,
    load_served,
    predict_served,
    save_served,
    select_served,
)
from cropassets.ml.train_config import TrainConfig

K = 8


@pytest.fixture(scope="module")
def data():
    """3 separable classes x 6 fields x 15 pixels, 10 steps, 3 features, 3 all-NaN pixels."""
    d = make_labelled_series(n_classes=3, fields_per_class=6, pixels_per_field=15,
                             n_steps=K + 2, n_features=3, seed=5, all_nan_pixels=3, noise=0.08)
    return d, d.labels + 1  # class codes other than the generator's


def _pair(data, cnn_steps, trees, seed=0):
    d, y = data
    ckpt = train(d.series, y, d.field_ids, K, class_names=d.class_names, features=d.features,
                 config=TrainConfig(max_steps=cnn_steps, eval_every=10, batch_size=64,
                                    min_steps=1, refit=False,  # combination scored
                                    seed=seed))
    rf = random_forest_baseline(d.series, y, d.field_ids, K, split=ckpt.field_split,
                                class_names=d.class_names, features=d.features,
                                n_estimators=trees, seed=seed)
    return ckpt, rf.fitted


@pytest.fixture(scope="module")
def baseline_wins(data):
    """A CNN after one optimiser step against a 30-tree forest: the forest is far better."""
    return _pair(data, cnn_steps=1, trees=30)


@pytest.fixture(scope="module")
def cnn_wins(data):
    """A trained CNN against a one-tree forest (one bootstrap sample of the training set)."""
    return _pair(data, cnn_steps=60, trees=1)


def _saved(tmp_path, data, pair):
    d, y = data
    ckpt, forest = pair
    ckpt = Checkpoint.from_dict(ckpt.to_dict())  # a copy: the fixture stays unchanged
    rec = select_served(ckpt, forest, d.series, y, d.field_ids)
    path, _ = save_served(ckpt, forest, rec, tmp_path / "cnn2d_checkpoint" / f"k{K:02d}.pt")
    return path, rec


def test_rule_higher_validation_accuracy_ties_to_the_cnn():
    assert choose_served(0.9, 0.9)["model"] == "cnn2d"
    assert choose_served(0.9, 0.91)["model"] == "random_forest"
    assert choose_served(0.9, float("nan"))["model"] == "cnn2d"
    assert choose_served(0.9, None)["model"] == "cnn2d"
    rec = choose_served(0.8, 0.9, 0.95)
    assert rec["model"] == "combination" and rec["val_accuracy"] == 0.95
    assert choose_served(0.8, 0.9, 0.9)["model"] == "random_forest"  # only strictly above
    assert choose_served(0.9, 0.8, 0.9)["model"] == "cnn2d"
    rec = choose_served(0.5, 0.75)
    assert rec == {"model": "random_forest", "val_accuracy": 0.75, "cnn2d_val_accuracy": 0.5,
                   "random_forest_val_accuracy": 0.75, "rule": SERVED_RULE}
    assert set(KIND_TITLES) == {"cnn2d", "random_forest", "combination"}


def test_baseline_wins_is_served_as_the_forest(tmp_path, data, baseline_wins):
    d, _ = data
    ckpt, forest = baseline_wins
    path, rec = _saved(tmp_path, data, baseline_wins)
    assert rec["random_forest_val_accuracy"] > rec["cnn2d_val_accuracy"] + 0.2
    assert rec["model"] == "random_forest"
    assert rec["val_accuracy"] == forest.metrics["overall_accuracy"]
    assert rec["cnn2d_val_accuracy"] == ckpt.metrics["overall_accuracy"]
    # both files, written atomically: nothing else in the folder
    assert sorted(p.name for p in path.parent.iterdir()) == ["k08.pt", "k08.rf.joblib"]
    assert forest_path(path) == path.parent / "k08.rf.joblib"
    stored = Checkpoint.load(path).metrics["served"]
    assert stored["model"] == "random_forest" and stored["forest_file"] == "k08.rf.joblib"
    served = load_served(path, features=d.features, n_steps=K)
    assert served.kind == "random_forest" and served.title == "random forest"
    assert served.forest is not None and served.forest_file == forest_path(path)
    assert served.summary()["kind"] == "random_forest"
    assert served.val_accuracy == rec["val_accuracy"]
    cls, conf = served.predict(d.series)
    want_cls, want_conf = forest.predict(d.series)
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(conf, want_conf)
    # the plain function, from the path, gives the same
    cls2, conf2 = predict_served(path, d.series)
    np.testing.assert_array_equal(cls2, cls)
    np.testing.assert_array_equal(conf2, conf)


def test_cnn_wins_is_served_as_the_cnn(tmp_path, data, cnn_wins):
    d, _ = data
    ckpt, _ = cnn_wins
    path, rec = _saved(tmp_path, data, cnn_wins)
    # measured here: CNN 0.98 vs one tree 0.92 on the 90 validation pixels
    assert rec["cnn2d_val_accuracy"] > rec["random_forest_val_accuracy"]
    assert rec["model"] == "cnn2d" and rec["val_accuracy"] == ckpt.metrics["overall_accuracy"]
    served = load_served(path)
    assert served.kind == "cnn2d" and served.forest is None  # the forest is not even read
    cls, conf = served.predict(d.series)
    want_cls, want_conf = predict(ckpt, d.series)
    np.testing.assert_array_equal(cls, want_cls)
    np.testing.assert_array_equal(conf, want_conf)


@pytest.mark.parametrize("kind", ["cnn2d", "random_forest", "combination"])
def test_served_predictor_shapes_nodata_and_streaming(data, cnn_wins, kind):
    d, _ = data
    ckpt, forest = cnn_wins
    served = ServedModel(kind, ckpt, forest if kind != "cnn2d" else None)
    x = d.series.copy()
    x[10, :, :K] = np.nan  # observed only after week k: no observation in the prefix
    cls, conf = served.predict(x)
    assert cls.shape == conf.shape == (len(x),)
    assert cls.dtype == np.int64 and conf.dtype == np.float32
    nodata = ~np.isfinite(x[:, :, :K]).any(axis=(1, 2))
    assert nodata[:3].all() and nodata[10] and nodata.sum() == 4
    np.testing.assert_array_equal(cls[nodata], -1)
    np.testing.assert_array_equal(conf[nodata], 0.0)
    assert (cls[~nodata] >= 0).all() and (cls[~nodata] < 3).all()
    assert ((conf[~nodata] > 0) & (conf[~nodata] <= 1)).all()
    # small batches: the same classes up to near-ties (other GEMM shapes)
    cls_b, conf_b = served.predict(x, batch_size=7)
    assert_same_classes_up_to_ties(np.where(cls < 0, 255, cls), np.round(conf * 100),
                                   np.where(cls_b < 0, 255, cls_b), np.round(conf_b * 100))
    # only the first k steps are read
    later = x.copy()
    later[:, :, K:] = 123.0
    cls_l, conf_l = served.predict(later)
    np.testing.assert_array_equal(cls_l, cls)
    np.testing.assert_array_equal(conf_l, conf)
    # probabilities: rows sum to 1 where valid, 0 where not; argmax/max are predict's
    prob, valid = served.predict_proba(x)
    np.testing.assert_array_equal(valid, ~nodata)
    np.testing.assert_allclose(prob[valid].sum(axis=1), 1.0, rtol=1e-5)
    assert (prob[~valid] == 0).all()
    np.testing.assert_array_equal(prob[valid].argmax(axis=1), cls[valid])


def test_combination_is_the_mean_of_both_probabilities(data, cnn_wins):
    d, y = data
    ckpt, forest = cnn_wins
    both = ServedModel("combination", ckpt, forest)
    p_cnn, ok = predict_proba(ckpt, d.series)
    p_rf, ok_rf = forest.predict_proba(d.series)
    np.testing.assert_array_equal(ok, ok_rf)
    prob, _ = both.predict_proba(d.series)
    np.testing.assert_allclose(prob, (p_cnn + p_rf) / 2, rtol=1e-6)
    rec = select_served(ckpt, forest, d.series, y, d.field_ids)
    acc = rec["combination_val_accuracy"]
    assert 0 <= acc <= 1
    assert (rec["model"] == "combination") is (acc > rec["cnn2d_val_accuracy"]
                                               and acc > rec["random_forest_val_accuracy"])
    m = evaluate_served(both, d.series, y)
    assert m["n_nodata"] == 3 and math.isfinite(m["overall_accuracy"])


def test_forest_metrics_are_what_the_served_forest_predicts(data, baseline_wins):
    d, y = data
    ckpt, forest = baseline_wins
    _, va, _ = ckpt.field_split.masks(d.field_ids)
    va &= np.isfinite(d.series[:, :, :K]).any(axis=(1, 2))
    cls, _ = forest.predict(d.series[va])
    y_idx = np.searchsorted(np.unique(y), y)
    assert forest.metrics["overall_accuracy"] == float((cls == y_idx[va]).mean())
    assert forest.metrics["n"] == int(va.sum())
    # random_forest_baseline's forest is the fitted one, and it is deterministic
    again = random_forest_baseline(d.series, y, d.field_ids, K, split=ckpt.field_split,
                                   class_names=d.class_names, n_estimators=30)
    assert again.metrics == forest.metrics
    assert again.model is not None and again.fitted is not None
    assert again.fitted.features == ("feature_0", "feature_1", "feature_2")
    # sklearn's own predict on the smoothed prefix agrees (same argmax rule; its threaded
    # sum of tree votes may break exact ties otherwise, so ties are left out)
    sm, _ = smoothed_prefix(d.series[va], K, cutoff=forest.cutoff, order=forest.order,
                            fill=forest.fill)
    sk = forest.forest.predict(sm.reshape(len(sm), -1))
    _, conf = forest.predict(d.series[va], n_jobs=1)
    clear = conf > 0.55
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(sk[clear], cls[clear])


def test_forest_file_round_trip_and_atomic_write(tmp_path, monkeypatch, data, baseline_wins):
    d, _ = data
    _, forest = baseline_wins
    path = forest.save(tmp_path / "k08.rf.joblib")
    loaded = ForestModel.load(path, n_steps=K, features=d.features)
    np.testing.assert_array_equal(loaded.fill, forest.fill)
    assert loaded.class_codes == forest.class_codes and loaded.metrics == forest.metrics
    np.testing.assert_array_equal(loaded.predict(d.series)[0], forest.predict(d.series)[0])
    before = path.read_bytes()

    def broken_dump(obj, fh, *a, **kw):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        forest.save(path)
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["k08.rf.joblib"]  # no temp file left


def test_bad_inputs_name_the_file_and_what_was_expected(tmp_path, data, baseline_wins):
    d, y = data
    ckpt, forest = baseline_wins
    path, _ = _saved(tmp_path, data, baseline_wins)
    f_path = forest_path(path)
    # a forest for another k
    other_k = random_forest_baseline(d.series, y, d.field_ids, 6, split=ckpt.field_split,
                                     features=d.features, n_estimators=5).fitted
    with pytest.raises(ValueError, match=r"k08.rf.joblib.*fitted for k=6 steps, not k=8"):
        ForestModel.load(other_k.save(f_path), n_steps=K)
    with pytest.raises(ValueError, match=r"k08.rf.joblib is not the forest .*k08.pt"):
        load_served(path)  # the recorded SHA-256 no longer matches
    # a forest for other features
    renamed = random_forest_baseline(d.series, y, d.field_ids, K, split=ckpt.field_split,
                                     features=["a", "b", "c"], n_estimators=5).fitted
    with pytest.raises(ValueError, match=r"fitted on features \['a', 'b', 'c'\]"):
        ForestModel.load(renamed.save(tmp_path / "x.rf.joblib"), features=d.features)
    with pytest.raises(ValueError, match="fitted on features"):
        ServedModel("random_forest", ckpt, renamed)
    # not a forest at all
    joblib.dump({"something": 1}, tmp_path / "junk.joblib")
    with pytest.raises(ValueError, match=r"junk.joblib is not a cropassets random forest"):
        ForestModel.load(tmp_path / "junk.joblib")
    # the file the record names is missing
    f_path.unlink()
    with pytest.raises(FileNotFoundError, match=r"k08.rf.joblib does not exist"):
        load_served(path)
    with pytest.raises(FileNotFoundError, match=r"random forest file .*nothing.joblib"):
        ForestModel.load(tmp_path / "nothing.joblib")
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*k99.pt does not exist"):
        load_served(tmp_path / "k99.pt")
    # the checkpoint for another k / other features
    forest.save(f_path)
    with pytest.raises(ValueError, match=r"checkpoint .*k08.pt.*sequence length 6"):
        load_served(path, n_steps=6)
    with pytest.raises(ValueError, match="a random_forest served model needs its random"):
        ServedModel("random_forest", ckpt)
    with pytest.raises(ValueError, match="series has 2 features"):
        ServedModel("random_forest", ckpt, forest).predict(d.series[:, :2])


def test_checkpoint_without_a_record_serves_its_cnn(tmp_path, data, cnn_wins):
    d, _ = data
    ckpt, _ = cnn_wins
    old = Checkpoint.from_dict(ckpt.to_dict())
    old.metrics.pop("served", None)
    path = old.save(tmp_path / "k08.pt")
    served = load_served(path)
    assert served.kind == "cnn2d" and "before the served-model choice" in served.record["rule"]
    assert served.val_accuracy == ckpt.metrics["overall_accuracy"]
    np.testing.assert_array_equal(served.predict(d.series)[0], predict(ckpt, d.series)[0])
