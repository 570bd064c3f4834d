"""weekly_cube and sos_map (its in-memory season series) on a dask.distributed cluster equal
the threaded run.

A LocalCluster of 2 worker processes on 127.0.0.1 stands in for a multi-node cluster: the
resource connects to it by address, as it would to a remote scheduler.
"""

import shutil
import socket

import pytest
import xarray as xr
from dagster import materialize
from distributed import Client, LocalCluster, get_task_stream
from distributed.utils import key_split

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_map
from cropassets.core.storage import open_zarr
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DaskCluster, DataRoot, SeriesSettings, build_resources

ASSETS = [raw_scenes, weekly_cube, sos_map]
TILE = next(iter(TILES))
WEEKS = [w.isoformat() for w in SEASONS[0].week_starts()][:2]
SETTINGS = SeriesSettings(chunk=64)
"""64-pixel blocks: 4 weekly_cube blocks and 16 series chunks per 128² test tile."""


def _materialize(root, selection, dask_cluster):
    resources = build_resources() | {"data_root": DataRoot(root=str(root)),
                                     "series_settings": SETTINGS, "dask_cluster": dask_cluster}
    metadata = {}
    for week in WEEKS:
        result = materialize(ASSETS, selection=selection, partition_key=f"{TILE}|{week}",
                             resources=resources)
        assert result.success
        for mat in result.get_asset_materialization_events():
            meta = mat.materialization.metadata
            if mat.asset_key.path[-1] != "raw_scenes":
                metadata[(mat.asset_key.path[-1], week)] = meta["dask"].value
    return metadata


def _assert_same_outputs(root_a, root_b, weeks=WEEKS):
    for week in weeks:
        a = open_zarr(root_a / "weekly_cube" / TILE / f"{week}.zarr").load()
        b = open_zarr(root_b / "weekly_cube" / TILE / f"{week}.zarr").load()
        xr.testing.assert_identical(a, b)
        sos_a, sos_b = (r / "sos_map" / TILE / f"{week}.tif" for r in (root_a, root_b))
        assert sos_a.read_bytes() == sos_b.read_bytes(), week


@pytest.fixture(scope="module")
def threaded(tmp_path_factory):
    """raw_scenes, weekly_cube and sos_map of weeks 1..2, dask on threads."""
    root = tmp_path_factory.mktemp("threads")
    meta = _materialize(root, ASSETS, DaskCluster())
    assert all(m == {"mode": "threads"} for m in meta.values())
    return root


@pytest.fixture(scope="module")
def cluster():
    """A running 2-process cluster that the resource reaches by its address."""
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                       dashboard_address="127.0.0.1:0") as lc,
          Client(lc, set_as_default=False) as client):
        yield client


def test_cluster_by_address_runs_the_work_and_matches_threads(threaded, cluster, tmp_path):
    shutil.copytree(threaded / "raw_scenes", tmp_path / "raw_scenes")
    workers = set(cluster.scheduler_info()["workers"])
    with get_task_stream(cluster) as stream:
        meta = _materialize(tmp_path, [weekly_cube, sos_map],
                            DaskCluster(scheduler_address=cluster.scheduler.address))
    ran = [(str(task["key"]), task["worker"]) for task in stream.data]
    blocks = {worker for key, worker in ran if "_composite_block" in key}
    smoothing = {worker for key, worker in ran if "smooth_series" in key}
    assert blocks and smoothing, {key_split(key) for key, _ in ran}
    assert blocks | smoothing == workers  # both worker processes took part
    for m in meta.values():
        assert m["mode"] == "scheduler" and m["workers"] == 2
    _assert_same_outputs(threaded, tmp_path)


def test_local_cluster_per_run_is_closed_after_the_run(threaded, tmp_path):
    for asset in ("raw_scenes", "weekly_cube"):  # week 2's SOS reads the cubes of 1..2
        shutil.copytree(threaded / asset, tmp_path / asset)
    resources = build_resources() | {
        "data_root": DataRoot(root=str(tmp_path)), "series_settings": SETTINGS,
        "dask_cluster": DaskCluster(scheduler_address="local", n_workers=1)}
    result = materialize(ASSETS, selection=[weekly_cube, sos_map],
                         partition_key=f"{TILE}|{WEEKS[-1]}", resources=resources)
    assert result.success
    meta = [m.materialization.metadata["dask"].value
            for m in result.get_asset_materialization_events()]
    assert len(meta) == 2 and meta[0] == meta[1]  # both assets of the run share one cluster
    assert meta[0]["mode"] == "local-cluster" and meta[0]["workers"] == 1
    host, port = meta[0]["scheduler"].removeprefix("tcp://").rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass  # closed when the run ended
    _assert_same_outputs(threaded, tmp_path, weeks=WEEKS[-1:])
