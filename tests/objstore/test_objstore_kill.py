"""kill -9 mid-write on an object-store data root: a reader sees the old complete version,
never a mix, and the next write collects what the killed writer left (moto on 127.0.0.1)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import REPO_ROOT, options
from rio_cogeo.cogeo import cog_validate

from cropassets.core.objstore import (
    current_version,
    gdal_path,
    location,
    versions,
)
from cropassets.core.storage import open_zarr

pytestmark = pytest.mark.slow

WRITER = r'''
import sys
import numpy as np
import xarray as xr
from affine import Affine
from cropassets.core.objstore import location
from cropassets.core.publish.cog import write_cog
from cropassets.core.storage import write_zarr_atomic
from cropassets.settings import load_settings

kind, url, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = location(url, load_settings().object_store)
for n in range(first, first + 1000):
    if kind == "zarr":
        ds = xr.Dataset({f"b{i}": (("y", "x"), np.full((512, 512), n, np.float32))
                         for i in range(6)}, attrs={"n": n}).chunk({"y": 64, "x": 64})
        write_zarr_atomic(ds, path)
    else:
        data = (np.random.default_rng(n).integers(0, 4000, (1024, 1024))).astype(np.uint16)
        write_cog(path, data, "EPSG:32647", Affine(10, 0, 0, 0, -10, 10240), 0,
                  tags={"n": n})
    print(n, flush=True)
'''


def _start(kind: str, url: str, first: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, kind, url, str(first)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_published(proc: subprocess.Popen, count: int) -> int:
    """Read the writer's lines until ``count`` writes are published; the last one."""
    last = -1
    assert proc.stdout is not None
    for _ in range(count):
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
        last = int(line)
    return last


def test_kill_9_mid_zarr_write_reader_sees_old_version_and_next_write_collects(
        s3_root, monkeypatch):
    from cropassets.core.storage import write_zarr_atomic

    url = f"{s3_root}/weekly_cube/T00/2024-05-06.zarr"
    path = location(url, options())
    proc = _start("zarr", url, first=1)
    try:
        published = _wait_published(proc, 2)
        # wait until the next version is being written (objects under a version that is
        # neither current nor the one it replaced), then kill -9
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            current = current_version(path)
            stored = versions(path)
            if len(stored) >= 3 and any(len(keys) > 5 for v, keys in stored.items()
                                        if v > (current or "")):
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the writer never started a new version")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    current = current_version(path)
    orphans = [v for v in versions(path) if v > current]
    assert orphans, "the killed write left no partial version to collect"
    ds = open_zarr(path).load()
    n = int(ds.attrs["n"])
    assert n >= published  # the last published write (or one published just before the kill)
    for name in ds.data_vars:  # one complete version, never a mix
        assert np.all(ds[name].values == n), name
    monkeypatch.setenv("CROPASSETS_S3_ORPHAN_GRACE", "0")
    ds2 = ds.assign_attrs(n=n + 100)
    for name in ds2.data_vars:
        ds2[name] = ds2[name] + 100
    write_zarr_atomic(ds2, location(url, options()))
    left = versions(path)
    assert not set(orphans) & set(left)  # the orphan was collected
    assert set(left) == {current, current_version(path)}
    assert int(open_zarr(path).attrs["n"]) == n + 100


def test_kill_9_mid_cog_write_reader_sees_a_complete_cog(s3_root, tmp_path: Path):
    url = f"{s3_root}/sos_map/T00/2024-05-06.tif"
    path = location(url, options())
    proc = _start("cog", url, first=1)
    try:
        _wait_published(proc, 2)
        time.sleep(random.uniform(0.05, 0.8))  # somewhere in staging, validation or the PUT
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    name = gdal_path(path)
    valid, errors, _ = cog_validate(name, quiet=True)
    assert valid, errors
    with rasterio.open(name) as src:
        n = int(src.tags()["n"])
        expected = np.random.default_rng(n).integers(0, 4000, (1024, 1024)).astype(np.uint16)
        np.testing.assert_array_equal(src.read(1), expected)
    assert n >= 2
    # only the COG itself: no temporary object was ever created under the data root
    assert [p.name for p in path.parent.glob("*")] == ["2024-05-06.tif"]
