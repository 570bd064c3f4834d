"""A region from scratch: init-region, then import-labels from a GeoPackage, then the
labels burn onto the region's tiles where the parcels are."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from cropassets.cli import main
from cropassets.core.reference.sampling import load_field_labels, rasterize_fields
from cropassets.core.tiles import load_tiles

BBOX = (5.0, 45.0, 5.1, 45.1)


def _parcels(path, tile, offset_m: float = 0.0) -> list[tuple[int, str]]:
    """Three 200 m squares inside ``tile`` (its UTM CRS), written as a GeoPackage."""
    x0, y0 = tile.bounds[0] + 1000 + offset_m, tile.bounds[1] + 1000
    squares = [shapely.box(x0 + i * 400, y0, x0 + i * 400 + 200, y0 + 200) for i in range(3)]
    rows = [(101, "MAIS"), (102, "BLE"), (103, "MAIS")]
    import geopandas as gpd

    gpd.GeoDataFrame({"parcel": [r[0] for r in rows], "culture": [r[1] for r in rows]},
                     geometry=squares, crs=tile.crs).to_file(path, driver="GPKG")
    return rows


@pytest.fixture
def region(tmp_path, monkeypatch):
    assert main(["init-region", "--bbox", *map(str, BBOX), "--season",
                 "2024:2024-04-01:30:reference", "--out-dir", str(tmp_path / "config")]) == 0
    monkeypatch.setenv("CROPASSETS_TILES", str(tmp_path / "config/tiles.json"))
    monkeypatch.setenv("CROPASSETS_SEASONS", str(tmp_path / "config/seasons.json"))
    monkeypatch.setenv("CROPASSETS_LABELS", str(tmp_path / "labels"))
    tiles = load_tiles(tmp_path / "config/tiles.json")
    return tmp_path, next(iter(tiles.values()))


def test_import_then_burn_onto_the_tile(region, capsys):
    root, tile = region
    gpkg = root / "parcels.gpkg"
    _parcels(gpkg, tile)
    cmap = root / "classes.json"
    cmap.write_text(json.dumps({"MAIS": {"code": 1, "name": "maize"},
                                "BLE": {"code": 2, "name": "wheat"}}))
    assert main(["import-labels", str(gpkg), "--season", "2024", "--id-column", "parcel",
                 "--class-column", "culture", "--class-map", str(cmap)]) == 0
    out = capsys.readouterr().out
    assert "3 parcels, 2 classes" in out and "maize: 2" in out
    labels_file = root / "labels/2024.geojson"
    labels = load_field_labels(labels_file)
    assert labels.class_of_field == {101: 1, 102: 2, 103: 1}
    assert labels.class_names == {1: "maize", 2: "wheat"}
    fields = rasterize_fields(labels_file, tile)
    # each 200 m square burns 20 x 20 pixels of 10 m at its own place on the tile
    for i, fid in enumerate((101, 102, 103)):
        rows, cols = np.nonzero(fields == fid)
        assert len(rows) == 400
        assert cols.min() == 100 + 40 * i and rows.max() == tile.height - 101
    # the lon/lat written are those pyproj gives for the UTM corners
    to_ll = Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(tile.bounds[0] + 1000, tile.bounds[1] + 1000)
    feat = json.loads(labels_file.read_text())["features"][0]
    ring = np.asarray(feat["geometry"]["coordinates"][0])
    assert np.abs(ring - [lon, lat]).sum(axis=1).min() < 1e-9


def test_bad_inputs_name_what_is_wrong_and_keep_what_was_written(region, capsys):
    root, tile = region
    gpkg = root / "parcels.gpkg"
    _parcels(gpkg, tile)
    args = ["import-labels", str(gpkg), "--id-column", "parcel", "--class-column", "culture"]
    assert main([*args, "--season", "2024"]) == 0
    written = (root / "labels/2024.geojson").read_bytes()
    capsys.readouterr()
    assert main([*args, "--season", "2031"]) == 2
    assert "season '2031' is not in" in capsys.readouterr().err
    assert main(["import-labels", str(gpkg), "--season", "2024", "--id-column", "parcel",
                 "--class-column", "crop"]) == 2
    err = capsys.readouterr().err
    assert "crop" in err and "culture" in err  # the missing column and those there are
    far = root / "far.gpkg"
    _parcels(far, tile, offset_m=500_000)  # 500 km east: in no tile
    assert main(["import-labels", str(far), "--season", "2024", "--id-column", "parcel",
                 "--class-column", "culture"]) == 2
    assert "labels in no tile" in capsys.readouterr().err
    assert (root / "labels/2024.geojson").read_bytes() == written
