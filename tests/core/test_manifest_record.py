"""The week manifest's typed record: the writer's bytes unchanged, round trip, old files,
refusals naming the file."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

import cropassets.core.publish.week_layers as week_layers
from cropassets.core.cube.coverage import coverage_counts, write_coverage_cog
from cropassets.core.legend import class_legend
from cropassets.core.publish.cog import write_cog
from cropassets.core.publish.crop_products import write_crop_cog
from cropassets.core.publish.manifest_record import (
    ManifestLayers,
    ManifestRadar,
    WeekManifest,
)
from cropassets.core.seasons import Season, all_weeks
from cropassets.core.tiles import TileSpec
from cropassets.core.week_model_record import WeekModelRecord

RECORDS = Path(__file__).parent / "records"
V1 = RECORDS / "week_manifest_v1.json"
"""Written by write_week_layer before the typed record existed (commit c438e63), for the
inputs of :func:`_publish_example`."""
LEGACY = RECORDS / "week_manifest_legacy.json"
"""The first manifest layout (no radar, incomplete weeks, regions, styles, coverage; the
model entry from before the served-model choice)."""

SEASON = Season("2025", date(2025, 5, 5), 6, "current")
WEEK = all_weeks([SEASON])[2]
LEGEND = class_legend([1, 2], ["rice", "maize"])
TILES = {
    "T00": TileSpec("T00", "EPSG:32647", (620000.0, 1618720.0, 621280.0, 1620000.0), 10.0),
    "T01": TileSpec("T01", "EPSG:32647", (621280.0, 1618720.0, 622560.0, 1620000.0), 10.0),
    "T02": TileSpec("T02", "EPSG:32648", (166000.0, 1618720.0, 167280.0, 1620000.0), 10.0),
}


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)


def _publish_example(root: Path, monkeypatch) -> WeekManifest:
    """Every optional part: T01 alone has a crop map (so its row comes first), T02 lies on
    another UTM zone (no SOS region VRT) and has no coverage; the forest served the week."""
    monkeypatch.setattr(week_layers, "datetime", _FixedClock)
    files = {}
    for i, (tid, tile) in enumerate(TILES.items()):
        cls = np.full((128, 128), i % 2 + 1, np.uint8)
        row: dict[str, Path | None] = {"crop": None, "sos": None, "coverage": None}
        if tid == "T01":
            row["crop"] = root / "crop_map" / tid / f"{WEEK.key}.tif"
            write_crop_cog(row["crop"], cls, cls * 40, tile.crs, tile.transform, LEGEND, {})
        row["sos"] = root / "sos_map" / tid / f"{WEEK.key}.tif"
        write_cog(row["sos"], np.full((128, 128), 150 + i, np.uint16), tile.crs,
                  tile.transform, 0)
        if tid != "T02":
            row["coverage"] = root / "coverage_map" / tid / f"{WEEK.key}.tif"
            counts = coverage_counts([np.stack([np.full((128, 128), 1 + i),
                                                np.full((128, 128), 2)]).astype(np.uint8)] * 3)
            write_coverage_cog(row["coverage"], counts, tile.crs, tile.transform)
        files[tid] = row
    record = WeekModelRecord.read(RECORDS / "week_model_v1.json")
    return week_layers.write_week_layer(
        root, WEEK, files, {t: s.bbox_wgs84() for t, s in TILES.items()}, LEGEND, 4,
        week_layers.model_summary(record), reason="",
        radar=ManifestRadar(summary="missing in 1 of 3 weeks",
                            weeks_without_radar=["2025-05-05"]),
        incomplete_weeks=["2025-05-12", "2025-05-05", "2025-05-12"],
        missing={"coverage": "coverage_map not materialized: T02",
                 "crop": "crop_map not materialized: T00, T02"})


def test_the_writer_writes_the_bytes_it_wrote_before_the_record(tmp_path, monkeypatch):
    manifest = _publish_example(tmp_path, monkeypatch)
    written = week_layers.manifest_path(tmp_path, WEEK.key).read_bytes()
    assert written == V1.read_bytes()
    assert manifest.to_json().encode() == written
    assert list(manifest.tiles) == ["T01", "T00", "T02"]  # the order written, not sorted
    assert manifest.regions_missing["sos"].startswith("tile T02 is on EPSG:32648")


def test_the_record_round_trips_byte_for_byte():
    text = V1.read_text()
    manifest = WeekManifest.from_json(text, source=str(V1))
    assert manifest.to_json() == text
    assert WeekManifest.from_json(manifest.to_json()) == manifest
    assert WeekManifest.read(V1) == manifest
    assert manifest.format_version == 1 and "format_version" not in json.loads(text)
    # typed access to what readers use
    assert manifest.week == "2025-05-19" and manifest.week_of_season == 3
    assert manifest.preliminary is True and manifest.knee_week == 4
    assert manifest.has_layer("crop") and manifest.has_layer("coverage")
    assert not manifest.has_layer("nonsense")
    assert manifest.tiles["T01"].file("crop") == "crop_map/T01/2025-05-19.tif"
    assert manifest.tiles["T00"].file("crop") is None
    assert manifest.tiles["T00"].file("bounds") is None  # not a product
    assert manifest.model is not None and manifest.model.kind == "random_forest"
    assert manifest.model.forest_sha256 == "cd" * 32
    assert manifest.radar == ManifestRadar(summary="missing in 1 of 3 weeks",
                                           weeks_without_radar=["2025-05-05"])
    assert manifest.classes == LEGEND
    # optional parts: written only when set
    bare = replace(manifest, layers_missing={}, regions_missing={}, model=replace(
        manifest.model, forest_sha256=None), radar=None)
    d = json.loads(bare.to_json())
    assert "layers_missing" not in d and "regions_missing" not in d
    assert "forest_sha256" not in d["model"] and d["radar"] is None
    assert WeekManifest.from_json(bare.to_json()) == bare


def test_a_manifest_of_the_first_layout_reads_with_the_later_parts_empty():
    text = LEGACY.read_text()
    old = WeekManifest.from_json(text)
    assert old.format_version == 1
    assert old.radar is None and old.incomplete_weeks == [] and old.coverage_range is None
    assert old.regions == {} and old.styles == {} and old.layers_missing == {}
    assert not old.has_layer("coverage") and old.has_layer("crop")
    assert old.tiles["T01"].coverage is None and old.tiles["T01"].crop is not None
    model = old.model
    assert model is not None  # before the served-model choice: the CNN2D's
    assert (model.kind, model.served_kind, model.title) == (None, "cnn2d", None)
    assert model.accuracy == 0.9 and model.forest_sha256 is None
    # the tiler serves layers and model as the file has them: kept as read
    d = json.loads(text)
    again = json.loads(old.to_json())
    assert again["layers"] == d["layers"] and again["model"] == d["model"]
    assert again["tiles"] == d["tiles"] and list(again["model"]) == list(d["model"])
    assert WeekManifest.from_json(old.to_json()) == old
    assert old.layers == ManifestLayers(crop=True, confidence=True, sos=True, coverage=None)


def _edited(edit) -> str:
    d = json.loads(V1.read_text())
    edit(d)
    return json.dumps(d)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=2), r"format version 2; this library reads version 1"),
    (lambda d: d.update(format_version="1"), r"format version '1'"),
    (lambda d: d.pop("week_of_season"), r"lacks field\(s\) \['week_of_season'\] in the "
                                        "manifest"),
    (lambda d: d.update(colour="red"), r"unknown field\(s\) \['colour'\] in the manifest"),
    (lambda d: d["model"].pop("checkpoint_sha256"), r"lacks .*checkpoint_sha256.* model entry"),
    (lambda d: d["model"].pop("title"), r"lacks field\(s\) \['title'\] in the model entry"),
    (lambda d: d["model"].pop("kind"), r"unknown field\(s\) \['title', 'val_accuracy', .*"
                                       "without kind"),
    (lambda d: d["layers"].update(ndvi=True), r"unknown field\(s\) \['ndvi'\] in the layers"),
    (lambda d: d["tiles"]["T00"].pop("bounds"), r"lacks field\(s\) \['bounds'\] in tile T00"),
    (lambda d: d["tiles"]["T00"].update(ndvi="x.tif"), r"unknown .*'ndvi'.* in tile T00"),
    (lambda d: d["radar"].pop("summary"), r"lacks .*'summary'.* in the radar entry"),
    (lambda d: d["classes"][0].pop("color"), r"lacks .*'color'.* class of the legend"),
    (lambda d: d.update(tiles=[]), r"does not hold the week manifest layout"),
])
def test_bad_manifests_are_refused_naming_the_file(edit, message):
    source = "data/week_layers/2025-05-19.json"
    with pytest.raises(ValueError, match=message) as err:
        WeekManifest.from_json(_edited(edit), source=source)
    assert source in str(err.value)


def test_not_json_or_not_an_object_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "2025-05-19.json"
    path.write_text("{")
    with pytest.raises(ValueError, match=f"{path} is not JSON"):
        WeekManifest.read(path)
    path.write_text("[]")
    with pytest.raises(ValueError, match=f"{path} is not a week manifest"):
        WeekManifest.read(path)
    with pytest.raises(FileNotFoundError):
        WeekManifest.read(tmp_path / "2025-05-26.json")
