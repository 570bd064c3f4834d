"""Week layers: manifest contents, MosaicJSON readable by cogeo-mosaic, refusals."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from cogeo_mosaic.backends import MosaicBackend

from cropassets.core.legend import class_legend
from cropassets.core.publish.cog import write_cog
from cropassets.core.publish.crop_products import write_crop_cog
from cropassets.core.publish.manifest_record import ManifestModel, ManifestRadar, WeekManifest
from cropassets.core.publish.week_layers import manifest_path, write_week_layer
from cropassets.core.seasons import Season, all_weeks
from cropassets.core.tiles import TileSpec

SEASON = Season("2025", date(2025, 5, 5), 6, "current")
LEGEND = class_legend([1, 2], ["rice", "maize"])
TILES = {
    "T00": TileSpec("T00", "EPSG:32647", (620000.0, 1618720.0, 621280.0, 1620000.0), 10.0),
    "T01": TileSpec("T01", "EPSG:32647", (621280.0, 1618720.0, 622560.0, 1620000.0), 10.0),
}


def _model(week):
    return ManifestModel(week=week.week_of_season, kind="cnn2d", title="CNN2D", accuracy=0.9,
                         val_accuracy=0.9, current_season_accuracy=None,
                         cnn2d_val_accuracy=0.9, random_forest_val_accuracy=0.8,
                         checkpoint_sha256="ab" * 32)


def _published(root):
    """Manifests of every published week, in week order."""
    return [WeekManifest.read(p) for p in sorted((root / "week_layers").glob("*.json"))]


def _publish(root, week, with_crop=True):
    files = {}
    for i, (tid, tile) in enumerate(TILES.items()):
        crop = root / "crop_map" / tid / f"{week.key}.tif"
        sos = root / "sos_map" / tid / f"{week.key}.tif"
        cls = np.full((128, 128), i + 1, np.uint8)
        if with_crop:
            write_crop_cog(crop, cls, cls * 40, tile.crs, tile.transform, LEGEND, {})
        write_cog(sos, np.full((128, 128), 150, np.uint16), tile.crs, tile.transform, 0)
        files[tid] = {"crop": crop if with_crop else None, "sos": sos}
    return write_week_layer(root, week, files, {t: s.bbox_wgs84() for t, s in TILES.items()},
                            LEGEND, knee_week=4,
                            model=_model(week) if with_crop else None,
                            reason="" if with_crop else "no model before week 3")


def test_manifest_and_mosaic(tmp_path):
    weeks = all_weeks([SEASON])
    man = _publish(tmp_path, weeks[2])
    assert man.week == "2025-05-19" and man.week_of_season == 3
    assert man.last_observation_date == "2025-05-25"
    assert man.preliminary is True and man.knee_week == 4
    assert man.layers.to_dict() == {"crop": True, "confidence": True, "sos": True,
                                    "coverage": False}
    assert man.tiles["T01"].crop == "crop_map/T01/2025-05-19.tif"  # relative to root
    assert man.classes[0].to_dict() == {"code": 1, "name": "rice", "color": "#1b9e77"}
    assert man.bounds is not None and man.maxzoom is not None and man.minzoom is not None
    w, s, e, n = man.bounds
    assert 100.0 < w < e < 100.2 and 14.5 < s < n < 14.7
    assert man.maxzoom - man.minzoom == 6
    assert man.sos_range == [125, 167]
    assert WeekManifest.read(manifest_path(tmp_path, "2025-05-19")) == man
    # the MosaicJSON is a standard one: cogeo-mosaic finds the right COG at a point
    mosaic = tmp_path / man.mosaics["crop"]
    lon, lat = TILES["T01"].bbox_wgs84()[0] + 0.005, 14.645
    with MosaicBackend(str(mosaic)) as src:
        assets = src.assets_for_point(lon, lat)
    assert "T01" in [a.split("/")[-2] for a in assets]  # (quadkey granularity)
    # nothing left behind but the final files
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_week_without_model_lists_crop_unavailable(tmp_path):
    weeks = all_weeks([SEASON])
    man = _publish(tmp_path, weeks[0], with_crop=False)
    assert man.layers.to_dict() == {"crop": False, "confidence": False, "sos": True,
                                    "coverage": False}
    assert man.reason == "no model before week 3" and man.model is None
    assert "crop" not in man.mosaics
    _publish(tmp_path, weeks[4])
    assert [m.week for m in _published(tmp_path)] == ["2025-05-05", "2025-06-02"]
    assert _published(tmp_path)[1].preliminary is False  # week 5 >= knee 4


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="not a week key"):
        manifest_path(tmp_path, "../etc")
    with pytest.raises(FileNotFoundError):
        WeekManifest.read(manifest_path(tmp_path, "2025-05-05"))
    week = all_weeks([SEASON])[2]
    outside = tmp_path.parent / "elsewhere.tif"
    with pytest.raises(ValueError, match="outside the data root"):
        write_week_layer(tmp_path / "root", week, {"T00": {"crop": outside, "sos": None}},
                         {"T00": (0, 0, 1, 1)}, LEGEND, 4, None)
    with pytest.raises(FileNotFoundError, match="has not been written"):
        write_week_layer(tmp_path, week, {"T00": {"crop": tmp_path / "x.tif", "sos": None}},
                         {"T00": (0, 0, 1, 1)}, LEGEND, 4, None)
    assert not manifest_path(tmp_path, week.key).exists()


def test_republish_replaces_manifest_whole(tmp_path):
    week = all_weeks([SEASON])[3]
    _publish(tmp_path, week, with_crop=False)
    _publish(tmp_path, week)
    man = WeekManifest.read(manifest_path(tmp_path, week.key))
    assert man.layers.crop is True and man.reason == ""


def test_radar_summary_over_tiles_counts_a_week_without_radar_on_any_tile():
    from cropassets.core.publish.week_layers import radar_summary

    on, off = "loaded", "none: no sentinel-1-rtc scene this week"
    got = radar_summary({"T00": {"w1": on, "w2": off, "w3": None},
                         "T01": {"w1": off, "w2": on, "w3": None}})
    assert got == ManifestRadar(summary="no week", weeks_without_radar=["w1", "w2"])
    got = radar_summary({"T00": {"w1": on, "w2": on}, "T01": {"w1": on, "w2": off}})
    assert got == ManifestRadar(summary="missing in 1 of 2 weeks", weeks_without_radar=["w2"])
    assert radar_summary({"T00": {"w1": None}}).summary == "unknown"
