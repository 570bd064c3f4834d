"""Versioned URLs and tile caching over real HTTP: headers, 304, republished weeks, bounds.

The shared tiler (tests/tiler/conftest.py) runs with the default cache; the tests that
republish a week or need cache settings run their own tiler on their own data root.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import morecantile
import pytest
from map_fixtures import PublishedMaps, publish_truth_maps
from tiler_server import http_get, running_tiler

from cropassets.core.publish.manifest_record import WeekManifest
from tiler.http_cache import IMMUTABLE, MAX_IF_NONE_MATCH

TMS = morecantile.tms.get("WebMercatorQuad")


def week_row(base: str, week: str) -> dict:
    weeks = http_get(f"{base}/api/weeks").json()
    return next(w for s in weeks["seasons"] for w in s["weeks"] if w["week"] == week)


def tile_url(template: str, tile: morecantile.Tile) -> str:
    return (template.replace("{z}", str(tile.z)).replace("{x}", str(tile.x))
            .replace("{y}", str(tile.y)))


def field_tile(maps: PublishedMaps, z: int = 14) -> morecantile.Tile:
    return TMS.tile(*maps.field_point, z)


def test_weeks_and_tilejson_hand_out_versioned_urls(tiler_url, published):
    week = published.mapped_weeks[0]
    row = week_row(tiler_url, week)
    version = row["version"]
    assert len(version) == 12 and int(version, 16) >= 0
    prefix = f"{tiler_url}/layers/crop/{week}/v/{version}/"
    assert row["tilejson"]["crop"] == prefix + "WebMercatorQuad/tilejson.json"
    assert row["tiles"]["crop"] == prefix + "tiles/WebMercatorQuad/{z}/{x}/{y}.png"
    for url in (row["tilejson"]["crop"],  # versioned and plain TileJSON: the same template
                f"{tiler_url}/layers/crop/{week}/WebMercatorQuad/tilejson.json"):
        assert http_get(url).json()["tiles"] == [row["tiles"]["crop"]]
    # weeks differ in content, so in version
    assert len({week_row(tiler_url, w)["version"] for w in published.weeks}) == len(
        published.weeks)


def test_versioned_answers_are_immutable_and_plain_ones_revalidate(tiler_url, published):
    week = published.mapped_weeks[0]
    row = week_row(tiler_url, week)
    etag = f'"{row["version"]}"'
    t = field_tile(published)
    versioned = http_get(tile_url(row["tiles"]["crop"], t))
    plain = http_get(f"{tiler_url}/layers/crop/{week}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png")
    assert versioned.status == plain.status == 200
    assert versioned.body == plain.body and versioned.body.startswith(b"\x89PNG")
    assert versioned.headers["cache-control"] == IMMUTABLE
    assert plain.headers["cache-control"] == "no-cache"
    assert versioned.headers["etag"] == plain.headers["etag"] == etag
    assert versioned.headers["content-type"] == "image/png"
    tj = http_get(row["tilejson"]["crop"])
    assert tj.headers["cache-control"] == IMMUTABLE and tj.headers["etag"] == etag
    # an empty tile (outside the data) is as cacheable
    empty = http_get(tile_url(row["tiles"]["crop"], morecantile.Tile(0, 0, 14)))
    assert empty.status == 204 and empty.headers["cache-control"] == IMMUTABLE
    # served again (from the cache): the same bytes and headers
    again = http_get(tile_url(row["tiles"]["crop"], t))
    assert again.body == versioned.body and again.headers["etag"] == etag
    health = http_get(f"{tiler_url}/healthz").json()["tile_cache"]
    assert health["hits"] >= 1 and health["bytes"] <= health["max_bytes"]


@pytest.mark.parametrize("header", ['"{v}"', 'W/"{v}"', '"other", "{v}"', "*"])
def test_matching_if_none_match_is_304(tiler_url, published, header):
    week = published.mapped_weeks[-1]
    row = week_row(tiler_url, week)
    value = header.replace("{v}", row["version"])
    t = field_tile(published)
    for url in (tile_url(row["tiles"]["confidence"], t), row["tilejson"]["sos"],
                f"{tiler_url}/layers/crop/{week}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png",
                f"{tiler_url}/layers/crop/{week}/WebMercatorQuad/tilejson.json"):
        r = http_get(url, headers={"If-None-Match": value})
        assert r.status == 304 and r.body == b"", url
        assert r.headers["etag"] == f'"{row["version"]}"'


@pytest.mark.parametrize("header", [
    '"0000deadbeef"', "no-quotes", '"unterminated', ",,,", "W/", '""', "\t",
    "é".encode().decode("latin-1"), '"x", ' * (MAX_IF_NONE_MATCH // 5),
    "*" + " " * (MAX_IF_NONE_MATCH + 1)])
def test_other_if_none_match_headers_get_the_tile(tiler_url, published, header):
    row = week_row(tiler_url, published.mapped_weeks[-1])
    r = http_get(tile_url(row["tiles"]["crop"], field_tile(published)),
                 headers={"If-None-Match": header})
    assert r.status == 200 and r.body.startswith(b"\x89PNG")


@pytest.mark.parametrize("version", ["000000000000", "latest", "..", "%2e%2e", "A" * 64,
                                     "%2Fetc%2Fpasswd"])
def test_unknown_version_is_404_naming_the_current_one(tiler_url, published, data_root,
                                                       version):
    week = published.mapped_weeks[0]
    current = week_row(tiler_url, week)["version"]
    t = field_tile(published)
    for tail in (f"tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png", "WebMercatorQuad/tilejson.json"):
        r = http_get(f"{tiler_url}/layers/crop/{week}/v/{version}/{tail}")
        assert r.status == 404, (version, tail, r.status)
        detail = r.json()["detail"]
        assert data_root not in detail
        if version in ("000000000000", "latest"):
            assert current in detail and "/api/weeks" in detail


# ---------------------------------------------------------------- own tilers


@pytest.fixture(scope="module")
def own_maps(tmp_path_factory) -> PublishedMaps:
    """A published root of its own, which tests may republish weeks in."""
    world = Path(os.environ["CROPASSETS_WORLD"])
    return publish_truth_maps(world, tmp_path_factory.mktemp("own-maps"))


@pytest.fixture(scope="module")
def disk_tiler(own_maps, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A tiler with a tile folder and a tiny in-process cache (16 kB)."""
    tiles = tmp_path_factory.mktemp("tile-folder")
    with running_tiler(own_maps.root, env={"CROPASSETS_TILE_DIR": str(tiles),
                                           "CROPASSETS_TILE_CACHE_MB": "0.015625"}) as url:
        yield url, tiles


def republish(root: Path, week: str, like: str) -> None:
    """Republish ``week`` with the COGs of week ``like``, as week_layers does: COGs first,
    then the manifest (atomically replaced; its ``published`` time changes)."""
    for product in ("crop_map", "sos_map"):
        for folder in (root / product).iterdir():
            src, dst = folder / f"{like}.tif", folder / f"{week}.tif"
            if src.exists():
                tmp = dst.with_suffix(".tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
    path = root / "week_layers" / f"{week}.json"
    manifest = replace(WeekManifest.read(path), published="2099-01-01T00:00:00Z")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(manifest.to_json())
    os.replace(tmp, path)


def test_republished_week_gets_a_new_version_and_never_a_stale_tile(disk_tiler, own_maps):
    base, _ = disk_tiler
    week, like = own_maps.mapped_weeks[0], own_maps.mapped_weeks[-1]
    t = field_tile(own_maps)
    old = week_row(base, week)
    old_url = tile_url(old["tiles"]["confidence"], t)
    old_tile = http_get(old_url)
    assert old_tile.status == 200 and http_get(old_url).body == old_tile.body  # now cached
    like_tile = http_get(tile_url(week_row(base, like)["tiles"]["confidence"], t)).body
    assert like_tile != old_tile.body  # confidence differs between the weeks

    republish(own_maps.root, week, like)
    new = week_row(base, week)
    assert new["version"] != old["version"]
    gone = http_get(old_url)  # the old URL: 404, never the new tile
    assert gone.status == 404 and new["version"] in gone.json()["detail"]
    assert http_get(old["tilejson"]["confidence"]).status == 404
    fresh = http_get(tile_url(new["tiles"]["confidence"], t))
    assert fresh.status == 200 and fresh.body == like_tile
    assert fresh.headers["etag"] == f'"{new["version"]}"'
    plain = http_get(f"{base}/layers/confidence/{week}/tiles/WebMercatorQuad/"
                     f"{t.z}/{t.x}/{t.y}.png",
                     headers={"If-None-Match": f'"{old["version"]}"'})  # a browser's copy
    assert plain.status == 200 and plain.body == like_tile
    assert http_get(new["tilejson"]["confidence"]).json()["tiles"] == [
        new["tiles"]["confidence"]]


def test_tiles_are_written_to_and_read_from_the_tile_folder(disk_tiler, own_maps):
    base, folder = disk_tiler
    week = own_maps.mapped_weeks[1]
    row = week_row(base, week)
    t = field_tile(own_maps)
    first = http_get(tile_url(row["tiles"]["crop"], t))
    assert first.status == 200
    path = folder / "crop" / week / row["version"] / "256" / str(t.z) / str(t.x) / f"{t.y}.png"
    for _ in range(50):  # written in the background
        if path.exists():
            break
        time.sleep(0.1)
    assert path.read_bytes() == first.body
    empty = http_get(tile_url(row["tiles"]["crop"], morecantile.Tile(0, 0, 14)))
    assert empty.status == 204
    # fill the 16 kB memory cache with other tiles, so the next answer comes from the folder
    marker = first.body + b"from-the-tile-folder"
    path.write_bytes(marker)
    for other in TMS.tiles(*row["bounds"], zooms=[13, 14]):
        for layer in ("confidence", "sos"):
            assert http_get(tile_url(row["tiles"][layer], other)).status in (200, 204)
    health = http_get(f"{base}/healthz").json()["tile_cache"]
    assert health["evictions"] > 0 and health["bytes"] <= health["max_bytes"] == 16384
    assert http_get(tile_url(row["tiles"]["crop"], t)).body == marker


def test_unusable_tile_folder_still_serves_and_says_why(own_maps, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the tile folder should be")
    log: list[str] = []
    with running_tiler(own_maps.root, log=log,
                       env={"CROPASSETS_TILE_DIR": str(blocker / "tiles")}) as base:
        row = week_row(base, own_maps.mapped_weeks[-1])
        for z in (13, 14):
            r = http_get(tile_url(row["tiles"]["crop"], field_tile(own_maps, z)))
            assert r.status == 200 and r.body.startswith(b"\x89PNG")
        r = http_get(tile_url(row["tiles"]["crop"], field_tile(own_maps, 14)))
        assert r.status == 200
    text = "".join(log)
    assert "is not usable" in text and "cannot write to the tile folder" in text
    assert "Traceback" not in text
