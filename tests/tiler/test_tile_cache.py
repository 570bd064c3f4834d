"""The tile caches on their own: LRU bound and eviction, the tile folder, request parsing."""

from __future__ import annotations

import errno
import logging
import os
import random
import threading
from pathlib import Path

import pytest

from tiler.http_cache import MAX_IF_NONE_MATCH, etag_matches, parse_request
from tiler.tile_cache import ENTRY_OVERHEAD, DiskTiles, MemoryTiles, Tile, TileKey


def key(i: int, version: str = "abc123abc123") -> TileKey:
    return TileKey("crop", "2025-05-19", version, 14, i, 7)


def png(n: int) -> Tile:
    return Tile(200, bytes([n % 256]) * n)


def test_lru_never_exceeds_its_bound():
    cache = MemoryTiles(10_000)
    rng = random.Random(0)
    for _ in range(2_000):
        cache.put(key(rng.randrange(300)), png(rng.randrange(1, 3_000)))
        assert cache.nbytes <= cache.max_bytes
        assert cache.nbytes == sum(t.size for t in cache._entries.values())
    assert cache.evictions > 0


def test_lru_evicts_the_least_recently_used():
    cache = MemoryTiles(3 * (100 + ENTRY_OVERHEAD))
    for i in range(3):
        cache.put(key(i), png(100))
    assert cache.get(key(0)) is not None  # 0 is now the most recent: 1 goes first
    cache.put(key(3), png(100))
    assert cache.get(key(1)) is None
    assert [cache.get(key(i)) is not None for i in (0, 2, 3)] == [True, True, True]
    assert len(cache) == 3 and cache.stats()["evictions"] == 1


def test_lru_refuses_a_tile_larger_than_the_bound_and_replaces_a_key():
    cache = MemoryTiles(1_000)
    assert not cache.put(key(0), png(1_000))
    assert len(cache) == 0 and cache.nbytes == 0
    assert cache.put(key(1), png(10)) and cache.put(key(1), png(20))
    assert len(cache) == 1 and cache.nbytes == 20 + ENTRY_OVERHEAD
    assert MemoryTiles(0).put(key(2), Tile(204)) is False


def test_lru_bound_holds_under_concurrent_use():
    cache = MemoryTiles(50_000)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2_000):
            k = key(rng.randrange(500))
            if rng.random() < 0.5:
                cache.put(k, png(rng.randrange(1, 2_000)))
            else:
                cache.get(k)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.nbytes <= cache.max_bytes
    assert cache.nbytes == sum(t.size for t in cache._entries.values())


def test_tile_folder_round_trip_and_empty_tiles(tmp_path):
    disk = DiskTiles(tmp_path / "tiles")
    assert disk.get(key(1)) is None
    assert disk.put(key(1), Tile(200, b"\x89PNG..."))
    assert disk.get(key(1)) == Tile(200, b"\x89PNG...")
    assert disk.path(key(1)) == (tmp_path / "tiles" / "crop" / "2025-05-19" / "abc123abc123"
                                 / "256" / "14" / "1" / "7.png")
    assert disk.put(key(2), Tile(204)) and disk.get(key(2)) == Tile(204)
    assert not [p for p in (tmp_path / "tiles").rglob(".*")], "temporary files left behind"


def test_tile_folder_drops_superseded_versions_of_a_week(tmp_path):
    disk = DiskTiles(tmp_path)
    disk.put(key(1, "old000000000"), png(10))
    other_week = TileKey("crop", "2025-05-26", "old000000000", 14, 1, 7)
    disk.put(other_week, png(10))
    disk.put(key(1, "new000000000"), png(11))
    assert not (tmp_path / "crop" / "2025-05-19" / "old000000000").exists()
    assert disk.get(key(1, "new000000000")) == png(11)
    assert disk.get(other_week) == png(10)


def test_unwritable_tile_folder_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="tiler.tile_cache"):
        disk = DiskTiles(blocker / "tiles")
        assert not disk.put(key(1), png(10))
        assert disk.get(key(1)) is None
    text = caplog.text
    assert "is not usable" in text and "cannot write to the tile folder" in text


def test_full_tile_folder_is_logged_once_a_minute(tmp_path, caplog, monkeypatch):
    disk = DiskTiles(tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("tiler.tile_cache.os.replace", full)
    with caplog.at_level(logging.WARNING, logger="tiler.tile_cache"):
        assert not disk.put(key(1), png(10))
        assert not disk.put(key(2), png(10))
    lines = [r for r in caplog.records if "No space left" in r.getMessage()]
    assert len(lines) == 1 and disk.write_errors == 2
    assert list(Path(tmp_path).rglob("*.png")) == []
    assert not [p for p in Path(tmp_path).rglob(".*") if p.is_file()], "temp file left"


@pytest.mark.parametrize(("header", "match"), [
    ('"v1"', True), ('W/"v1"', True), ('"x", "v1"', True), ("*", True), (" * ", True),
    ('"v2"', False), ("v1", False), ("", False), (None, False), ('"v1', False),
    (",,,,", False), ("\x00\xff", False), ('"x", ' * (MAX_IF_NONE_MATCH // 4) + '"v1"', False),
])
def test_if_none_match(header, match):
    assert etag_matches(header, '"v1"') is match


def scope(path: str, query: str = "") -> dict:
    return {"type": "http", "method": "GET", "path": path, "root_path": "",
            "query_string": query.encode(), "headers": []}


def test_parse_request_takes_png_tiles_and_tilejson_only():
    base = "/layers/crop/2025-05-19"
    r = parse_request(scope(f"{base}/v/abc/tiles/WebMercatorQuad/14/1/2.png", "tilesize=512"))
    assert (r.layer, r.week, r.version, r.z, r.x, r.y, r.tilesize) == (
        "crop", "2025-05-19", "abc", 14, 1, 2, 512)
    r = parse_request(scope(f"{base}/WebMercatorQuad/tilejson.json"))
    assert r.version is None and r.z is None
    for path, query in ((f"{base}/tiles/WebMercatorQuad/14/1/2.webp", ""),
                        (f"{base}/tiles/WebMercatorQuad/14/1/2", ""),
                        (f"{base}/tiles/WebMercatorQuad/14/1/2.png", "url=/etc/passwd"),
                        (f"{base}/tiles/WebMercatorQuad/14/1/2.png", "tilesize=100"),
                        (f"{base}/WebMercatorQuad/tilejson.json", "tilesize=256"),
                        ("/layers/crop/../tiles/WebMercatorQuad/14/1/2.png", ""),
                        ("/api/weeks", "")):
        assert parse_request(scope(path, query)) is None, (path, query)
