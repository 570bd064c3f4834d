"""init-region: a UTM tile grid over a bounding box and the seasons, written safely."""

from __future__ import annotations

from datetime import date

import pytest
from rasterio.warp import transform_bounds

from cropassets.cli import main
from cropassets.core.region import (
    RegionError,
    SeasonSpec,
    parse_season,
    tile_grid,
    utm_epsg,
    write_region,
)
from cropassets.core.seasons import load_seasons
from cropassets.core.tiles import load_tiles

BBOX = (5.0, 45.0, 5.3, 45.2)  # Rhone valley, UTM 31N
SEASONS = [SeasonSpec("2024", date(2024, 4, 1), 30, "reference"),
           SeasonSpec("2025", date(2025, 3, 31), 30, "current")]


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (5.0, 45.0, 32631), (-122.4, 37.8, 32610), (151.2, -33.9, 32756), (179.99, 10, 32660),
    (-180.0, 10, 32601), (100.5, 14.6, 32647)])
def test_utm_zone_of_a_point(lon, lat, epsg):
    assert utm_epsg(lon, lat) == epsg


def test_grid_covers_the_box_with_aligned_10m_tiles():
    tiles = tile_grid(BBOX, tile_size=10240, resolution=10)
    assert {t["crs"] for t in tiles} == {"EPSG:32631"}
    x0, y0, x1, y1 = transform_bounds("EPSG:4326", "EPSG:32631", *BBOX, densify_pts=21)
    minx = min(t["bounds"][0] for t in tiles)
    miny = min(t["bounds"][1] for t in tiles)
    maxx = max(t["bounds"][2] for t in tiles)
    maxy = max(t["bounds"][3] for t in tiles)
    assert minx <= x0 and miny <= y0 and maxx >= x1 and maxy >= y1
    # no tile beyond what the box needs, every tile aligned on the 10240 m lattice
    assert minx > x0 - 10240 and maxx < x1 + 10240
    for t in tiles:
        b = t["bounds"]
        assert b[0] % 10240 == 0 and b[1] % 10240 == 0
        assert (b[2] - b[0], b[3] - b[1]) == (10240, 10240)
        assert t["id"] == f"E{int(b[0])}N{int(b[1])}"
    assert len({t["id"] for t in tiles}) == len(tiles) == 12


def test_written_region_loads_in_the_code_locations_loaders(tmp_path):
    tiles_path, seasons_path = write_region(tmp_path, tile_grid(BBOX), SEASONS)
    grid = load_tiles(tiles_path)
    assert len(grid) == 12 and all(t.shape == (1024, 1024) for t in grid.values())
    seasons = load_seasons(seasons_path)
    assert [(s.id, s.role, s.weeks) for s in seasons] == [
        ("2024", "reference", 30), ("2025", "current", 30)]


def test_existing_files_are_kept_unless_forced_then_backed_up(tmp_path):
    write_region(tmp_path, tile_grid(BBOX), SEASONS)
    before = (tmp_path / "tiles.json").read_bytes()
    with pytest.raises(RegionError, match="--force"):
        write_region(tmp_path, tile_grid((5.0, 45.0, 5.1, 45.1)), SEASONS)
    assert (tmp_path / "tiles.json").read_bytes() == before
    write_region(tmp_path, tile_grid((5.0, 45.0, 5.1, 45.1)), SEASONS, force=True)
    backups = list(tmp_path.glob("tiles.json.*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == before
    assert len(load_tiles(tmp_path / "tiles.json")) < 12


def test_a_region_that_does_not_load_replaces_nothing(tmp_path):
    write_region(tmp_path, tile_grid(BBOX), SEASONS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    overlapping = [SeasonSpec("a", date(2024, 4, 1), 30, "reference"),
                   SeasonSpec("b", date(2024, 5, 6), 30, "current")]
    with pytest.raises(RegionError, match="overlap"):
        write_region(tmp_path, tile_grid(BBOX), overlapping, force=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(("bbox", "message"), [
    ((5.9, 45.0, 6.1, 45.2), r"UTM zones \[31, 32\]"),
    ((30.0, -0.5, 30.5, 0.5), "both hemispheres"),
    ((5.3, 45.0, 5.0, 45.2), "W < E"),
    ((5.0, 85.0, 5.3, 86.0), "latitudes"),
])
def test_bad_boxes_are_refused_by_name(bbox, message):
    with pytest.raises(RegionError, match=message):
        tile_grid(bbox)


def test_too_many_tiles_or_a_tile_size_off_the_pixel_grid_are_refused():
    with pytest.raises(RegionError, match="max_tiles=400"):
        tile_grid((0.5, 40.0, 5.5, 45.0), tile_size=5120)
    with pytest.raises(RegionError, match="whole number of 10"):
        tile_grid(BBOX, tile_size=10245)


@pytest.mark.parametrize(("text", "message"), [
    ("2024:2024-04-02:30:reference", "Tuesday"),
    ("2024:2024-04-01:30", "ID:START:WEEKS:ROLE"),
    ("2024:2024-04-01:0:reference", "WEEKS >= 1"),
    ("2024:2024-04-01:30:training", "ROLE one of"),
    ("2024:April:30:reference", "ISO date"),
])
def test_bad_seasons_are_refused_by_name(text, message):
    with pytest.raises(RegionError, match=message):
        parse_season(text)


def test_cli_writes_the_region_and_reports_errors(tmp_path, capsys):
    args = ["init-region", "--bbox", *map(str, BBOX), "--season",
            "2024:2024-04-01:30:reference", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    assert "12 tiles of 1024x1024 px" in capsys.readouterr().out
    assert len(load_tiles(tmp_path / "tiles.json")) == 12
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
