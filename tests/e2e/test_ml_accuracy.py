"""End to end (slow): world -> STAC API -> cubes -> labelled series -> CNN2D per length.

Checks the pipeline's numbers on a reduced demo world (2 tiles of 256², both 28-week seasons):
full-season accuracy on held-out reference fields and on the current season's labels, and
a knee well before the season's end.
"""

import numpy as np
import pytest

from cropassets.core.cube.composite import weekly_composite
from cropassets.core.reference.sampling import load_field_labels, rasterize_fields, sample_pixels
from cropassets.core.seasons import SeasonWeek, load_seasons
from cropassets.core.stac.catalog_profiles import DEMO
from cropassets.core.stac.scenes import load_week
from cropassets.core.stac.search import search_items
from cropassets.core.stac.server import serve
from cropassets.core.tiles import load_tiles
from cropassets.ml import incremental_analysis
from cropassets.ml.train_config import TrainConfig
from cropassets.world.generate import generate_world

pytestmark = pytest.mark.slow
LENGTHS = [6, 10, 14, 17, 20, 24, 28]


def _season_samples(server_url, world, tiles, season, per_field, seed):
    labels = load_field_labels(world / "labels" / f"{season.id}.geojson")
    xs, ys, fs = [], [], []
    for i, tile in enumerate(tiles.values()):
        fields = rasterize_fields(world / "labels" / f"{season.id}.geojson", tile)
        pix, fids = sample_pixels(fields, labels, per_field, 1500, seed + i)
        weeks = []
        for week_start in season.week_starts():
            start, end = SeasonWeek(season, 0, week_start).interval_utc()
            s2 = search_items(server_url, [DEMO.s2_collection], tile.bbox_wgs84(), start, end,
                              max_cloud_cover=90)
            s1 = search_items(server_url, [DEMO.s1_collection], tile.bbox_wgs84(), start, end)
            raw, _ = load_week(s2, s1, tile, DEMO)
            cube = weekly_composite(raw)
            weeks.append(cube["features"].values.reshape(cube.sizes["feature"], -1)[:, pix])
        xs.append(np.stack(weeks, axis=-1).transpose(1, 0, 2))
        ys.append(np.array([labels.class_of_field[int(f)] for f in fids]))
        fs.append(fids)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.concatenate(fs)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    world = tmp_path_factory.mktemp("ml-world")
    generate_world(world, seed=42, size=256, tiles=2)
    tiles = load_tiles(world / "tiles.json")
    ref, cur = load_seasons(world / "seasons.json")
    with serve(world / "stac") as server:
        x_ref, y_ref, f_ref = _season_samples(server.url, world, tiles, ref, 12, 0)
        x_cur, y_cur, f_cur = _season_samples(server.url, world, tiles, cur, 6, 1)
    # a shorter step budget than the library default (1500): this checks the pipeline's
    # numbers on the synthetic world in CI time; real-data accuracy is bench_real_series'
    return incremental_analysis(x_ref, y_ref, f_ref, LENGTHS, test=(x_cur, y_cur, f_cur),
                                features=["ndvi", "lswi", "vv", "vh", "vh_vv"],
                                config=TrainConfig(max_steps=500, min_steps=200,
                                                   patience_steps=200, seed=0),
                                rf_estimators=100)


def test_full_season_accuracy_floors(report):
    rows = {r.n_steps: r for r in report.results}
    last = rows[28]
    print("per length (val, current):",
          {k: (round(r.cnn["overall_accuracy"], 3), round(r.cnn_test["overall_accuracy"], 3))
           for k, r in rows.items()})
    # world v2 is not trivially separable (7-9 % wrong crop labels, varieties, intercropping):
    # measured 0.90-0.92 / 0.87-0.89 (validation / current season) at the library default
    assert 0.85 <= last.cnn["overall_accuracy"] <= 0.97
    assert last.cnn_test["overall_accuracy"] >= 0.80


def test_knee_well_before_the_end_and_within_two_points(report):
    knee = report.knee
    assert knee.length_steps <= 24
    assert knee.accuracy >= knee.full_accuracy - 0.02
    # an early map is genuinely harder than a late one
    rows = {r.n_steps: r for r in report.results}
    assert rows[6].cnn["overall_accuracy"] < rows[28].cnn["overall_accuracy"] - 0.08
