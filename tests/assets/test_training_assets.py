"""scalograms -> cnn2d_checkpoint[k] -> knee_report through Dagster on the test world."""

import json
from datetime import timedelta

import numpy as np
import pytest
import rasterio
from dagster import DagsterInstance, materialize

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.maps import coverage_map, crop_map, week_layers, week_model
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_map
from cropassets.assets.training import cnn2d_checkpoint, knee_report, scalograms
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.reference.training_data import load_npz
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.served import load_served
from cropassets.partitions import (
    SEASONS,
    TILES,
    WEEK_TO_SEQUENCE,
    sequence_partitions,
    week_partitions,
)
from cropassets.resources import DataRoot, build_resources

pytestmark = pytest.mark.slow  # trains four CNNs on the test world (about 1-2 min)

ALL = [raw_scenes, weekly_cube, scalograms, cnn2d_checkpoint, knee_report,
       sos_map, coverage_map, week_model, crop_map, week_layers]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    resources = build_resources() | {"data_root": DataRoot(root=str(root))}
    with DagsterInstance.local_temp(str(tmp_path_factory.mktemp("home"))) as instance:
        def go(assets, key=None):
            r = materialize(ALL, selection=assets, partition_key=key, instance=instance,
                            resources=resources)
            assert r.success
            return r

        maps = {}
        for season in SEASONS:
            for w in season.week_starts():
                for tile in TILES:
                    go([raw_scenes, weekly_cube], f"{tile}|{w.isoformat()}")
                maps[("scalograms", w.isoformat())] = go([scalograms], w.isoformat())
        results = {k: go([cnn2d_checkpoint], k) for k in ("03", "04", "05", "06")}
        knee = go([knee_report])
        current = next(s for s in SEASONS if s.role == "current")
        for w in current.week_starts():
            wk = w.isoformat()
            maps[("week_model", wk)] = go([week_model], wk)
            for tile in TILES:
                go([sos_map, coverage_map], f"{tile}|{wk}")
                maps[("crop_map", tile, wk)] = go([crop_map], f"{tile}|{wk}")
            maps[("week_layers", wk)] = go([week_layers], wk)
        yield root, results, knee, maps


def test_week_partitions_map_to_their_week_of_season():
    for season in SEASONS:
        for i, w in enumerate(season.week_starts(), 1):
            mapped = WEEK_TO_SEQUENCE.get_downstream_partitions_for_partitions(
                week_partitions.subset_with_partition_keys([w.isoformat()]), week_partitions,
                sequence_partitions).get_partition_keys()
            assert list(mapped) == ([f"{i:02d}"] if i >= 3 else [])  # no model for weeks 1-2


def test_samples_are_labelled_per_field(trained):
    root, _, _, _ = trained
    week = SEASONS[0].week_starts()[3].isoformat()
    s = load_npz(root / "scalograms" / f"{week}.npz")
    assert s["series"].shape[1:] == (5, 4) and s["series"].dtype == np.float32
    assert len(s["labels"]) == len(s["field_ids"]) == len(s["series"])
    # one class per field
    for f in np.unique(s["field_ids"]):
        assert len(np.unique(s["labels"][s["field_ids"] == f])) == 1
    assert str(s["role"]) == "reference"


def test_checkpoint_contents_and_current_season_metrics(trained):
    root, results, _, _ = trained
    ckpt = Checkpoint.load(DataRoot(root=str(root)).checkpoint_path("06"))
    assert ckpt.n_steps == 6 and list(ckpt.features) == ["ndvi", "lswi", "vv", "vh", "vh_vv"]
    assert len(ckpt.scales) > 0 and ckpt.class_names
    for key in ("overall_accuracy", "macro_f1", "per_class_f1", "confusion"):
        assert key in ckpt.metrics
    assert "current_season" in ckpt.metrics and "baseline_rf" in ckpt.metrics
    assert set(ckpt.split["train"]).isdisjoint(ckpt.split["val"])
    # both models kept beside each other; the record says which one maps week k
    served = ckpt.metrics["served"]
    assert served["model"] in ("cnn2d", "random_forest", "combination")
    assert served["cnn2d_val_accuracy"] == ckpt.metrics["overall_accuracy"]
    assert served["random_forest_val_accuracy"] == ckpt.metrics["baseline_rf"]["overall_accuracy"]
    assert served["val_accuracy"] == max(v for k, v in served.items()
                                         if k.endswith("_val_accuracy") and v is not None)
    folder = root / "cnn2d_checkpoint"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"k{k}{ext}" for k in ("03", "04", "05", "06") for ext in (".pt", ".rf.joblib")]
    assert load_served(folder / "k06.pt").kind == served["model"]
    md = results["06"].asset_materializations_for_node("cnn2d_checkpoint")[0].metadata
    assert 0 <= md["overall_accuracy"].value <= 1
    assert md["served_model"].value == served["model"]
    # rice floods early: even 6 weeks beat chance among 7 classes clearly
    assert md["overall_accuracy"].value > 0.4


def test_knee_report_written(trained):
    root, _, knee, _ = trained
    md = knee.asset_materializations_for_node("knee_report")[0].metadata
    assert 3 <= md["knee_week"].value <= 6
    report = json.loads((root / "knee_report" / "knee.json").read_text())
    assert report["lengths_weeks"] == [3, 4, 5, 6]
    assert "statement" in report
    assert [r["k"] for r in report["served"]] == [3, 4, 5, 6]
    for r in report["served"]:
        assert r["model"] in ("cnn2d", "random_forest", "combination")
        assert r["val_accuracy"] >= max(r["cnn2d_val_accuracy"], r["random_forest_val_accuracy"])
    assert (root / "knee_report" / "knee.png").read_bytes()[:4] == b"\x89PNG"


def test_samples_path_layout(tmp_path):
    assert DataRoot(root=str(tmp_path)).samples_path("2024-05-06").name == "2024-05-06.npz"


def test_maps_follow_the_knee_and_skip_weeks_without_model(trained):
    root, _, knee, maps = trained
    knee_week = knee.asset_materializations_for_node("knee_report")[0].metadata["knee_week"].value
    current = next(s for s in SEASONS if s.role == "current")
    for i, w in enumerate(current.week_starts(), 1):
        wk = w.isoformat()
        mats = maps[("week_model", wk)].asset_materializations_for_node("week_model")
        manifest = WeekManifest.read(root / "week_layers" / f"{wk}.json")
        assert manifest.knee_week == knee_week
        assert manifest.preliminary is (i < knee_week)
        for tile in TILES:
            cog = root / "crop_map" / tile / f"{wk}.tif"
            run = maps[("crop_map", tile, wk)]
            if i < 3:  # no model: nothing materialized, no map, the week listed unavailable
                assert not mats and not cog.exists()
                assert not run.asset_materializations_for_node("crop_map")
                continue
            assert mats and cog.exists()
            with rasterio.open(cog) as src:
                tags = src.tags()
                cls = src.read(1)
            assert tags["preliminary"] == str(i < knee_week).lower()
            # the map says which model made it, as the week's record and manifest do
            record = DataRoot(root=str(root)).week_model_record(wk)
            assert record is not None and record.week_of_season == i
            served = Checkpoint.load(root / record.checkpoint).metrics["served"]
            assert tags["model_kind"] == record.model_kind == served["model"]
            assert manifest.model is not None and manifest.model.kind == served["model"]
            assert float(tags["model_accuracy"]) == round(served["val_accuracy"], 4)
            assert tags["model_week"] == str(i) and tags["season"] == current.id
            # which weeks behind the map had no radar, from raw_scenes' own records
            assert tags["radar"] in ("all weeks", "no week") or tags["radar"].startswith(
                "missing in ")
            no_radar = json.loads(tags["weeks_without_radar"])
            assert set(no_radar) <= {d.isoformat() for d in current.week_starts()[:i]}
            assert tags["last_observation_date"] == (w + timedelta(days=6)).isoformat()
            assert set(np.unique(cls).tolist()) <= {1, 2, 3, 4, 5, 6, 7, 255}
            md = run.asset_materializations_for_node("crop_map")[0].metadata
            # held-back current-season labels: far above chance (1/7) by week 6
            if i == len(current.week_starts()):
                assert md["accuracy_vs_labels"].value > 0.5
            assert abs(sum(v["percent"] for v in md["class_areas"].value.values()) - 100) < 0.1
        assert manifest.layers.crop is (i >= 3)
        assert manifest.radar is not None
        assert manifest.radar.summary != "unknown"  # raw_scenes recorded every week
        assert set(manifest.radar.weeks_without_radar) <= {
            d.isoformat() for d in current.week_starts()[:i]}
        assert manifest.layers.sos is True
        if i < 3:
            assert "no model" in manifest.reason


def test_checks_and_ui_metadata_of_training_and_maps(trained):
    """Accuracy floors follow the knee, the knee is found, map checks pass or skip."""
    from urllib.parse import parse_qs, urlparse

    from dagster import AssetCheckSeverity

    from cropassets.partitions import MAX_WEEKS

    root, results, knee, maps = trained
    for k, run in results.items():
        (e,) = run.get_asset_check_evaluations()
        assert e.check_name == "accuracy_floor" and e.partition == k
        # trained before knee_report existed: only the full-season model is held to the floors
        assert e.severity == (AssetCheckSeverity.ERROR if int(k) == MAX_WEEKS
                              else AssetCheckSeverity.WARN)
        md = run.asset_materializations_for_node("cnn2d_checkpoint")[0].metadata
        # the floors hold for the served model (the one that makes the maps)
        assert e.metadata["validation_accuracy"].value == md["served_overall_accuracy"].value
        assert md["confusion_matrices"].value.startswith("![confusion matrices](data:image/png")
        assert md["seconds"].value >= md["fit_seconds"].value
    (e,) = knee.get_asset_check_evaluations()
    assert e.check_name == "knee_found" and e.passed
    assert e.metadata["trained_weeks"].value == [3, 4, 5, 6]
    week = SEASONS[0].week_starts()[3].isoformat()
    sample = maps[("scalograms", week)]
    (e,) = sample.get_asset_check_evaluations()
    assert e.check_name == "class_coverage" and e.partition == week
    assert sum(e.metadata["samples_per_class"].value.values()) == e.metadata["samples"].value
    assert sample.asset_materializations_for_node("scalograms")[0].metadata[
        "ndvi_profiles"].value.startswith("![NDVI per class](data:image/png")
    current = next(s for s in SEASONS if s.role == "current")
    for i, w in enumerate(current.week_starts(), 1):
        wk = w.isoformat()
        (model_check,) = maps[("week_model", wk)].get_asset_check_evaluations()
        assert model_check.passed and model_check.partition == wk
        for tile in TILES:
            run = maps[("crop_map", tile, wk)]
            checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
            assert set(checks) == {"cog_valid", "class_values"}
            assert all(e.passed and e.partition == f"{tile}|{wk}" for e in checks.values())
            if i < 3:  # no model: nothing written, the checks say why they had nothing to do
                assert checks["cog_valid"].metadata["skipped"].value is True
                continue
            assert checks["cog_valid"].metadata["dtypes"].value == ["uint8", "uint8"]
            link = run.asset_materializations_for_node("crop_map")[0].metadata["map"].value
            assert parse_qs(urlparse(link).fragment) == {
                "season": [current.id], "week": [wk], "layer": ["crop"]}
        layers = maps[("week_layers", wk)]
        (e,) = layers.get_asset_check_evaluations()
        assert e.check_name == "published_cogs_valid" and e.passed
        assert e.metadata["sos_files"].value == len(TILES)
        assert e.metadata["crop_files"].value == (len(TILES) if i >= 3 else 0)
        assert e.metadata["coverage_files"].value == len(TILES)  # every week, model or not
        md = layers.asset_materializations_for_node("week_layers")[0].metadata
        assert ("map_crop" in md) is (i >= 3) and "map_sos" in md and "map_coverage" in md


def test_a_current_season_without_labels_is_the_normal_case(trained, tmp_path):
    """No labels for the current season: scalograms, week layers (weeks without a model
    too) and crop maps all materialize; accuracy metadata is simply absent. With labels
    (the module's fixture) the same assets add it."""
    import shutil

    from cropassets.resources.reference_labels import ReferenceLabels
    from cropassets.settings import load_settings

    root, _, _, maps = trained
    current = next(s for s in SEASONS if s.role == "current")
    labels_dir = tmp_path / "labels"
    shutil.copytree(load_settings().world_dir / "labels", labels_dir)
    (labels_dir / f"{current.id}.geojson").unlink()
    data = tmp_path / "data"
    shutil.copytree(root, data)
    resources = build_resources() | {
        "data_root": DataRoot(root=str(data)),
        "reference_labels": ReferenceLabels(labels_dir=str(labels_dir))}
    weeks = [w.isoformat() for w in current.week_starts()]
    with DagsterInstance.ephemeral() as instance:
        def go(assets, key):
            r = materialize(ALL, selection=assets, partition_key=key, instance=instance,
                            resources=resources)
            assert r.success
            return r

        last = weeks[-1]
        assert DataRoot(root=str(data)).samples_path(last).exists()  # from the fixture
        md = go([scalograms], last).asset_materializations_for_node("scalograms")[0].metadata
        assert md["samples"].value == 0 and "none for season" in md["labels"].value
        assert md["removed_stale_samples"].value is True
        assert not DataRoot(root=str(data)).samples_path(last).exists()
        go([week_layers], weeks[0])  # week 1: no model, legend from the reference labels
        manifest = WeekManifest.read(data / "week_layers" / f"{weeks[0]}.json")
        assert manifest.layers.crop is False and "no model" in manifest.reason
        tile = next(iter(TILES))
        without = go([crop_map], f"{tile}|{last}").asset_materializations_for_node(
            "crop_map")[0].metadata
        assert "accuracy_vs_labels" not in without
        with_labels = maps[("crop_map", tile, last)].asset_materializations_for_node(
            "crop_map")[0].metadata
        assert "accuracy_vs_labels" in with_labels
        # training, the knee and the week model without any current-season sample
        for w in weeks:
            go([scalograms], w)
        assert not any(DataRoot(root=str(data)).samples_path(w).exists() for w in weeks)
        md = go([cnn2d_checkpoint], "03").asset_materializations_for_node(
            "cnn2d_checkpoint")[0].metadata
        assert np.isnan(md["current_season_accuracy"].value)
        assert np.isnan(md["served_current_season_accuracy"].value)
        assert md["served_overall_accuracy"].value > 0.3
        go([knee_report], None)
        go([week_model], weeks[2])
        record = json.loads((data / "week_model" / f"{weeks[2]}.json").read_text())
        assert record["current_season_accuracy"] is None
        # a reference season without labels is an error naming the file expected
        ref = next(s for s in SEASONS if s.role == "reference")
        (labels_dir / f"{ref.id}.geojson").unlink()
        r = materialize(ALL, selection=[scalograms], partition_key=ref.week_starts()[0]
                        .isoformat(), instance=instance, resources=resources,
                        raise_on_error=False)
        assert not r.success
        err = str(r.all_events[-1].event_specific_data) + "".join(
            str(e.event_specific_data) for e in r.all_events if e.is_failure)
        assert f"{ref.id}.geojson" in err and "reference seasons need labels" in err
