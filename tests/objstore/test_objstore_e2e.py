"""End to end on an object-store data root (moto on 127.0.0.1): raw_scenes -> weekly_cube ->
sos_map -> coverage_map -> week_layers materialized by Dagster with the data root at
``s3://bucket/prefix`` and the array work on a dask.distributed cluster of worker processes,
then the tiler started on that root serves /api/weeks, tiles, points and downloads."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import options
from dagster import DagsterInstance, materialize
from distributed import LocalCluster
from PIL import Image
from tiler_server import http_get, running_tiler

from cropassets.assets.ingest import raw_scenes
from cropassets.assets.maps import coverage_map, week_layers
from cropassets.assets.series import weekly_cube
from cropassets.assets.sos import sos_map
from cropassets.core.objstore import ObjPath, gdal_path, location
from cropassets.core.publish.manifest_record import WeekManifest
from cropassets.core.storage import open_zarr
from cropassets.partitions import SEASONS, TILES
from cropassets.resources import DaskCluster, DataRoot, SeriesSettings, build_resources

pytestmark = pytest.mark.slow

ASSETS = [raw_scenes, weekly_cube, sos_map, coverage_map, week_layers]
CUR = [w.isoformat() for w in SEASONS[1].week_starts()][:3]


def test_chain_on_moto_with_dask_workers_then_tiler(s3_root, s3_server, tmp_path):
    tiles = list(TILES)
    settings = SeriesSettings(chunk=64)  # 4 weekly_cube blocks per 128 px tile: 4 tasks
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster:
        resources = build_resources() | {
            "data_root": DataRoot(root=s3_root), "series_settings": settings,
            "dask_cluster": DaskCluster(scheduler_address=cluster.scheduler_address)}
        (tmp_path / "home").mkdir()
        with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
            for week in CUR:
                for tile in tiles:
                    result = materialize(ASSETS, selection=ASSETS[:4],
                                         partition_key=f"{tile}|{week}", instance=instance,
                                         resources=resources)
                    assert result.success
            published = materialize(ASSETS, selection=[week_layers], partition_key=CUR[2],
                                    instance=instance, resources=resources)
            assert published.success
    print(f"\nchain of {len(tiles)} tiles x {len(CUR)} weeks on moto + 2 dask workers: "
          f"{time.perf_counter() - t0:.1f} s")
    root = location(s3_root, options())
    assert isinstance(root, ObjPath)
    # every product is under the prefix, and nothing was written locally
    keys = s3_server.keys(root.key)
    for asset in ("raw_scenes", "weekly_cube", "sos_map", "coverage_map", "week_layers", "stac"):
        assert any(k.startswith(f"{root.key}/{asset}/") for k in keys), asset
    cube = root / "weekly_cube" / tiles[0] / f"{CUR[2]}.zarr"
    md = published.asset_materializations_for_node("week_layers")[0].metadata
    assert md["manifest"].value == f"{s3_root}/week_layers/{CUR[2]}.json"

    # the cube the workers wrote equals the one a local threaded run writes
    local = tmp_path / "data"
    local_res = build_resources() | {"data_root": DataRoot(root=str(local)),
                                     "series_settings": settings}
    assert materialize(ASSETS, selection=ASSETS[:2], partition_key=f"{tiles[0]}|{CUR[2]}",
                       resources=local_res).success
    xr.testing.assert_identical(open_zarr(cube).load(),
                                open_zarr(local / "weekly_cube" / tiles[0] / f"{CUR[2]}.zarr")
                                .load())

    manifest = WeekManifest.from_json((root / "week_layers" / f"{CUR[2]}.json").read_bytes())
    assert manifest.layers.sos and manifest.layers.coverage and not manifest.layers.crop
    assert set(manifest.tiles) == set(tiles)
    mosaic = (root / manifest.mosaics["sos"]).read_text()
    assert f"/vsis3/{root.bucket}/{root.key}/sos_map/" in mosaic
    with rasterio.open(gdal_path(root / str(manifest.tiles[tiles[0]].sos))) as src:
        sos = src.read(1)
    assert (sos > 0).any()

    with running_tiler(s3_root) as base:
        weeks = http_get(f"{base}/api/weeks")
        assert weeks.status == 200, weeks.body[:300]
        rows = [w for s in weeks.json()["seasons"] for w in s["weeks"]]
        assert [w["week"] for w in rows] == [CUR[2]]
        tj = http_get(f"{base}/layers/sos/{CUR[2]}/WebMercatorQuad/tilejson.json")
        assert tj.status == 200, tj.body[:300]
        import morecantile

        west, south, east, north = tj.json()["bounds"]
        z = tj.json()["maxzoom"] - 2
        tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2,
                                                           (south + north) / 2, z)
        t1 = time.perf_counter()
        png = http_get(f"{base}/layers/sos/{CUR[2]}/tiles/WebMercatorQuad/"
                       f"{z}/{tile.x}/{tile.y}.png")
        print(f"first tile from moto: {time.perf_counter() - t1:.3f} s")
        assert png.status == 200, png.body[:300]
        rgba = np.asarray(Image.open(io.BytesIO(png.body)))
        assert (rgba[..., 3] == 255).any()
        cov = http_get(f"{base}/download/{CUR[2]}/{tiles[0]}/coverage.tif")
        assert cov.status == 200 and cov.body[:2] in (b"II", b"MM")
        assert cov.body == (root / str(manifest.tiles[tiles[0]].coverage)).read_bytes()
        point = http_get(f"{base}/api/point?lon={(west + east) / 2}&lat={(south + north) / 2}")
        assert point.status == 200, point.body[:300]
        items = http_get(f"{base}/stac/search?collections=cropassets-sos")
        assert items.status == 200 and len(items.json()["features"]) == len(tiles)
        missing = http_get(f"{base}/layers/sos/2025-06-30/WebMercatorQuad/tilejson.json")
        assert missing.status == 404 and s3_root not in missing.body.decode()
