"""Bad input on an object-store data root: a clear error naming the URL, bounded retries for
transient errors, nothing partial published (moto on 127.0.0.1, no mocks)."""

from __future__ import annotations

import socket
import time

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from conftest import BUCKET, moto_process, options

from cropassets.core.objstore import (
    ObjectStoreError,
    ObjPath,
    StoreOptions,
    current_version,
    location,
    versions,
)
from cropassets.core.publish.cog import write_cog
from cropassets.core.storage import open_zarr, write_bytes_atomic, write_zarr_atomic
from cropassets.settings import load_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small(seed: int = 0) -> xr.Dataset:
    return xr.Dataset({"v": (("y", "x"), np.full((16, 16), seed, np.float32))},
                      attrs={"seed": seed})


def test_unreachable_endpoint_fails_after_bounded_retries_naming_the_url():
    opts = StoreOptions(endpoint=f"http://127.0.0.1:{_closed_port()}", access_key_id="k",
                        secret_access_key="s", max_retries=2, retry_timeout_s=3)
    root = ObjPath.from_url("s3://somebucket/data", opts)
    t0 = time.perf_counter()
    with pytest.raises(ObjectStoreError) as err:
        write_bytes_atomic(root / "week_layers" / "2024-05-06.json", b"{}")
    took = time.perf_counter() - t0
    assert err.value.kind == "unreachable"
    assert "s3://somebucket/data/week_layers/2024-05-06.json" in str(err.value)
    assert "2 retries" in str(err.value)
    assert took < 10
    with pytest.raises(ObjectStoreError, match="s3://somebucket/data/raw_scenes"):
        open_zarr(root / "raw_scenes" / "T00" / "2024-05-06.zarr")


def test_missing_credentials_is_refused_naming_the_url(monkeypatch):
    env = {"CROPASSETS_DATA": "s3://somebucket/data", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    root = load_settings(env).data_root
    assert isinstance(root, ObjPath)
    with pytest.raises(ObjectStoreError, match="s3://somebucket/data.*no credentials") as err:
        (root / "week_layers").is_dir()
    assert err.value.kind == "no-credentials"


def test_missing_bucket_is_named(s3_root):
    root = location(s3_root.replace(BUCKET, "no-such-bucket-here"), options())
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket-here' does not exist")\
            as err:
        write_bytes_atomic(root / "knee_report" / "knee.json", b"{}")
    assert err.value.kind == "no-bucket"
    assert f"{root}/knee_report/knee.json" in str(err.value)


def test_bucket_without_the_prefix_reads_as_not_written(s3_root):
    root = location(s3_root, options())
    cube = root / "weekly_cube" / "T00" / "2024-05-06.zarr"
    with pytest.raises(FileNotFoundError, match=f"partition {cube} has not been written"):
        open_zarr(cube)
    assert not cube.exists() and not root.is_dir()


def test_failed_zarr_write_publishes_nothing_and_leaves_no_version(s3_root):
    path = location(s3_root, options()) / "weekly_cube" / "T00" / "2024-05-06.zarr"
    write_zarr_atomic(_small(1), path)
    before = current_version(path)

    def explode(block: np.ndarray) -> np.ndarray:
        if block.sum() > 0:
            raise RuntimeError("composite failed mid-write")
        return block

    bad = xr.Dataset({"v": (("y", "x"), da.map_blocks(
        explode, da.arange(256, chunks=16).reshape(16, 16).astype(np.float32),
        dtype=np.float32))})
    with pytest.raises(RuntimeError, match="mid-write"):
        write_zarr_atomic(bad, path)
    assert current_version(path) == before
    assert set(versions(path)) == {before}  # the half-written version was removed
    assert open_zarr(path).attrs["seed"] == 1


@pytest.fixture(scope="module")
def iam_server():
    """A second moto server enforcing IAM: a read-write and a read-only user."""
    with moto_process("cropassets-iam", auth=True) as info:
        yield info


def _iam_opts(info: dict, user: str | None) -> StoreOptions:
    key, secret = info[user] if user else ("AKIAUNKNOWN000000000", "wrong")
    return StoreOptions(endpoint=str(info["endpoint"]), access_key_id=key,
                        secret_access_key=secret, max_retries=1, retry_timeout_s=2)


def test_read_only_store_is_refused_at_once_and_publishes_nothing(iam_server):
    writer = ObjPath.from_url("s3://cropassets-iam/data", _iam_opts(iam_server, "writer"))
    reader = ObjPath.from_url("s3://cropassets-iam/data", _iam_opts(iam_server, "reader"))
    cube = "weekly_cube/T00/2024-05-06.zarr"
    write_zarr_atomic(_small(1), writer / cube)
    published = current_version(writer / cube)
    assert open_zarr(reader / cube).attrs["seed"] == 1  # reading is allowed
    t0 = time.perf_counter()
    with pytest.raises(ObjectStoreError, match="s3://cropassets-iam/data/weekly_cube") as err:
        write_zarr_atomic(_small(2), reader / cube)
    assert err.value.kind == "denied" and time.perf_counter() - t0 < 5  # no retries of a 403
    assert current_version(writer / cube) == published
    assert set(versions(writer / cube)) == {published}
    with pytest.raises(ObjectStoreError, match="s3://cropassets-iam/data/sos_map/T00/x.tif"):
        write_cog(reader / "sos_map" / "T00" / "x.tif", np.ones((64, 64), np.uint16),
                  "EPSG:32647", Affine(10, 0, 0, 0, -10, 640), 0)
    assert not (writer / "sos_map" / "T00" / "x.tif").exists()


def test_wrong_credentials_are_refused_naming_the_url(iam_server):
    root = ObjPath.from_url("s3://cropassets-iam/data", _iam_opts(iam_server, None))
    with pytest.raises(ObjectStoreError, match="s3://cropassets-iam/data/week_layers") as err:
        (root / "week_layers" / "2024-05-06.json").read_bytes()
    assert err.value.kind == "denied"
