import json
from datetime import date

import pytest

from cropassets.core.seasons import SeasonError, all_weeks, find_week, load_seasons
from cropassets.core.tiles import TileGridError, get_tile, load_tiles
from cropassets.settings import REPO_ROOT


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_repo_tile_grid_and_seasons_load():
    tiles = load_tiles(REPO_ROOT / "config/tiles.json")
    assert list(tiles) == ["T00", "T01", "T10", "T11"]
    t = tiles["T00"]
    assert t.shape == (512, 512)
    assert t.transform.a == 10.0 and t.transform.e == -10.0
    w, s, e, n = t.bbox_wgs84()
    assert 99.5 < w < e < 101 and 14 < s < n < 15  # central Thailand
    seasons = load_seasons(REPO_ROOT / "config/seasons.json")
    assert [s.role for s in seasons] == ["reference", "current"]
    weeks = all_weeks(seasons)
    assert len(weeks) == sum(s.weeks for s in seasons)
    assert all(date.fromisoformat(w.key).weekday() == 0 for w in weeks)


def test_tile_grid_errors_name_the_problem(tmp_path):
    with pytest.raises(TileGridError, match="does not exist"):
        load_tiles(tmp_path / "nope.json")
    bad = _write(tmp_path / "t.json", {"tiles": [{"id": "A", "crs": "EPSG:32647",
                                                  "bounds": [0, 0, 15, 10], "resolution": 10}]})
    with pytest.raises(TileGridError, match="whole number"):
        load_tiles(bad)
    dup = {"id": "A", "crs": "EPSG:32647", "bounds": [0, 0, 10, 10], "resolution": 10}
    with pytest.raises(TileGridError, match="duplicate tile id 'A'"):
        load_tiles(_write(tmp_path / "d.json", {"tiles": [dup, dup]}))
    with pytest.raises(TileGridError, match="not a valid CRS"):
        load_tiles(_write(tmp_path / "c.json", {"tiles": [dup | {"crs": "EPSG:0"}]}))
    tiles = load_tiles(_write(tmp_path / "ok.json", {"tiles": [dup]}))
    with pytest.raises(TileGridError, match=r"unknown tile 'ZZ'.*\['A'\]"):
        get_tile(tiles, "ZZ")


def test_find_week_and_errors(tmp_path):
    seasons = load_seasons(_write(tmp_path / "s.json", {"seasons": [
        {"id": "a", "start": "2024-05-06", "weeks": 3, "role": "reference"},
        {"id": "b", "start": "2025-05-05", "weeks": 2, "role": "current"}]}))
    w = find_week(seasons, "2024-05-20")
    assert (w.season.id, w.week_of_season, w.end.isoformat()) == ("a", 3, "2024-05-27")
    t0, t1 = w.interval_utc()
    assert (t1 - t0).days == 7 and t0.tzinfo is not None
    with pytest.raises(SeasonError, match="'2024-05-27' lies outside every season"):
        find_week(seasons, "2024-05-27")
    with pytest.raises(SeasonError, match="not a week start"):
        find_week(seasons, "2024-05-07")
    with pytest.raises(SeasonError, match="not an ISO date"):
        find_week(seasons, "week-1")
    with pytest.raises(SeasonError, match="seasons start on a Monday"):
        load_seasons(_write(tmp_path / "x.json", {"seasons": [
            {"id": "a", "start": "2024-05-07", "weeks": 3, "role": "reference"}]}))
    with pytest.raises(SeasonError, match="overlap"):
        load_seasons(_write(tmp_path / "o.json", {"seasons": [
            {"id": "a", "start": "2024-05-06", "weeks": 3, "role": "reference"},
            {"id": "b", "start": "2024-05-13", "weeks": 3, "role": "current"}]}))


def test_repo_config_matches_the_default_demo_world(tmp_path):
    """config/ is what `make demo` maps: it must equal the default world's own grid/seasons."""
    from cropassets.world.config import DEFAULT_SEASONS
    from cropassets.world.world_grid import make_layout

    layout = make_layout(size=512, tiles=4)
    world_tiles = _write(tmp_path / "tiles.json",
                         {"tiles": [t.to_dict() for t in layout.tiles]})
    assert load_tiles(world_tiles) == load_tiles(REPO_ROOT / "config/tiles.json")
    world_seasons = _write(tmp_path / "seasons.json",
                           {"seasons": [s.to_dict() for s in DEFAULT_SEASONS]})
    assert load_seasons(world_seasons) == load_seasons(REPO_ROOT / "config/seasons.json")


def test_weeks_to_date_are_weeks_one_to_w_of_the_season():
    from cropassets.core.seasons import Season

    seasons = [Season("2024", date(2024, 5, 6), 6, "reference"),
               Season("2025", date(2025, 5, 5), 6, "current")]
    week = find_week(seasons, "2025-05-19")
    got = week.weeks_to_date()
    assert [w.key for w in got] == ["2025-05-05", "2025-05-12", "2025-05-19"]
    assert got == [w for w in all_weeks([seasons[1]]) if w.week_of_season <= week.week_of_season]
    assert [w.key for w in find_week(seasons, "2024-05-06").weeks_to_date()] == ["2024-05-06"]
