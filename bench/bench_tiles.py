"""Tile latency and throughput of the tiler over loopback HTTP, cold then warm.

    .venv/bin/python bench/bench_tiles.py                 # builds a small truth data root
    .venv/bin/python bench/bench_tiles.py --data data     # or serves an existing one

Starts ``python -m tiler`` (uvicorn, one worker by default) on 127.0.0.1, sends ``--requests`` tile
requests from ``--clients`` concurrent keep-alive clients over every tile covering the data
at each served zoom (all layers, all weeks with a crop layer; the versioned URLs of the
layers' TileJSON, as the web map requests them), first on the fresh server (cold), then
the same requests again (warm). The tiler's in-process tile cache is on (default size)
unless ``CROPASSETS_TILE_CACHE_MB=0`` is set, so the warm pass measures serving from it.
Prints p50/p95/max latency, requests/s and errors (exceptions or a status other than
200/204) per pass, and warm/cold ratios.
Without ``--data`` the data root is the truth maps of a generated world (seed 7, 4 tiles
of 512 px, one short season; tests/map_fixtures.py), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import morecantile  # noqa: E402
from tiler_server import http_get, running_tiler  # noqa: E402

SEASONS = [{"id": "2024", "start": "2024-05-06", "weeks": 4, "role": "reference"},
           {"id": "2025", "start": "2025-05-05", "weeks": 5, "role": "current"}]


def build_data(folder: Path) -> Path:
    """Generate the bench world and publish its truth maps; returns the data root."""
    from map_fixtures import publish_truth_maps

    from cropassets.world.generate import generate_world

    t0 = time.perf_counter()
    world = generate_world(folder / "world", seed=7, size=512, tiles=4, seasons=SEASONS)
    t1 = time.perf_counter()
    published = publish_truth_maps(world, folder / "data")
    print(f"world {t1 - t0:.1f} s, publish {time.perf_counter() - t1:.1f} s "
          f"({len(published.weeks)} weeks, {len(published.mapped_weeks)} with crop)")
    return published.root


def tile_paths(base: str, n: int, seed: int = 0) -> list[str]:
    """``n`` tile paths over all layers x crop weeks x tiles covering the data per zoom."""
    tms = morecantile.tms.get("WebMercatorQuad")
    weeks = [w for s in http_get(f"{base}/api/weeks").json()["seasons"] for w in s["weeks"]
             if w["available"]]
    pool = []
    for w in weeks:
        for url in w["tilejson"].values():
            tj = http_get(url).json()
            template = urlsplit(tj["tiles"][0]).path  # versioned, as the web map uses it
            zooms = range(tj["minzoom"], tj["maxzoom"] + 1)
            for t in tms.tiles(*tj["bounds"], zooms=list(zooms)):
                pool.append(template.replace("{z}", str(t.z)).replace("{x}", str(t.x))
                            .replace("{y}", str(t.y)))
    rng = random.Random(seed)
    paths = (pool * (n // len(pool) + 1))[:n]
    rng.shuffle(paths)
    print(f"{len(weeks)} weeks, {len(pool)} distinct tiles "
          f"(zooms {tj['minzoom']}..{tj['maxzoom']}), {n} requests")
    return paths


def run_pass(base: str, paths: list[str], clients: int) -> dict[str, float]:
    """Send ``paths`` from ``clients`` keep-alive connections; latency stats in ms."""
    host = urlsplit(base)
    lock, nxt = threading.Lock(), iter(paths)
    lat: list[float] = []
    codes: dict[int, int] = {}
    errors = [0]

    def client() -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        while True:
            with lock:
                path = next(nxt, None)
            if path is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
                status = -1
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                codes[status] = codes.get(status, 0) + 1
                errors[0] += status not in (200, 204)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    return {"p50": q[49], "p95": q[94], "max": max(lat), "rps": len(lat) / wall,
            "errors": errors[0], "ok200": codes.get(200, 0), "empty204": codes.get(204, 0)}


def main() -> None:
    """Parse arguments, build or use a data root, run cold and warm passes."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, help="existing data root (default: build one)")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tiles-") as tmp:
        root = args.data or build_data(Path(tmp))
        with running_tiler(root, workers=args.workers) as base:
            paths = tile_paths(base, args.requests)
            result = {name: run_pass(base, paths, args.clients) for name in ("cold", "warm")}
    print(f"\n{args.requests} tile requests, {args.clients} concurrent clients, "
          f"{args.workers} uvicorn worker(s), loopback, {os.cpu_count()} CPUs")
    print(f"{'pass':6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'req/s':>9}{'errors':>8}"
          f"{'200':>6}{'204':>6}")
    for name, r in result.items():
        print(f"{name:6}{r['p50']:9.1f}{r['p95']:9.1f}{r['max']:9.1f}{r['rps']:9.1f}"
              f"{r['errors']:8d}{r['ok200']:6d}{r['empty204']:6d}")
    cold, warm = result["cold"], result["warm"]
    print(f"warm/cold: p50 {warm['p50'] / cold['p50']:.2f}, p95 {warm['p95'] / cold['p95']:.2f},"
          f" req/s {warm['rps'] / cold['rps']:.2f}")


if __name__ == "__main__":
    main()
