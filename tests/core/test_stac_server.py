import json
import os
import socket
import threading
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from cropassets.core.stac import api_catalog
from cropassets.core.stac.api_catalog import (
    PARQUET_MEDIA_TYPE,
    StacServerError,
    build_api_catalog,
    duckdb_client,
    duckdb_extension_directory,
)
from cropassets.core.stac.server import serve, shared_local_server
from cropassets.testing.stac_fixtures import (
    S1_COLLECTION_ID,
    S2_COLLECTION_ID,
    append_items,
    make_items,
    write_fixture_catalog,
)


def _get_json(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def _port_open(url):
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def test_extension_directory_layout_is_idempotent_and_thread_safe(tmp_path):
    roots, errors = [], []

    def build():
        try:
            roots.append(duckdb_extension_directory(tmp_path / "ext"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(roots) == {tmp_path / "ext"}
    files = sorted((tmp_path / "ext").rglob("*.duckdb_extension"))
    assert [f.relative_to(tmp_path / "ext").as_posix() for f in files] == [
        f"v1.5.5/linux_amd64/{n}.duckdb_extension" for n in ("icu", "parquet", "spatial")
    ]
    assert all(f.is_symlink() and f.resolve().is_file() for f in files)
    assert not [p for p in (tmp_path / "ext").rglob("*.tmp")]


def test_missing_extension_wheel_names_the_package(tmp_path, monkeypatch):
    real_find_spec = api_catalog.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "duckdb_extension_icu" else real_find_spec(name, *args)

    monkeypatch.setattr(api_catalog.importlib.util, "find_spec", find_spec)
    with pytest.raises(StacServerError, match="duckdb-extension-icu==1.5.5"):
        duckdb_extension_directory(tmp_path / "ext")


def test_duckdb_client_is_offline_and_uses_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a download attempt would write here
    client = duckdb_client()
    assert (tmp_path / "cache/cropassets/duckdb-extensions/v1.5.5/linux_amd64").is_dir()
    assert client is not None
    assert not (tmp_path / "home" / ".duckdb").exists()


def test_build_api_catalog_outputs_and_incremental_rebuild(tmp_path):
    stac_dir = tmp_path / "stac"
    written = write_fixture_catalog(stac_dir, n_items=8, seed=3)
    out = build_api_catalog(stac_dir)
    assert out == stac_dir.absolute() / "api" / "collections.json"
    collections = json.loads(out.read_text())
    assert isinstance(collections, list)  # stac-fastapi-geoparquet wants a bare list
    assert [c["id"] for c in collections] == [S2_COLLECTION_ID, S1_COLLECTION_ID]
    for c in collections:
        (asset,) = [a for a in c["assets"].values() if a["type"] == PARQUET_MEDIA_TYPE]
        assert (out.parent / asset["href"]).resolve() == out.parent / f"{c['id']}.parquet"

    parquet = out.parent / f"{S2_COLLECTION_ID}.parquet"
    stamp = parquet.stat().st_mtime_ns, out.stat().st_mtime_ns
    build_api_catalog(stac_dir)
    assert (parquet.stat().st_mtime_ns, out.stat().st_mtime_ns) == stamp  # nothing rewritten

    extra = make_items(S2_COLLECTION_ID, 3, date(2024, 7, 1), 5, tmp_path / "scenes", seed=9)
    append_items(stac_dir, S2_COLLECTION_ID, extra)
    build_api_catalog(stac_dir)
    ids = {it["id"] for it in duckdb_client().search(str(parquet))}
    assert ids == {it["id"] for it in written[S2_COLLECTION_ID] + extra}
    assert not list(out.parent.glob(".*.tmp"))


def test_collection_without_items_is_served_empty(tmp_path):
    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=4)
    os.remove(stac_dir / "items" / f"{S1_COLLECTION_ID}.ndjson")
    collections = json.loads(build_api_catalog(stac_dir).read_text())
    s1 = next(c for c in collections if c["id"] == S1_COLLECTION_ID)
    assert not [a for a in s1["assets"].values() if a["type"] == PARQUET_MEDIA_TYPE]
    with serve(stac_dir) as server:
        body = _get_json(f"{server.url}/collections/{S1_COLLECTION_ID}/items")
        assert body["features"] == []


def test_missing_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(StacServerError, match="collections.json"):
        build_api_catalog(tmp_path / "nothing-here")


def test_serve_starts_on_free_loopback_port_and_stops(tmp_path):
    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=5)
    with serve(stac_dir, host="127.0.0.1", port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert int(server.url.rsplit(":", 1)[1]) > 0
        landing = _get_json(server.url + "/")
        assert any(link["rel"] == "search" for link in landing["links"])
        names = {c["id"] for c in _get_json(server.url + "/collections")["collections"]}
        assert names == {S2_COLLECTION_ID, S1_COLLECTION_ID}
        items = _get_json(f"{server.url}/collections/{S2_COLLECTION_ID}/items?limit=100")
        assert len(items["features"]) == 5
        url = server.url
    assert not server.alive
    assert not _port_open(url)


def test_shared_local_server_is_reused(tmp_path):
    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=3)
    url = shared_local_server(stac_dir)
    assert shared_local_server(Path(str(stac_dir) + "/")) == url
    assert _get_json(url + "/")["type"] == "Catalog"


def test_concurrent_builds_agree(tmp_path):
    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=6)
    results, errors = [], []

    def build():
        try:
            results.append(build_api_catalog(stac_dir).read_text())
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1


def test_unterminated_last_line_is_skipped_until_complete(tmp_path):
    stac_dir = tmp_path / "stac"
    written = write_fixture_catalog(stac_dir, n_items=4)
    extra = make_items(S2_COLLECTION_ID, 1, date(2024, 8, 1), 3, tmp_path / "scenes", seed=4)
    line = json.dumps(extra[0])
    ndjson = stac_dir / "items" / f"{S2_COLLECTION_ID}.ndjson"
    with ndjson.open("a") as f:
        f.write(line[:50])  # a writer caught mid-append
    parquet = build_api_catalog(stac_dir).parent / f"{S2_COLLECTION_ID}.parquet"
    assert len(duckdb_client().search(str(parquet))) == len(written[S2_COLLECTION_ID])
    with ndjson.open("a") as f:
        f.write(line[50:] + "\n")
    build_api_catalog(stac_dir)
    assert len(duckdb_client().search(str(parquet))) == len(written[S2_COLLECTION_ID]) + 1


def test_corrupt_ndjson_line_is_named(tmp_path):
    stac_dir = tmp_path / "stac"
    write_fixture_catalog(stac_dir, n_items=2)
    ndjson = stac_dir / "items" / f"{S1_COLLECTION_ID}.ndjson"
    ndjson.write_text(ndjson.read_text() + "{not json\n" + "\n")
    with pytest.raises(StacServerError, match=r"sentinel-1-rtc.ndjson:3"):
        build_api_catalog(stac_dir)
