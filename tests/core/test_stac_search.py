import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cropassets.core.stac.api_catalog import build_api_catalog
from cropassets.core.stac.search import StacApiError, backoff_schedule, search_items
from cropassets.core.stac.server import serve, shared_local_server
from cropassets.testing.stac_fixtures import (
    S1_COLLECTION_ID,
    S2_COLLECTION_ID,
    append_items,
    make_items,
    write_fixture_catalog,
)

BOTH = [S2_COLLECTION_ID, S1_COLLECTION_ID]
# Intersects the western S2 footprint (47PQR) and both S1 orbits, not 47PRR / 48PTA.
BBOX = (99.5, 14.5, 100.1, 15.0)
START = datetime(2024, 5, 13, tzinfo=UTC)
END = datetime(2024, 5, 27, tzinfo=UTC)


def _when(item):
    return datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))


def _expected_ids(items_by_collection, collections, bbox, start, end, max_cloud=None):
    """Independent expectation: rectangle overlap, half-open window, cloud <= max."""
    out = []
    for cid in collections:
        for it in items_by_collection[cid]:
            w, s, e, n = it["bbox"]
            if not (w <= bbox[2] and bbox[0] <= e and s <= bbox[3] and bbox[1] <= n):
                continue
            if not start <= _when(it) < end:
                continue
            cloud = it["properties"].get("eo:cloud_cover")
            if max_cloud is not None and cloud is not None and cloud > max_cloud:
                continue
            out.append((_when(it), it["id"]))
    return [i for _, i in sorted(out)]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    stac_dir = tmp_path_factory.mktemp("world") / "stac"
    items = write_fixture_catalog(stac_dir, n_items=60, seed=1)
    with serve(stac_dir) as server:
        yield server.url, items


def _ids(items):
    return [it["id"] for it in items]


def test_bbox_datetime_cloud_search_returns_exactly_expected(catalog):
    url, items = catalog
    t0 = time.perf_counter()
    found = search_items(url, BOTH, BBOX, START, END, max_cloud_cover=40.0)
    elapsed = time.perf_counter() - t0
    expected = _expected_ids(items, BOTH, BBOX, START, END, max_cloud=40.0)
    # the fixture must make every criterion matter
    assert _ids(found) == expected
    assert len(expected) >= 4
    assert len(expected) < len(_expected_ids(items, BOTH, BBOX, START, END))
    assert len(_expected_ids(items, BOTH, BBOX, START, END)) < len(
        _expected_ids(items, BOTH, (99, 14, 103, 16), START, END)
    )
    # both collections, and the cloud limit is not applied to Sentinel-1 (no eo:cloud_cover)
    assert {it["collection"] for it in found} == set(BOTH)
    assert all(
        it["properties"]["eo:cloud_cover"] <= 40.0
        for it in found
        if it["collection"] == S2_COLLECTION_ID
    )
    assert elapsed < 10, elapsed


def test_results_are_sorted_dicts_with_assets(catalog):
    url, items = catalog
    found = search_items(url, BOTH, (99, 14, 103, 16), START, END)
    keys = [(_when(it), it["id"]) for it in found]
    assert keys == sorted(keys)
    assert len(found) == len(_expected_ids(items, BOTH, (99, 14, 103, 16), START, END))
    s2 = next(it for it in found if it["collection"] == S2_COLLECTION_ID)
    assert set(s2["assets"]) == {"blue", "green", "red", "nir", "swir16", "scl"}
    assert s2["assets"]["red"]["raster:bands"][0]["scale"] == 0.0001
    s1 = next(it for it in found if it["collection"] == S1_COLLECTION_ID)
    assert set(s1["assets"]) == {"vv", "vh"}


def test_end_is_exclusive_and_start_inclusive(catalog):
    url, items = catalog
    target = items[S2_COLLECTION_ID][len(items[S2_COLLECTION_ID]) // 2]
    at = _when(target)
    bbox = tuple(target["bbox"])
    before = search_items(url, [S2_COLLECTION_ID], bbox, at - timedelta(days=3), at)
    assert target["id"] not in _ids(before)
    assert _ids(before) == _expected_ids(
        items, [S2_COLLECTION_ID], bbox, at - timedelta(days=3), at
    )
    just_after = search_items(
        url, [S2_COLLECTION_ID], bbox, at - timedelta(days=3), at + timedelta(microseconds=1)
    )
    assert target["id"] in _ids(just_after)
    from_it = search_items(url, [S2_COLLECTION_ID], bbox, at, at + timedelta(days=3))
    assert _ids(from_it)[0] == target["id"]
    # naive datetimes are UTC
    naive = search_items(
        url,
        [S2_COLLECTION_ID],
        bbox,
        at.replace(tzinfo=None),
        (at + timedelta(days=3)).replace(tzinfo=None),
    )
    assert _ids(naive) == _ids(from_it)


def test_per_collection_cloud_limits(catalog):
    url, items = catalog
    found = search_items(url, BOTH, BBOX, START, END, max_cloud_cover={S2_COLLECTION_ID: 20.0})
    expected = _expected_ids(items, BOTH, BBOX, START, END, max_cloud=20.0)
    assert _ids(found) == expected


def test_modifier_is_applied_to_each_item(catalog):
    url, items = catalog

    def sign(item):
        for asset in item.assets.values():
            asset.href += "?sig=1"

    found = search_items(url, BOTH, BBOX, START, END, modifier=sign)
    assert found and all(
        a["href"].endswith("?sig=1") for it in found for a in it["assets"].values()
    )


def test_empty_window_is_rejected(catalog):
    url, _ = catalog
    with pytest.raises(ValueError, match="empty time window"):
        search_items(url, BOTH, BBOX, END, START)


def test_items_appended_later_are_found_after_rebuild(tmp_path):
    stac_dir = tmp_path / "stac"
    items = write_fixture_catalog(stac_dir, n_items=10, seed=2, start=date(2024, 5, 6), days=14)
    late_start = datetime(2024, 6, 3, tzinfo=UTC)
    late_end = late_start + timedelta(days=7)
    everywhere = (98.0, 13.0, 103.0, 17.0)
    late = make_items(S2_COLLECTION_ID, 4, late_start.date(), 7, tmp_path / "scenes", seed=5)

    with serve(stac_dir) as server:
        assert search_items(server.url, BOTH, everywhere, late_start, late_end) == []
        append_items(stac_dir, S2_COLLECTION_ID, late)
        build_api_catalog(stac_dir)  # the running server re-reads the parquet files
        found = search_items(server.url, BOTH, everywhere, late_start, late_end)
        assert _ids(found) == _ids(late)

    with serve(stac_dir) as server:  # a fresh start sees them too
        found = search_items(server.url, BOTH, everywhere, datetime(2024, 5, 1), late_end)
        assert len(found) == len(items[S2_COLLECTION_ID]) + len(items[S1_COLLECTION_ID]) + 4

    url = shared_local_server(stac_dir)
    more = make_items(S2_COLLECTION_ID, 3, date(2024, 6, 17), 7, tmp_path / "scenes", seed=6)
    append_items(stac_dir, S2_COLLECTION_ID, more)
    assert shared_local_server(stac_dir) == url  # same server, catalog refreshed
    found = search_items(
        url, [S2_COLLECTION_ID], everywhere, datetime(2024, 6, 17), datetime(2024, 6, 24)
    )
    assert _ids(found) == _ids(more)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_raises_after_bounded_retries():
    url = f"http://127.0.0.1:{_closed_port()}"
    retries, backoff = 3, 0.05
    t0 = time.perf_counter()
    with pytest.raises(StacApiError) as info:
        search_items(url, BOTH, BBOX, START, END, retries=retries, backoff_s=backoff, timeout_s=2)
    elapsed = time.perf_counter() - t0
    assert url in str(info.value)
    assert "3 retries" in str(info.value)
    assert elapsed >= sum(backoff_schedule(retries, backoff)) == pytest.approx(0.35)


class _CannedServer:
    """Loopback HTTP server answering every request with one status; counts requests."""

    def __init__(self, status, body):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def test_503_is_retried_then_raises_naming_the_url():
    retries, backoff = 2, 0.05
    with _CannedServer(503, '{"detail": "overloaded"}') as srv:
        t0 = time.perf_counter()
        with pytest.raises(StacApiError) as info:
            search_items(srv.url, BOTH, BBOX, START, END, retries=retries, backoff_s=backoff)
        elapsed = time.perf_counter() - t0
    assert srv.requests == retries + 1
    assert srv.url in str(info.value)
    assert "503" in str(info.value) and "overloaded" in str(info.value)
    assert elapsed >= sum(backoff_schedule(retries, backoff))


def test_4xx_raises_at_once_with_the_server_message():
    with _CannedServer(403, '{"detail": "token expired"}') as srv:
        with pytest.raises(StacApiError) as info:
            search_items(srv.url, BOTH, BBOX, START, END, retries=3, backoff_s=0.05)
    assert srv.requests == 1
    assert srv.url in str(info.value)
    assert "403" in str(info.value) and "token expired" in str(info.value)
