"""The library API on 16-day composites, 23 steps, 3 features: no demo configuration."""

from __future__ import annotations

import json

import numpy as np

from cropassets.ml import find_knee, incremental_analysis, plot, predict
from cropassets.ml.train_config import TrainConfig


def test_train_predict_knee_on_16_day_series(modis, tmp_path):
    ref, cur = modis
    logs: list[str] = []
    report = incremental_analysis(
        ref.series, ref.labels, ref.field_ids, lengths=[4, 8, 12, 16, 20, 23],
        test=(cur.series, cur.labels, cur.field_ids), time_step_days=16,
        config=TrainConfig(max_steps=300, eval_every=25, batch_size=64, seed=0), rf_estimators=50,
        keep_checkpoints=True, log=logs.append,
    )
    assert report.lengths == [4, 8, 12, 16, 20, 23]
    cnn = report.curve("cnn")
    assert cnn[-1] >= 0.9 and report.curve("cnn_test")[-1] >= 0.85
    assert cnn[0] < cnn[-1] - 0.2  # accuracy rises with length
    kn = report.knee
    assert kn.length_steps < 23 and kn.accuracy >= kn.max_accuracy - 0.02
    assert kn.length_days == kn.length_steps * 16
    assert kn.rule in {"kneed", "kneed+tolerance", "tolerance"}
    assert report.knee_baseline is not None
    assert any("baseline" in s for s in report.statements)
    assert any(line.startswith("k=23 step") for line in logs)
    # JSON and plot
    d = json.loads(report.to_json(tmp_path / "knee.json"))
    assert d["knee"]["length_steps"] == kn.length_steps
    assert (tmp_path / "knee.json").exists()
    png = plot(report, tmp_path / "knee.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 150_000
    # predict with the knee's checkpoint on the other season
    ck = report.checkpoints[kn.length_steps] if kn.length_steps in report.checkpoints else (
        report.checkpoints[23])
    cls, conf = predict(ck, cur.series)
    assert (cls[:3] == -1).all() and (cls[3:] >= 0).all()
    assert cls.shape == conf.shape == (len(cur.labels),)
    # find_knee straight on the reported curve gives the same answer
    assert find_knee(report.lengths, cnn, time_step_days=16).length_steps == kn.length_steps
    assert np.isfinite(report.curve("rf_test")).all()
