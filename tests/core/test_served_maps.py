"""Maps from the served model: the forest when it won, the CNN2D when it won, and the
COG tags and week manifest naming which."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from synthetic_series import make_labelled_series

from cropassets.core.legend import CLASS_NODATA, class_legend
from cropassets.core.publish.cog import write_cog
from cropassets.core.publish.crop_products import crop_cog_tags, write_crop_cog
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.publish.week_layers import model_summary, write_week_layer
from cropassets.core.seasons import Season, all_weeks
from cropassets.core.storage import write_zarr_atomic
from cropassets.core.week_model_record import MODEL_TITLES, WeekModelRecord
from cropassets.ml import train
from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.served import KIND_TITLES, file_sha256, load_served, save_served, select_served
from cropassets.ml.tile_predict import load_record_model, model_record, predict_tile
from cropassets.ml.train_config import TrainConfig

K = 8
SHAPE = (13, 25)
SEASON = Season("2025", date(2025, 5, 5), 10, "current")
WEEK = all_weeks([SEASON])[K - 1]  # week of season 8
CRS = "EPSG:32647"
TRANSFORM = from_origin(620000.0, 1620000.0, 10.0, 10.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Labelled series, weekly cubes of a 13 x 25 tile holding them, and two data roots."""
    d = make_labelled_series(n_classes=3, fields_per_class=6, pixels_per_field=15,
                             n_steps=K + 2, n_features=3, seed=5, all_nan_pixels=3, noise=0.08)
    labels = np.searchsorted(np.unique(d.labels), d.labels) + 1  # legend codes 1..3
    n = SHAPE[0] * SHAPE[1]
    series = np.full((n, 3, K + 2), np.nan, np.float32)
    series[: len(d.series)] = d.series
    root = tmp_path_factory.mktemp("cubes")
    cubes = []
    for t in range(K + 2):
        ds = xr.Dataset({"features": (("feature", "y", "x"), series[:, :, t].T.reshape(3, *SHAPE))},
                        coords={"feature": list(d.features)})
        write_zarr_atomic(ds, root / f"week{t:02d}.zarr")
        cubes.append(root / f"week{t:02d}.zarr")
    return d, labels, series, cubes


def _serve(root, world, cnn_steps, trees):
    """Train both models as cnn2d_checkpoint does and save them under ``root``."""
    d, labels, _, _ = world
    ckpt = train(d.series, labels, d.field_ids, K, class_names=d.class_names,
                 features=d.features, config=TrainConfig(max_steps=cnn_steps, eval_every=10,
                                                         batch_size=64, min_steps=1))
    forest = random_forest_baseline(d.series, labels, d.field_ids, K, split=ckpt.field_split,
                                    class_names=d.class_names, features=d.features,
                                    n_estimators=trees).fitted
    rec = select_served(ckpt, forest, d.series, labels, d.field_ids)
    path, _ = save_served(ckpt, forest, rec, root / "cnn2d_checkpoint" / f"k{K:02d}.pt")
    return load_served(path)


def _map_and_publish(root, world, served):
    """week_model record -> crop COG with its tags -> week manifest, as the assets do."""
    _, _, _, cubes = world
    record = model_record(WEEK, served, root, knee_week=6)
    model = load_record_model(root, record)
    assert model.kind == served.kind
    cls, conf = predict_tile(cubes, model, strip_rows=4)
    legend = class_legend(record.class_codes, record.class_names)
    cog = root / "crop_map" / "T00" / f"{WEEK.key}.tif"
    write_crop_cog(cog, cls, conf, CRS, TRANSFORM, legend, crop_cog_tags(WEEK, record, legend))
    sos = root / "sos_map" / "T00" / f"{WEEK.key}.tif"
    write_cog(sos, np.full(SHAPE, 150, np.uint16), CRS, TRANSFORM, 0)
    bounds = {"T00": (100.1, 14.6, 100.11, 14.61)}
    manifest = write_week_layer(root, WEEK, {"T00": {"crop": cog, "sos": sos}}, bounds, legend,
                                6, model_summary(record))
    with rasterio.open(cog) as src:
        tags = src.tags()
    return record, cls, conf, tags, manifest


def _old_record(root, served, knee_week):
    """The dict ``model_record`` returned before the typed record (commit c438e63)."""
    rootp = Path(root).resolve()
    ck = served.checkpoint_path.resolve()
    forest = served.forest_file.resolve() if served.forest_file is not None else None
    cur = served.current_season_accuracy
    return {
        "week": WEEK.key, "season": WEEK.season.id, "week_of_season": WEEK.week_of_season,
        "checkpoint": ck.relative_to(rootp).as_posix(),
        "checkpoint_sha256": file_sha256(ck),
        "model_kind": served.kind, "model_title": served.title,
        "accuracy": float(served.val_accuracy),
        "current_season_accuracy": float(cur) if cur is not None else None,
        "cnn2d_accuracy": served.record.get("cnn2d_val_accuracy"),
        "random_forest_accuracy": served.record.get("random_forest_val_accuracy"),
        "rule": served.record.get("rule", ""),
        "forest": forest.relative_to(rootp).as_posix() if forest is not None else None,
        "forest_sha256": file_sha256(forest) if forest is not None else None,
        "class_codes": [int(c) for c in served.class_codes],
        "class_names": list(served.class_names),
        "knee_week": knee_week,
        "preliminary": knee_week is None or WEEK.week_of_season < knee_week,
    }


def _want(world, served):
    _, _, series, _ = world
    idx, p = served.predict(series)
    codes = np.asarray(served.class_codes)
    want_cls = np.where(idx >= 0, codes[np.maximum(idx, 0)], CLASS_NODATA).reshape(SHAPE)
    want_conf = np.where(idx >= 0, np.round(p * 100), CLASS_NODATA).reshape(SHAPE)
    return want_cls, want_conf


def test_baseline_win_is_mapped_and_tagged_as_the_forest(tmp_path, world):
    served = _serve(tmp_path, world, cnn_steps=1, trees=30)  # a one-step CNN: the forest wins
    assert served.kind == "random_forest"
    record, cls, conf, tags, manifest = _map_and_publish(tmp_path, world, served)
    # the file week_model writes: the bytes of the dict written before the typed record
    assert record.to_json() == json.dumps(_old_record(tmp_path, served, 6), indent=1)
    assert WeekModelRecord.from_json(record.to_json()) == record
    assert record.model_kind == "random_forest"
    assert record.forest == f"cnn2d_checkpoint/k{K:02d}.rf.joblib"
    assert record.random_forest_accuracy is not None and record.cnn2d_accuracy is not None
    assert record.accuracy == record.random_forest_accuracy > record.cnn2d_accuracy
    # the map is the forest's: strips of 4 rows vs one batch smooth through other GEMM
    # shapes (float32 rounding), which could move a value across a split threshold only by
    # extreme chance, so classes and confidences agree but for at most a pixel or two
    want_cls, want_conf = _want(world, served)
    np.testing.assert_array_equal(cls == CLASS_NODATA, want_cls == CLASS_NODATA)
    assert (cls == want_cls).mean() > 0.99 and (conf == want_conf).mean() > 0.99
    assert tags["model_kind"] == "random_forest" and tags["model_title"] == "random forest"
    assert float(tags["model_accuracy"]) == round(record.accuracy, 4)
    assert tags["forest_sha256"] == record.forest_sha256
    assert tags["model_sha256"] == record.checkpoint_sha256 and tags["model_week"] == "8"
    assert "tree votes" in tags["band_2"]
    m = manifest.model
    assert m is not None and m.kind == "random_forest" and m.title == "random forest"
    assert m.val_accuracy == m.accuracy == record.accuracy
    assert m.cnn2d_val_accuracy is not None and m.random_forest_val_accuracy is not None
    assert m.cnn2d_val_accuracy < m.random_forest_val_accuracy
    on_disk = WeekManifest.read(tmp_path / "week_layers" / f"{WEEK.key}.json")
    assert on_disk == manifest and on_disk.model is not None
    assert on_disk.model.kind == "random_forest"


def test_cnn_win_is_mapped_and_tagged_as_the_cnn(tmp_path, world):
    served = _serve(tmp_path, world, cnn_steps=60, trees=1)  # a trained CNN vs one tree
    assert served.kind == "cnn2d"
    record, cls, conf, tags, manifest = _map_and_publish(tmp_path, world, served)
    assert record.to_json() == json.dumps(_old_record(tmp_path, served, 6), indent=1)
    assert record.model_kind == "cnn2d" and record.forest is None
    assert record.cnn2d_accuracy is not None and record.random_forest_accuracy is not None
    assert record.accuracy == record.cnn2d_accuracy > record.random_forest_accuracy
    assert tags["model_kind"] == "cnn2d" and "forest_sha256" not in tags
    assert "softmax" in tags["band_2"]
    assert manifest.model is not None and manifest.model.kind == "cnn2d"
    assert "forest_sha256" not in manifest.model.to_dict()
    want_cls, want_conf = _want(world, served)
    assert (cls == CLASS_NODATA).sum() == (want_cls == CLASS_NODATA).sum()
    # strips vs one batch: the CNN's GEMMs differ by rounding only
    assert (cls == want_cls).mean() > 0.99


def test_stale_week_model_record_is_refused(tmp_path, world):
    served = _serve(tmp_path, world, cnn_steps=1, trees=30)
    record = model_record(WEEK, served, tmp_path, knee_week=None)
    assert record.preliminary is True
    assert record.to_json() == json.dumps(_old_record(tmp_path, served, None), indent=1)
    with pytest.raises(ValueError, match=r"says 'cnn2d' maps the week.*now serves "
                                         r"'random_forest'.*re-materialize week_model"):
        load_record_model(tmp_path, replace(record, model_kind="cnn2d"))
    with pytest.raises(ValueError, match=r"differs from the one week_model of .* recorded"):
        load_record_model(tmp_path, replace(record, forest_sha256="0" * 64))
    assert record.forest is not None
    (tmp_path / record.forest).unlink()
    with pytest.raises(FileNotFoundError, match=r"k08.rf.joblib does not exist"):
        load_record_model(tmp_path, record)


def test_records_from_before_the_choice_read_as_the_cnn():
    old = WeekModelRecord.from_json(json.dumps({  # the first layout of week_model's file
        "week": "2025-06-02", "season": "2025", "week_of_season": 5,
        "checkpoint": "cnn2d_checkpoint/k05.pt", "checkpoint_sha256": "ab",
        "accuracy": 0.93, "current_season_accuracy": 0.88, "class_codes": [1],
        "class_names": ["rice"], "knee_week": 6, "preliminary": True}))
    m = model_summary(old)
    assert m.kind == "cnn2d" and m.accuracy == 0.93 and m.week == 5
    tags = crop_cog_tags(WEEK, old, class_legend([1], ["rice"]))
    assert tags["model_kind"] == "cnn2d" and tags["model_accuracy"] == 0.93
    assert MODEL_TITLES == KIND_TITLES  # the tiler side repeats the names
