import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from cropassets.world.config import CLASSES, WorldConfig
from cropassets.world.generate import generate_world, is_complete
from cropassets.world.world_grid import make_layout


def test_tiles_and_seasons_files(world, params):
    SIZE = params["size"]
    tiles = json.loads((world / "tiles.json").read_text())["tiles"]
    assert [t["id"] for t in tiles] == ["T00", "T01"]
    t0, t1 = tiles
    assert t0["crs"] == "EPSG:32647" and t0["resolution"] == 10.0
    assert t0["bounds"] == [620000.0, 1620000.0 - SIZE * 10, 620000.0 + SIZE * 10, 1620000.0]
    assert t1["bounds"][0] == t0["bounds"][2]
    seasons = json.loads((world / "seasons.json").read_text())["seasons"]
    assert seasons == [
        {"id": "2024", "start": "2024-05-06", "weeks": 28, "role": "reference"},
        {"id": "2025", "start": "2025-05-05", "weeks": 28, "role": "current"},
    ]


def test_tile_grid_layout():
    lay = make_layout(64, 4)
    assert [t.id for t in lay.tiles] == ["T00", "T01", "T10", "T11"]
    lay3 = make_layout(64, 3)
    assert [t.id for t in lay3.tiles] == ["T00", "T01", "T10"]
    assert lay3.region.shape == (128, 128)


def test_manifest(world, params):
    m = json.loads((world / "world.json").read_text())
    assert (m["seed"], m["size"], m["tiles"]) == (params["seed"], params["size"],
                                                      params["tiles"])
    assert m["complete"] is True
    assert [c["code"] for c in m["classes"]] == list(range(1, 8))
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in m["classes"])
    assert [c["name"] for c in m["classes"]] == [c.name for c in CLASSES]
    assert m["counts"]["items"]["sentinel-2-l2a"] > 70
    assert m["counts"]["items"]["sentinel-1-rtc"] > 60


def test_field_rasters(world, model, params):
    SIZE = params["size"]
    fid_all = []
    for tile in model.layout.tiles:
        path = world / "labels" / "fields" / f"{tile.id}.tif"
        assert cog_validate(path, quiet=True)[0]
        with rasterio.open(path) as src:
            assert src.dtypes[0] == "uint32"
            assert src.crs.to_epsg() == 32647
            assert src.transform == tile.grid.transform
            a = src.read(1)
        assert a.shape == (SIZE, SIZE)
        assert (a >= 1).all(), "every pixel belongs to a parcel"
        rows, cols = model.layout.tile_window(tile)
        np.testing.assert_array_equal(a, model.parcels.fid[rows, cols])
        fid_all.append(a)
    ids = np.unique(np.concatenate([a.ravel() for a in fid_all]))
    labels = json.loads((world / "labels" / "2024.geojson").read_text())
    assert set(ids.tolist()) == {f["properties"]["field_id"] for f in labels["features"]}


def test_field_sizes_and_cover_mix(model):
    p = model.parcels
    area_ha = p.area_px[1:] / 100.0
    crop = p.kind[1:] == 0
    assert 0.5 <= np.median(area_ha[crop]) <= 5.0
    assert np.quantile(area_ha[crop], 0.95) <= 5.5
    noncrop_share = area_ha[~crop].sum() / area_ha.sum()
    assert 0.1 <= noncrop_share <= 0.3


def test_idempotent(world, params):
    SEED, SIZE, TILES = params["seed"], params["size"], params["tiles"]
    manifest = world / "world.json"
    before = manifest.stat().st_mtime_ns
    calls = []
    generate_world(world, seed=SEED, size=SIZE, tiles=TILES,
                   progress=lambda d, t, m: calls.append(m))
    assert manifest.stat().st_mtime_ns == before
    assert len(calls) == 1 and "up to date" in calls[0]
    assert is_complete(world, WorldConfig(seed=SEED, size=SIZE, tiles=TILES))
    assert not is_complete(world, WorldConfig(seed=SEED + 1, size=SIZE, tiles=TILES))


def test_partial_world_is_not_complete(tmp_path):
    seasons = [{"id": "s", "start": "2024-07-01", "weeks": 1, "role": "reference"}]
    out = generate_world(tmp_path / "w", seed=1, size=32, tiles=1, seasons=seasons)
    cfg = WorldConfig(seed=1, size=32, tiles=1,
                      seasons=(json_season(seasons[0]),))
    assert is_complete(out, cfg)
    (out / "world.json").unlink()  # as if interrupted before the manifest
    assert not is_complete(out, cfg)
    generate_world(out, seed=1, size=32, tiles=1, seasons=seasons)
    assert is_complete(out, cfg)


def json_season(d):
    from cropassets.world.config import Season

    return Season(d["id"], dt.date.fromisoformat(d["start"]), d["weeks"], d["role"])


def test_bad_parameters():
    with pytest.raises(ValueError, match="even number of pixels"):
        WorldConfig(size=101)
    with pytest.raises(ValueError, match="even number of pixels"):
        WorldConfig(size=30)
    with pytest.raises(ValueError, match="Monday"):
        json_season({"id": "x", "start": "2024-05-07", "weeks": 3, "role": "reference"})


def test_regenerates_when_parameters_change(tmp_path):
    one = [{"id": "a", "start": "2024-07-01", "weeks": 1, "role": "reference"}]
    other = [{"id": "b", "start": "2024-09-02", "weeks": 1, "role": "reference"}]
    out = generate_world(tmp_path / "w", seed=1, size=32, tiles=1, seasons=one)
    old = {p.name for p in (out / "scenes" / "sentinel-2-l2a").iterdir()}
    generate_world(out, seed=1, size=32, tiles=1, seasons=other)
    new = {p.name for p in (out / "scenes" / "sentinel-2-l2a").iterdir()}
    assert old and new and not old & new  # no stale scenes left behind
    assert json.loads((out / "world.json").read_text())["seasons"][0]["id"] == "b"
    assert not (out / "labels" / "a.geojson").exists()
