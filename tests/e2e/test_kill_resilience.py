"""Faults: a run killed with SIGKILL mid-materialization, relaunched, ends byte-identical to
an uninterrupted run; the tiler never serves a partial file meanwhile; two processes
materializing the same partitions at once leave valid, identical outputs."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import morecantile
import pytest
from rio_cogeo.cogeo import cog_validate
from tiler_server import http_get, running_tiler

from cropassets.partitions import SEASONS, TILES

pytestmark = pytest.mark.slow

CURRENT = next(s for s in SEASONS if s.role == "current")
WEEKS = [w.isoformat() for w in CURRENT.week_starts()[:2]]
CHAIN = ["raw_scenes", "weekly_cube", "sos_map", "coverage_map"]


def _env(root: Path) -> dict[str, str]:
    (root / "home").mkdir(parents=True, exist_ok=True)
    return dict(os.environ, CROPASSETS_DATA=str(root / "data"), DAGSTER_HOME=str(root / "home"))


def _cmd(*assets: str) -> list[str]:
    return [sys.executable, "-m", "cropassets.cli", "materialize", *assets,
            "--weeks", f"{WEEKS[0]}...{WEEKS[-1]}"]


def _run(root: Path, *assets: str) -> None:
    done = subprocess.run(_cmd(*assets), env=_env(root), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _digests(data: Path) -> dict[str, str]:
    """SHA-256 of every published file (COGs, Zarr chunks and metadata), temp files aside.

    Week manifests and the products' STAC items carry their publishing time, so they are
    left out.
    """
    out = {}
    for p in sorted(data.rglob("*")):
        rel = p.relative_to(data).as_posix()
        if p.is_file() and ".tmp" not in rel and not rel.startswith(("week_layers", "stac/")):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("reference")
    _run(root, *CHAIN)
    _run(root, "week_layers")
    return _digests(root / "data")


def test_killed_run_relaunched_is_identical_and_tiler_never_serves_partial(tmp_path,
                                                                           reference):
    root = tmp_path / "killed"
    _run(root, *CHAIN)
    _run(root, "week_layers")  # published once: the tiler serves these weeks from now on
    data = root / "data"
    problems: list[str] = []
    served = [0]
    stop = threading.Event()
    with running_tiler(data) as base:
        weeks = http_get(f"{base}/api/weeks").json()
        week = weeks["seasons"][0]["weeks"][-1]
        tilejson = http_get(week["tilejson"]["sos"]).json()
        z = tilejson["maxzoom"]
        # a tile at the centre of the data, and every tile's SOS COG download
        lon = (tilejson["bounds"][0] + tilejson["bounds"][2]) / 2
        lat = (tilejson["bounds"][1] + tilejson["bounds"][3]) / 2
        t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
        tile_url = [tilejson["tiles"][0].format(z=z, x=t.x, y=t.y)]
        downloads = [row["sos"] for row in week["downloads"].values()]
        assert len(downloads) == len(TILES)
        republished = [0]

        def current_tile_url() -> str:
            """The tile's URL under the week's current version, as /api/weeks gives it."""
            seasons = http_get(f"{base}/api/weeks").json()["seasons"]
            now = next(w for w in seasons[0]["weeks"] if w["week"] == week["week"])
            return http_get(now["tilejson"]["sos"]).json()["tiles"][0].format(
                z=z, x=t.x, y=t.y)

        def hammer() -> None:
            n = 0
            while not stop.is_set():
                r = http_get(tile_url[0])
                if r.status == 404 and b"not its current version" in r.body:
                    # republished: versioned URLs of the old version are gone, never stale;
                    # a client takes the new URL from /api/weeks, as the web map does
                    republished[0] += 1
                    tile_url[0] = current_tile_url()
                    r = http_get(tile_url[0])
                if r.status != 200 or r.body[:4] != b"\x89PNG":
                    problems.append(f"tile answered {r.status}: {r.body[:200]!r}")
                for url in downloads:
                    r = http_get(url)
                    f = tmp_path / f"dl{n % 4}.tif"
                    f.write_bytes(r.body)
                    if r.status != 200 or not cog_validate(f, quiet=True)[0]:
                        problems.append(f"download {url} answered {r.status}, invalid")
                n += 1
                served[0] = n

        reader = threading.Thread(target=hammer, daemon=True)
        reader.start()
        try:
            # re-materialize everything and SIGKILL the process mid-way
            proc = subprocess.Popen(_cmd(*CHAIN), env=_env(root), stderr=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, text=True)
            assert proc.stderr is not None
            for line in proc.stderr:
                if f"/{len(WEEKS) * len(TILES)} partitions" in line and " 2/" in line:
                    break
            time.sleep(0.5)  # the first tile's range run is done: inside the second one
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            _run(root, *CHAIN)  # relaunch: completes
            _run(root, "week_layers")
            # two processes materializing the same partitions at once
            twins = [subprocess.Popen(_cmd("sos_map", "coverage_map"), env=_env(root),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2)]
            for p in twins:
                _, err = p.communicate(timeout=600)
                assert p.returncode == 0, err[-3000:]
        finally:
            stop.set()
            reader.join(timeout=60)
    assert not problems, problems[:5]
    assert served[0] >= 3  # the tiler was read throughout, not once
    assert republished[0] >= 1  # the week was republished while it was read
    assert _digests(data) == reference
