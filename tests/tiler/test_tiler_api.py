"""The tiler's HTTP API over real HTTP: weeks, TileJSON, tiles, point query, downloads."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import morecantile
import numpy as np
import pytest
from PIL import Image
from tiler_server import http_get

from cropassets.core.legend import hex_to_rgba
from cropassets.core.publish.manifest_record import WeekManifest

TMS = morecantile.tms.get("WebMercatorQuad")
NATIVE_ZOOM = 14  # 10 m pixels; the manifests' maxzoom


def tile_at(lon: float, lat: float, z: int) -> tuple[morecantile.Tile, int, int]:
    """The z tile holding (lon, lat) and the point's row, col in its 256 px image."""
    tile = TMS.tile(lon, lat, z)
    b = TMS.xy_bounds(tile)
    x, y = TMS.xy(lon, lat)
    return tile, int((b.top - y) / (b.top - b.bottom) * 256), int((x - b.left) /
                                                                   (b.right - b.left) * 256)


def tile_rgba(base: str, layer: str, week: str, tile: morecantile.Tile) -> np.ndarray:
    r = http_get(f"{base}/layers/{layer}/{week}/tiles/WebMercatorQuad/"
                 f"{tile.z}/{tile.x}/{tile.y}.png")
    assert r.status == 200, r.body[:300]
    assert r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.body))
    assert img.size == (256, 256) and img.mode == "RGBA"
    return np.asarray(img)


@pytest.fixture(scope="module")
def weeks(tiler_url):
    r = http_get(f"{tiler_url}/api/weeks")
    assert r.status == 200
    return r.json()


@pytest.fixture(scope="module")
def legend(tiler_url):
    return {c["code"]: c for c in http_get(f"{tiler_url}/api/legend").json()["crop"]}


def test_weeks_lists_the_season_with_availability_and_knee(weeks, published, tiler_url):
    assert [s["id"] for s in weeks["seasons"]] == ["2025"]
    season = weeks["seasons"][0]
    assert season["role"] == "current" and season["start"] == "2025-05-05"
    rows = season["weeks"]
    assert [w["week"] for w in rows] == published.weeks
    assert [w["week_of_season"] for w in rows] == [1, 2, 3, 4, 5, 6]
    assert weeks["knee_week"] == 4 and season["knee_week"] == 4
    # the manifests' radar record reaches the page (the last week: one week without)
    assert rows[-1]["radar"] == {"summary": "missing in 1 of 6 weeks",
                                 "weeks_without_radar": [published.weeks[0]]}
    assert all(w["radar"]["summary"] == "all weeks" for w in rows[:-1])
    for w in rows[:2]:
        assert w["available"] is False and "week 3" in w["reason"]
        assert w["layers"] == {"crop": False, "confidence": False, "sos": True,
                               "coverage": True}
        assert set(w["tilejson"]) == {"sos", "coverage"} and w["model_accuracy"] is None
    for w in rows[2:]:
        assert w["available"] is True and w["reason"] == "" and w["model_accuracy"] == 0.9
        assert set(w["tilejson"]) == {"crop", "confidence", "sos", "coverage"}
        assert w["tilejson"]["crop"] == (f"{tiler_url}/layers/crop/{w['week']}"
                                         f"/v/{w['version']}/WebMercatorQuad/tilejson.json")
        assert w["downloads"][published.field_tile]["crop"] == (
            f"{tiler_url}/download/{w['week']}/{published.field_tile}/crop.tif")
    assert [w["preliminary"] for w in rows] == [True, True, True, False, False, False]
    # which model made each week's map: legacy manifests (no kind) were the CNN2D's
    assert [w["model_kind"] for w in rows] == [None, None] + ["cnn2d"] * 3 + ["random_forest"]
    assert rows[-1]["model"]["title"] == "random forest"
    assert weeks["latest_available_week"] == published.mapped_weeks[-1]
    w, s, e, n = weeks["bounds"]
    lon, lat = published.field_point
    assert w < lon < e and s < lat < n


@pytest.mark.parametrize("layer", ["crop", "confidence", "sos", "coverage"])
def test_tilejson_template_bounds_and_zooms(tiler_url, weeks, published, layer):
    week = published.mapped_weeks[0]
    row = next(w for w in weeks["seasons"][0]["weeks"] if w["week"] == week)
    r = http_get(row["tilejson"][layer])
    assert r.status == 200
    tj = r.json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == [f"{tiler_url}/layers/{layer}/{week}/v/{row['version']}/tiles/"
                           "WebMercatorQuad/{z}/{x}/{y}.png"]
    assert tj["tiles"][0] == row["tiles"][layer]
    assert tj["maxzoom"] == row["maxzoom"] == NATIVE_ZOOM
    # the manifest's minzoom: the COGs' 4 overviews (128 px -> 8 px) reach zoom 10 and the
    # tiler serves down to 3 levels below the coarsest overview, so the manifest's 8 holds
    assert (row["minzoom"], tj["minzoom"]) == (8, 8)
    assert tj["bounds"] == pytest.approx(row["bounds"], abs=1e-6)


def test_crop_tile_shows_the_true_class_colour(tiler_url, published, legend):
    lon, lat = published.field_point
    tile, row, col = tile_at(lon, lat, NATIVE_ZOOM)
    want = hex_to_rgba(legend[published.field_class]["color"])
    for week in published.mapped_weeks:
        rgba = tile_rgba(tiler_url, "crop", week, tile)
        assert tuple(rgba[row, col]) == want, week
        colours = {tuple(c) for c in rgba.reshape(-1, 4) if c[3]}
        assert colours <= {hex_to_rgba(c["color"]) for c in legend.values()}
    # the tile reaches west of the data: nodata there is transparent
    west = http_get(f"{tiler_url}/api/weeks").json()["bounds"][0]
    t2, r2, c2 = tile_at(west - 0.001, lat, NATIVE_ZOOM)
    assert t2 == tile and rgba[r2, c2, 3] == 0


def test_confidence_tile_depends_on_week(tiler_url, published):
    lon, lat = published.field_point
    tile, row, col = tile_at(lon, lat, NATIVE_ZOOM)
    a, b = (tile_rgba(tiler_url, "confidence", w, tile) for w in published.mapped_weeks[:2])
    assert a[row, col, 3] == b[row, col, 3] == 255
    assert tuple(a[row, col]) != tuple(b[row, col])


def test_sos_tile_renders_in_weeks_without_crop(tiler_url, published):
    lon, lat = published.field_point
    tile, row, col = tile_at(lon, lat, NATIVE_ZOOM)
    rgba = tile_rgba(tiler_url, "sos", published.weeks[0], tile)
    assert (rgba[row, col, 3] == 255) == (published.field_class <= 4)
    assert (rgba[..., 3] == 255).sum() > 1000


def test_tile_outside_the_data_is_empty_not_an_error(tiler_url, published):
    r = http_get(f"{tiler_url}/layers/crop/{published.mapped_weeks[0]}/tiles/WebMercatorQuad/"
                 f"{NATIVE_ZOOM}/0/0.png")
    assert r.status == 204 and r.body == b""


def test_zoomed_out_tiles_down_to_the_tilejson_minzoom(tiler_url, published):
    lon, lat = published.field_point
    week = published.mapped_weeks[0]
    tj = http_get(f"{tiler_url}/layers/crop/{week}/WebMercatorQuad/tilejson.json").json()
    tile, _, _ = tile_at(lon, lat, tj["minzoom"])
    rgba = tile_rgba(tiler_url, "crop", week, tile)
    assert 0 < (rgba[..., 3] == 255).sum() < 256 * 256
    for z in (tj["minzoom"] - 1, 0):  # below: empty at once, nothing is read
        t, _, _ = tile_at(lon, lat, z)
        r = http_get(f"{tiler_url}/layers/crop/{week}/tiles/WebMercatorQuad/{z}/{t.x}/{t.y}.png")
        assert r.status == 204, z


def test_point_query_per_week(tiler_url, published, legend):
    lon, lat = published.field_point
    r = http_get(f"{tiler_url}/api/point?lon={lon}&lat={lat}")
    assert r.status == 200, r.body
    rows = r.json()["weeks"]
    assert [w["week"] for w in rows] == published.weeks
    cls = published.field_class
    sos = 140 + 5 * cls if cls <= 4 else None
    for i, w in enumerate(rows, start=1):
        assert w["tile"] == published.field_tile and w["sos_doy"] == sos
        assert w["sos_date"] == (str(date(2025, 1, 1) + timedelta(days=sos - 1)) if sos else None)
        if i < 3:
            assert w["available"] is False
            assert w["class_code"] is None and w["class_name"] is None and w["confidence"] is None
        else:
            assert w["class_code"] == cls and w["class_name"] == legend[cls]["name"]
            assert w["confidence"] == min(100, 40 + 10 * i)
            assert w["preliminary"] is (i < 4)
    one = http_get(f"{tiler_url}/api/point?lon={lon}&lat={lat}&week={published.weeks[3]}")
    assert [w["week"] for w in one.json()["weeks"]] == [published.weeks[3]]


def test_point_outside_every_tile_is_404(tiler_url):
    r = http_get(f"{tiler_url}/api/point?lon=10&lat=10")
    assert r.status == 404 and "outside every published tile" in r.json()["detail"]


def test_legend_lists_classes_and_ramps(tiler_url, published):
    d = http_get(f"{tiler_url}/api/legend").json()
    assert d["crop"][0] == {"code": 1, "name": "rice", "color": "#1b9e77"}
    assert (d["confidence"]["min"], d["confidence"]["max"]) == (0, 100)
    assert d["sos"]["min"] == 125 and len(d["sos"]["stops"]) == 11


@pytest.mark.parametrize("product", ["crop", "sos"])
def test_download_is_the_published_cog(tiler_url, published, product):
    week, tile = published.mapped_weeks[0], published.field_tile
    r = http_get(f"{tiler_url}/download/{week}/{tile}/{product}.tif")
    assert r.status == 200 and r.headers["content-type"].startswith("image/tiff")
    folder = "crop_map" if product == "crop" else "sos_map"
    assert r.body == (published.root / folder / tile / f"{week}.tif").read_bytes()


def test_cors_allows_other_pages_to_read_tiles(tiler_url, published):
    r = http_get(f"{tiler_url}/api/weeks", headers={"Origin": "http://x.test"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_new_week_appears_without_restart(tiler_url, published):
    folder = Path(published.root) / "week_layers"
    last = WeekManifest.read(folder / f"{published.weeks[-1]}.json")
    new = replace(last, week="2025-06-16", week_of_season=7,
                  last_observation_date="2025-06-22")
    path = folder / "2025-06-16.json"
    tmp = folder / ".2025-06-16.json.tmp"
    tmp.write_text(new.to_json())
    os.replace(tmp, path)
    try:
        rows = http_get(f"{tiler_url}/api/weeks").json()["seasons"][0]["weeks"]
        assert rows[-1]["week"] == "2025-06-16" and rows[-1]["available"]
        lon, lat = published.field_point
        tile, _, _ = tile_at(lon, lat, NATIVE_ZOOM)
        tile_rgba(tiler_url, "crop", "2025-06-16", tile)
    finally:
        path.unlink()
    rows = http_get(f"{tiler_url}/api/weeks").json()["seasons"][0]["weeks"]
    assert [w["week"] for w in rows] == published.weeks
    r = http_get(f"{tiler_url}/layers/crop/2025-06-16/WebMercatorQuad/tilejson.json")
    assert r.status == 404


def test_manifests_of_the_first_layout_are_served_and_newer_versions_refused(
        tiler_url, published, data_root):
    """A week published by the first release (no radar, coverage, regions, styles; the
    model entry without kind) is served as before; a manifest of a newer format version is
    left out of /api/weeks, and its week answers 500 without a path."""
    folder = Path(published.root) / "week_layers"
    last = WeekManifest.read(folder / f"{published.weeks[-1]}.json")
    old = last.to_dict()
    old["model"] = {k: old["model"][k] for k in ("week", "accuracy", "current_season_accuracy",
                                                 "checkpoint_sha256")}
    old["layers"].pop("coverage")
    for key in ("radar", "incomplete_weeks", "regions", "styles", "coverage_range"):
        old.pop(key)
    old["mosaics"].pop("coverage")
    for row in old["tiles"].values():
        row.pop("coverage")
    legacy, newer = folder / "2031-03-03.json", folder / "2031-03-10.json"
    legacy.write_text(json.dumps({**old, "week": "2031-03-03"}, indent=1))
    newer.write_text(json.dumps({"format_version": 2, **last.to_dict(), "week": "2031-03-10"}))
    try:
        seasons = http_get(f"{tiler_url}/api/weeks").json()["seasons"]
        rows = {w["week"]: w for s in seasons for w in s["weeks"]}
        assert "2031-03-10" not in rows
        row = rows["2031-03-03"]
        assert row["model_kind"] == "cnn2d" and row["model"] == old["model"]
        assert row["model_accuracy"] == 0.9 and row["radar"] is None
        assert row["layers"] == {"crop": True, "confidence": True, "sos": True}
        assert set(row["tilejson"]) == {"crop", "confidence", "sos"} and row["regions"] == {}
        assert http_get(row["tilejson"]["crop"]).status == 200
        r = http_get(f"{tiler_url}/layers/coverage/2031-03-03/WebMercatorQuad/tilejson.json")
        assert r.status == 404 and "has no coverage layer" in r.json()["detail"]
        for url in ("/layers/crop/2031-03-10/WebMercatorQuad/tilejson.json",
                    f"/download/2031-03-10/{published.field_tile}/crop.tif",
                    "/api/legend?week=2031-03-10"):
            r = http_get(tiler_url + url)
            assert r.status == 500 and data_root.encode() not in r.body, (url, r.status)
            assert "cannot be read by this server" in r.json()["detail"]
    finally:
        legacy.unlink()
        newer.unlink()


def test_sos_date_is_in_the_season_year_or_the_next():
    from tiler.api import sos_date

    assert sos_date("2025-05-05", 145) == "2025-05-25"
    assert sos_date("2025-11-03", 320) == "2025-11-16"
    assert sos_date("2025-11-03", 20) == "2026-01-20"   # doy wrapped past the year end
    assert sos_date("2025-05-05", None) is None


def test_error_text_is_scrubbed_of_paths(data_root):
    from tiler.errors import scrub

    text = scrub(f"{data_root}/crop_map/T00/2025-05-19.tif: not recognized; "
                 "'/etc/shadow.json' and week_layers/x.mosaic.json", Path(data_root))
    assert data_root not in text and ".tif" not in text and ".json" not in text
    assert "2025-05-19" not in text and "not recognized" in text
