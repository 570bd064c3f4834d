"""Object storage against a real S3-compatible server (moto, 127.0.0.1): objects, Zarr
versions published by a pointer, a writer killed mid-write, and bad stores."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from cropassets.core.objstore import (
    ObjectStoreError,
    S3Options,
    current_version,
    delete_prefix,
    exists,
    get_bytes,
    list_keys,
    open_zarr_versioned,
    partition_exists,
    put_bytes,
    split_url,
    write_zarr_versioned,
)
from cropassets.core.storage import open_zarr, raw_scenes_encoding, write_zarr_atomic

BUCKET = "s3://cropassets-test"


def _scenes(seed: int, size: int = 64) -> xr.Dataset:
    """A raw-scenes-like dataset: reflectance (scaled uint16 on disk), counts, NaNs."""
    rng = np.random.default_rng(seed)
    red = rng.uniform(0.0, 0.6, (2, size, size)).astype(np.float32)
    red[0, :5] = np.nan
    return xr.Dataset(
        {"red": (("time", "y", "x"), red),
         "vv": (("time", "y", "x"), rng.normal(-12, 3, (2, size, size)).astype(np.float32)),
         "n_obs": (("y", "x"), rng.integers(0, 5, (size, size)).astype(np.uint8))},
        coords={"time": np.array(["2025-05-05", "2025-05-07"], dtype="datetime64[ns]"),
                "y": np.arange(size)[::-1] * 10.0 + 5, "x": np.arange(size) * 10.0 + 5})


def test_urls_are_parsed_and_bad_ones_named():
    assert split_url("s3://my-bucket/a/b/") == ("my-bucket", "a/b")
    assert split_url("s3://my-bucket") == ("my-bucket", "")
    for bad in ("s3://B/x", "/local/path", "s3://ab", "gs://bucket/x"):
        with pytest.raises(ValueError, match="s3://bucket/prefix"):
            split_url(bad)


def test_objects_round_trip(s3_server):
    _, opts = s3_server
    url = f"{BUCKET}/objects/week_layers/2025-05-05.json"
    assert not exists(url, opts)
    with pytest.raises(FileNotFoundError, match=url):
        get_bytes(url, opts)
    assert put_bytes(url, b'{"week": 1}', opts) == 11
    assert exists(url, opts) and get_bytes(url, opts) == b'{"week": 1}'
    put_bytes(url, b'{"week": 2}', opts)  # replaced whole
    assert get_bytes(url, opts) == b'{"week": 2}'
    put_bytes(f"{BUCKET}/objects/week_layers/2025-05-12.json", b"{}", opts)
    assert sorted(list_keys(f"{BUCKET}/objects/week_layers", opts)) == [
        f"{BUCKET}/objects/week_layers/2025-05-05.json",
        f"{BUCKET}/objects/week_layers/2025-05-12.json"]
    assert delete_prefix(f"{BUCKET}/objects", opts) == 2
    assert list(list_keys(f"{BUCKET}/objects", opts)) == []


def test_zarr_partition_equals_the_local_one(s3_server, tmp_path):
    _, opts = s3_server
    ds = _scenes(1)
    enc = raw_scenes_encoding(ds)
    url = f"{BUCKET}/data/raw_scenes/T00/2025-05-05.zarr"
    assert not partition_exists(url, opts)
    with pytest.raises(FileNotFoundError, match=f"partition {url} has not been written"):
        open_zarr_versioned(url, opts)
    size = write_zarr_versioned(ds, url, enc, opts)
    local_size = write_zarr_atomic(ds, tmp_path / "p.zarr", enc)
    remote, local = open_zarr_versioned(url, opts).load(), open_zarr(tmp_path / "p.zarr").load()
    xr.testing.assert_identical(remote, local)
    assert remote["red"].dtype == np.float32 and np.isnan(remote["red"].values[0, :5]).all()
    assert size == local_size  # the same objects, byte for byte in size
    lazy = open_zarr_versioned(url, opts, dask=True)
    assert lazy["red"].chunks is not None
    np.testing.assert_array_equal(lazy["vv"].values, local["vv"].values)


def test_a_rewrite_publishes_whole_and_leaves_one_version(s3_server):
    _, opts = s3_server
    url = f"{BUCKET}/data/weekly_cube/T00/2025-05-05.zarr"
    write_zarr_versioned(_scenes(1), url, None, opts)
    first = current_version(url, opts)
    write_zarr_versioned(_scenes(2), url, None, opts)
    second = current_version(url, opts)
    assert second != first
    xr.testing.assert_identical(open_zarr_versioned(url, opts).load(), _scenes(2))
    versions = {k.split("/versions/")[1].split("/")[0]
                for k in list_keys(f"{url}/versions", opts)}
    assert versions == {second}  # the replaced version is gone


WRITER = """
import sys, numpy as np, xarray as xr
from cropassets.core.objstore import S3Options, write_zarr_versioned
opts = S3Options(endpoint=sys.argv[1], access_key_id="test", secret_access_key="test",
                 allow_http=True)
rng = np.random.default_rng(5)
big = xr.Dataset({f"v{i}": (("y", "x"), rng.random((1024, 1024), dtype=np.float32))
                  for i in range(16)}).chunk({"y": 64, "x": 64})
print("start", flush=True)
write_zarr_versioned(big, sys.argv[2], None, opts)
print("done", flush=True)
"""


def test_a_writer_killed_mid_write_leaves_the_old_partition(s3_server):
    endpoint, opts = s3_server
    url = f"{BUCKET}/data/sos_series/T00/2025-05-12.zarr"
    old = _scenes(3)
    write_zarr_versioned(old, url, None, opts)
    published = current_version(url, opts)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, endpoint, url],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the new version is being uploaded
            if len(list(list_keys(f"{url}/versions", opts))) > 40:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writer never started uploading")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    keys = list(list_keys(f"{url}/versions", opts))
    orphans = {k.split("/versions/")[1].split("/")[0] for k in keys} - {published}
    assert len(orphans) == 1  # the killed writer's partial version exists ...
    assert current_version(url, opts) == published  # ... but is not published
    xr.testing.assert_identical(open_zarr_versioned(url, opts).load(), old)
    # the next write cleans the orphan (here at once; by default only once an hour old)
    write_zarr_versioned(_scenes(4), url, None, opts, orphan_age_s=0)
    left = {k.split("/versions/")[1].split("/")[0] for k in list_keys(f"{url}/versions", opts)}
    assert left == {current_version(url, opts)}


def test_an_unreachable_store_is_named_after_bounded_retries():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = S3Options(endpoint=f"http://127.0.0.1:{port}", access_key_id="k",
                     secret_access_key="s", allow_http=True, max_retries=1,
                     retry_timeout_s=2.0, connect_timeout_s=1.0)
    url = f"{BUCKET}/data/knee_report/knee.json"
    with pytest.raises(ObjectStoreError, match=rf"object store {url}: the store could not be "
                       rf"reached \(endpoint http://127.0.0.1:{port}\) after 1 retries"):
        put_bytes(url, b"{}", opts)
    with pytest.raises(ObjectStoreError, match="could not be reached"):
        write_zarr_versioned(_scenes(1), f"{BUCKET}/data/x.zarr", None, opts)


def test_a_missing_bucket_is_named(s3_server):
    _, opts = s3_server
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket' does not exist"):
        put_bytes("s3://no-such-bucket/data/a.json", b"{}", opts)
    with pytest.raises(ObjectStoreError, match="s3://no-such-bucket/data/raw_scenes"):
        write_zarr_versioned(_scenes(1), "s3://no-such-bucket/data/raw_scenes/T00/w.zarr",
                             None, opts)


def test_an_empty_prefix_reads_as_not_written(s3_server):
    _, opts = s3_server
    url = f"{BUCKET}/nothing-here/weekly_cube/T00/2025-05-05.zarr"
    assert not partition_exists(url, opts)
    with pytest.raises(FileNotFoundError, match="has not been written"):
        open_zarr_versioned(url, opts)


@pytest.fixture(scope="module")
def s3_with_auth():
    """A moto server that checks credentials and IAM policies (its own process).

    Its first 4 requests are unauthenticated (bucket, user, policy, key); every later one
    must be signed by a known key and allowed by the user's policy.
    """
    import json
    import socket

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto server did not start")
                time.sleep(0.1)
        admin = dict(endpoint_url=endpoint, aws_access_key_id="admin",
                     aws_secret_access_key="admin", region_name="us-east-1")
        boto3.client("s3", **admin).create_bucket(Bucket="cropassets-test")
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": "*"}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_read_only_key_and_wrong_credentials_are_named(s3_with_auth):
    endpoint, key_id, secret = s3_with_auth
    url = f"{BUCKET}/data/week_layers/2025-05-05.json"
    common = dict(endpoint=endpoint, allow_http=True, max_retries=1, retry_timeout_s=2.0)
    read_only = S3Options(access_key_id=key_id, secret_access_key=secret, **common)
    with pytest.raises(ObjectStoreError, match=rf"object store {url}: access denied: .*"
                       r"a read-only key cannot write"):
        put_bytes(url, b"{}", read_only)
    with pytest.raises(FileNotFoundError, match=url):  # it may read: nothing is there
        get_bytes(url, read_only)
    with pytest.raises(ObjectStoreError, match="access denied"):
        write_zarr_versioned(_scenes(1), f"{BUCKET}/data/raw_scenes/T00/w.zarr", None,
                             read_only)
    assert list(list_keys(f"{BUCKET}/data", read_only)) == []  # nothing partial published
    wrong = S3Options(access_key_id=key_id, secret_access_key="not-the-secret", **common)
    with pytest.raises(ObjectStoreError, match=rf"{url}: access denied: check the credentials"):
        get_bytes(url, wrong)


def test_dask_workers_in_other_processes_write_and_read_a_partition(s3_server):
    from distributed import Client, LocalCluster

    _, opts = s3_server
    url = f"{BUCKET}/data/weekly_cube/T01/2025-05-05.zarr"
    ds = _scenes(7, size=128).chunk({"y": 32, "x": 32})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        write_zarr_versioned(ds, url, raw_scenes_encoding(ds), opts)
        lazy = open_zarr_versioned(url, opts, dask=True)
        total = client.compute(lazy["vv"].sum()).result()
        workers = client.run(os.getpid)
    assert os.getpid() not in workers.values()  # the work ran in another process
    np.testing.assert_allclose(float(total), float(ds["vv"].sum()), rtol=1e-6)
    xr.testing.assert_identical(open_zarr_versioned(url, opts).load()["vv"], ds["vv"].load())


def test_a_cog_published_there_is_read_through_gdal_vsis3(s3_server, tmp_path, monkeypatch):
    import rasterio
    from rasterio.transform import from_origin
    from rio_cogeo.cogeo import cog_validate

    from cropassets.core.objstore import gdal_env, put_file
    from cropassets.core.publish.cog import write_cog

    _, opts = s3_server
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", opts.access_key_id)  # where GDAL reads them
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", opts.secret_access_key)
    classes = np.random.default_rng(3).integers(1, 6, (2, 300, 300)).astype(np.uint8)
    local = write_cog(tmp_path / "2025-05-19.tif", classes, "EPSG:32647",
                      from_origin(600000, 1700000, 10, 10), 255, overview_resampling="mode",
                      tags={"model_week": 3})
    url = f"{BUCKET}/data/crop_map/T00/2025-05-19.tif"
    assert put_file(local, url, opts) == local.stat().st_size
    with rasterio.Env(**gdal_env(opts)):
        with rasterio.open(url) as src:
            assert (src.crs.to_epsg(), src.transform, src.nodata) == (
                32647, from_origin(600000, 1700000, 10, 10), 255)
            np.testing.assert_array_equal(src.read(), classes)
            assert src.tags()["model_week"] == "3" and src.overviews(1)
        valid, errors, _ = cog_validate(url, quiet=True)
    assert valid, errors
