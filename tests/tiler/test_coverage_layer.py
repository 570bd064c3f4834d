"""The coverage layer: clear optical observations and radar per tile and week, served as a
layer with a legend, in the point query, the QGIS style and the STAC items."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tiler_server import http_get

from cropassets.core.cube.coverage import coverage_counts


def test_coverage_counts_add_the_season_and_keep_the_week():
    w1 = np.array([[[1, 0]], [[0, 3]]], dtype=np.uint8)   # (2, 1, 2): s2, s1
    w2 = np.array([[[2, 2]], [[1, 0]]], dtype=np.uint8)
    out = coverage_counts([w1, w2])
    assert out.dtype == np.uint16 and out.shape == (3, 1, 2)
    np.testing.assert_array_equal(out[:, 0], [[3, 2], [2, 2], [1, 0]])
    with pytest.raises(ValueError, match=r"week 2 have shape \(2, 3, 3\)"):
        coverage_counts([w1, np.zeros((2, 3, 3), np.uint8)])
    with pytest.raises(ValueError, match="at least one week"):
        coverage_counts([])


def test_coverage_counts_stream_the_weeks_and_saturate_below_nodata():
    rng = np.random.default_rng(3)
    weeks = [rng.integers(0, 255, (2, 4, 5), dtype=np.uint8) for _ in range(6)]
    read = []

    def one_at_a_time():
        for i, w in enumerate(weeks):
            read.append(i)
            yield w

    out = coverage_counts(one_at_a_time())  # a generator: each week read once, in order
    assert read == list(range(6))
    np.testing.assert_array_equal(out[0], np.sum([w[0].astype(np.int64) for w in weeks], 0))
    np.testing.assert_array_equal(out[1:], weeks[-1])
    full = np.full((2, 1, 1), 255, np.uint8)
    assert coverage_counts([full] * 300)[0, 0, 0] == 65534  # 76,500 clipped below nodata
    with pytest.raises(ValueError, match=r"week 1 have shape \(3, 1, 1\)"):
        coverage_counts(iter([np.zeros((3, 1, 1), np.uint8)]))


def test_point_query_says_why_a_week_is_uncertain(tiler_url, published):
    lon, lat = published.field_point
    rows = http_get(f"{tiler_url}/api/point?lon={lon}&lat={lat}").json()["weeks"]
    code = published.field_class
    assert [r["clear_optical_season"] for r in rows] == [
        i + 1 + code % 3 for i in range(1, len(published.weeks) + 1)]
    assert {r["clear_optical_week"] for r in rows} == {1 + code % 2}
    assert [r["radar_week"] for r in rows] == [0] + [2] * (len(published.weeks) - 1)


def test_coverage_layer_legend_tiles_and_style(tiler_url, published):
    week = published.weeks[0]   # no model yet: coverage is served all the same
    legend = http_get(f"{tiler_url}/api/legend?week={week}").json()["coverage"]
    assert legend["unit"] == "observations" and legend["min"] == 0
    assert legend["max"] == 2 + 2   # week 1: 1 + 1 + code % 3, at most 4
    assert legend["radar"]["summary"] == "all weeks"
    row = http_get(f"{tiler_url}/api/weeks").json()["seasons"][0]["weeks"][0]
    assert row["layers"]["coverage"] is True
    tj = http_get(row["tilejson"]["coverage"]).json()
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(*published.field_point, 14)
    png = http_get(tj["tiles"][0].format(z=t.z, x=t.x, y=t.y))
    assert png.status == 200
    img = np.asarray(Image.open(io.BytesIO(png.body)).convert("RGBA"))
    assert (img[..., 3] > 0).mean() > 0.2   # drawn where the tiles are (they cover part of it)
    qml = http_get(f"{tiler_url}/download/{week}/coverage.qml").body.decode()
    assert 'type="singlebandpseudocolor"' in qml and 'classificationMax="4"' in qml


def test_coverage_in_stac_has_three_bands_and_radar(tiler_url, published):
    tile = published.field_tile
    first, last = published.weeks[0], published.weeks[-1]
    items = {w: http_get(f"{tiler_url}/stac/collections/cropassets-coverage/items/"
                         f"coverage-{tile}-{w}").json() for w in (first, last)}
    bands = items[first]["assets"]["data"]["raster:bands"]
    assert [(b["name"], b["data_type"], b["unit"]) for b in bands] == [
        ("clear_optical_season", "uint16", "observations"),
        ("clear_optical_week", "uint16", "observations"),
        ("radar_week", "uint16", "observations")]
    assert items[first]["properties"]["cropassets:radar_present"] is False
    assert items[last]["properties"]["cropassets:radar_present"] is True
    assert items[first]["assets"]["style-coverage"]["href"].endswith(f"/{tile}/coverage.qml")
