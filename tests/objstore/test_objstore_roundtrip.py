"""Round trips through an S3-compatible server (moto on 127.0.0.1): Zarr partitions, COGs,
JSON records and checkpoint bytes, each equal to what the local data root gives."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from conftest import options
from rio_cogeo.cogeo import cog_validate

from cropassets.core import quality
from cropassets.core.objstore import (
    POINTER,
    ObjPath,
    current_version,
    gdal_path,
    location,
    versions,
)
from cropassets.core.publish.cog import write_cog
from cropassets.core.storage import (
    atomic_file,
    open_zarr,
    partition_path,
    write_bytes_atomic,
    write_zarr_atomic,
)


def _dataset(seed: int = 0, size: int = 96) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    data = rng.random((3, size, size), dtype=np.float32)
    data[0, :4, :4] = np.nan
    ds = xr.Dataset(
        {"features": (("feature", "y", "x"), data),
         "n_obs": (("sensor", "y", "x"), rng.integers(0, 9, (2, size, size), dtype=np.uint8))},
        coords={"feature": ["ndvi", "lswi", "vv"], "sensor": ["s2", "s1"],
                "y": 1000.0 - 10 * np.arange(size), "x": 500.0 + 10 * np.arange(size)},
        attrs={"week": "2024-05-06", "seed": seed})
    return ds.rio.write_crs("EPSG:32647").rio.write_transform(
        Affine(10, 0, 495, 0, -10, 1005))


def test_zarr_partition_round_trip_equals_local(s3_root, s3_server, tmp_path):
    ds = _dataset()
    local = partition_path(tmp_path, "weekly_cube", "T00", "2024-05-06")
    remote = partition_path(location(s3_root, options()), "weekly_cube", "T00", "2024-05-06")
    assert isinstance(remote, ObjPath)
    assert str(remote) == f"{s3_root}/weekly_cube/T00/2024-05-06.zarr"
    t0 = time.perf_counter()
    n_local = write_zarr_atomic(ds, local)
    t1 = time.perf_counter()
    n_remote = write_zarr_atomic(ds, remote)
    t2 = time.perf_counter()
    assert n_local == n_remote > 0
    a = open_zarr(local).load()
    t3 = time.perf_counter()
    b = open_zarr(remote).load()
    t4 = time.perf_counter()
    xr.testing.assert_identical(a, b)
    assert b.rio.crs == a.rio.crs and b.rio.transform() == a.rio.transform()
    assert remote.exists() and not (remote / "nothing").exists()
    # one published version behind one pointer
    prefix = remote.key
    keys = s3_server.keys(prefix)
    vid = current_version(remote)
    assert f"{prefix}/{POINTER}" in keys
    assert all(k == f"{prefix}/{POINTER}" or k.startswith(f"{prefix}/v/{vid}/") for k in keys)
    print(f"\n96x96x5 partition: write local {t1 - t0:.3f} s, moto {t2 - t1:.3f} s; "
          f"read local {t3 - t2:.3f} s, moto {t4 - t3:.3f} s")


def test_dask_backed_open_and_rewrite_keeps_previous_version(s3_root, s3_server):
    remote = location(s3_root, options()) / "raw_scenes" / "T00" / "2024-05-13.zarr"
    write_zarr_atomic(_dataset(1), remote)
    first = current_version(remote)
    lazy = open_zarr(remote, dask=True)
    assert lazy["features"].chunks is not None
    write_zarr_atomic(_dataset(2), remote)
    second = current_version(remote)
    assert second != first
    # the replaced version stays for readers that resolved it just before
    assert set(versions(remote)) == {first, second}
    np.testing.assert_array_equal(lazy["features"].values, _dataset(1)["features"].values)
    assert open_zarr(remote).attrs["seed"] == 2
    write_zarr_atomic(_dataset(3), remote)  # the first is older than the grace? not yet
    assert first in versions(remote)  # default grace 1 h keeps it (not current, not previous)


def test_collect_drops_old_versions_after_grace(s3_root, monkeypatch):
    monkeypatch.setenv("CROPASSETS_S3_ORPHAN_GRACE", "0")
    remote = location(s3_root, options()) / "weekly_cube" / "T01" / "2024-05-06.zarr"
    for seed in range(3):
        write_zarr_atomic(_dataset(seed, 32), remote)
    kept = versions(remote)
    assert len(kept) == 2  # the current one and the one it replaced
    assert current_version(remote) in kept
    assert open_zarr(remote).attrs["seed"] == 2


def test_cog_written_read_by_gdal_vsis3_and_valid(s3_root, s3_server):
    path = location(s3_root, options()) / "sos_map" / "T00" / "2024-05-06.tif"
    data = (np.arange(300 * 300, dtype=np.uint32) % 366).astype(np.uint16).reshape(300, 300)
    out = write_cog(path, data, "EPSG:32647", Affine(10, 0, 0, 0, -10, 3000), 0,
                    tags={"product": "start_of_season"}, band_descriptions=["sos_doy"])
    assert out == path and path.is_file()
    assert s3_server.keys(path.key) == [path.key]  # one object, no temporary names
    name = gdal_path(path)
    assert name == f"/vsis3/{path.bucket}/{path.key}"
    valid, errors, _ = cog_validate(name, quiet=True)
    assert valid, errors
    with rasterio.open(name) as src:
        np.testing.assert_array_equal(src.read(1), data)
        assert src.tags()["product"] == "start_of_season"
        assert src.overviews(1)
    assert quality.cog_check(path, quality.SOS_COG).passed


def test_json_records_and_listing(s3_root):
    root = location(s3_root, options())
    manifest = root / "week_layers" / "2024-05-06.json"
    assert write_bytes_atomic(manifest, b'{"week": "2024-05-06"}') == 22
    assert manifest.read_bytes() == b'{"week": "2024-05-06"}'
    write_bytes_atomic(root / "week_layers" / "2024-05-06" / "crop.mosaic.json", b"{}")
    listed = sorted(p.name for p in (root / "week_layers").glob("*.json"))
    assert listed == ["2024-05-06.json"]
    st = manifest.stat()
    assert st.st_size == 22 and st.etag
    write_bytes_atomic(manifest, b'{"week": "2024-05-06", "v": 2}')
    assert manifest.stat().etag != st.etag
    with pytest.raises(FileNotFoundError, match=f"{s3_root}/week_layers/nope.json"):
        (root / "week_layers" / "nope.json").read_bytes()


def test_checkpoint_bytes_and_torch_checkpoint(s3_root):
    root = location(s3_root, options())
    path = root / "cnn2d_checkpoint" / "k07.pt"
    payload = bytes(range(256)) * 4000  # 1 MB
    with atomic_file(path) as fh:
        fh.write(payload)
    assert path.read_bytes() == payload
    with pytest.raises(RuntimeError), atomic_file(root / "cnn2d_checkpoint" / "k08.pt") as fh:
        fh.write(b"half")
        raise RuntimeError("training crashed")
    assert not (root / "cnn2d_checkpoint" / "k08.pt").exists()  # nothing published
