"""Checkpoints, the served forest, the week-model record and training samples on an
object-store data root (moto on 127.0.0.1): saved, loaded and used like local files."""

from __future__ import annotations

import numpy as np
from conftest import options
from synthetic_series import make_labelled_series

from cropassets.core.objstore import location
from cropassets.core.reference.training_data import load_npz, save_npz_atomic
from cropassets.core.seasons import find_week, load_seasons
from cropassets.core.week_model_record import WeekModelRecord
from cropassets.ml import train
from cropassets.ml.baseline import random_forest_baseline
from cropassets.ml.served import load_served, predict_served, save_served, select_served
from cropassets.ml.tile_predict import load_record_model, model_record
from cropassets.ml.train_config import TrainConfig
from cropassets.settings import load_settings

K = 6


def test_served_model_and_records_round_trip(s3_root, tmp_path):
    d = make_labelled_series(n_classes=3, fields_per_class=4, pixels_per_field=10,
                             n_steps=K, n_features=3, seed=3, noise=0.08)
    y = d.labels + 1
    ckpt = train(d.series, y, d.field_ids, K, class_names=d.class_names, features=d.features,
                 config=TrainConfig(max_steps=2, eval_every=1, batch_size=64, min_steps=1,
                                    refit=False, seed=0))
    rf = random_forest_baseline(d.series, y, d.field_ids, K, split=ckpt.field_split,
                                class_names=d.class_names, features=d.features,
                                n_estimators=10, seed=0).fitted
    rec = select_served(ckpt, rf, d.series, y, d.field_ids)
    root = location(s3_root, options())
    ck_path, f_path = save_served(ckpt, rf, rec, root / "cnn2d_checkpoint" / f"k{K:02d}.pt")
    assert str(ck_path) == f"{s3_root}/cnn2d_checkpoint/k{K:02d}.pt" and f_path.is_file()
    local_ck, _ = save_served(ckpt, rf, rec, tmp_path / "cnn2d_checkpoint" / f"k{K:02d}.pt")
    remote, local = load_served(ck_path), load_served(local_ck)
    assert remote.kind == local.kind
    np.testing.assert_array_equal(predict_served(remote, d.series)[0],
                                  predict_served(local, d.series)[0])

    seasons = load_seasons(load_settings().seasons_file)
    wk = find_week(seasons, seasons[0].week_starts()[K - 1].isoformat())
    record = model_record(wk, remote, root, knee_week=4)
    assert record.checkpoint == f"cnn2d_checkpoint/k{K:02d}.pt"
    path = root / "week_model" / f"{wk.key}.json"
    path.write_bytes(record.to_json().encode())
    again = WeekModelRecord.read(path)
    assert again == record
    assert load_record_model(root, again).kind == remote.kind

    samples = root / "scalograms" / f"{wk.key}.npz"
    save_npz_atomic(samples, labels=y, series=d.series)
    back = load_npz(samples)
    np.testing.assert_array_equal(back["series"], d.series)
