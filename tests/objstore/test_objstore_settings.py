"""Settings of an object-store data root: read from the AWS variables in settings.py only."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from cropassets.core.objstore import ObjPath, gdal_options, location
from cropassets.resources import DataRoot
from cropassets.settings import REPO_ROOT, load_settings

ENV = {"CROPASSETS_DATA": "s3://crops/season/2025", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
       "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1",
       "CROPASSETS_S3_RETRIES": "3", "CROPASSETS_S3_TIMEOUT": "2,30",
       "CROPASSETS_S3_ORPHAN_GRACE": "60"}


def test_an_s3_data_root_and_its_options():
    s = load_settings(ENV)
    root = s.data_root
    assert isinstance(root, ObjPath)
    assert (root.bucket, root.key, str(root)) == ("crops", "season/2025", ENV["CROPASSETS_DATA"])
    opts = root.options
    assert opts == s.object_store and opts.allow_http and opts.region == "eu-west-1"
    assert (opts.max_retries, opts.connect_timeout_s, opts.timeout_s) == (3, 2.0, 30.0)
    assert opts.orphan_grace_s == 60.0 and opts.has_credentials
    assert "secret" not in repr(s) and "secret" not in repr(root)
    assert s.world_dir == (REPO_ROOT / "data" / "demo").resolve()  # the demo world stays local
    assert pickle.loads(pickle.dumps(root / "x")).options == opts  # what a dask task gets
    gdal = gdal_options(opts, "crops")
    assert gdal["AWS_S3_ENDPOINT"] == "127.0.0.1:9000" and gdal["AWS_HTTPS"] == "NO"
    assert gdal["AWS_VIRTUAL_HOSTING"] == "FALSE" and gdal["GDAL_HTTP_MAX_RETRY"] == "3"
    assert gdal["CPL_VSIL_CURL_NON_CACHED"] == "/vsis3/crops/"


def test_https_endpoint_and_other_credential_sources():
    s = load_settings({"CROPASSETS_DATA": "s3://crops", "AWS_ENDPOINT_URL_S3": "https://s3.x.org",
                       "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"})
    assert not s.object_store.allow_http and s.object_store.has_credentials
    assert gdal_options(s.object_store)["AWS_HTTPS"] == "YES"
    assert isinstance(s.data_root, ObjPath) and s.data_root.key == ""


@pytest.mark.parametrize(("env", "message"), [
    ({"CROPASSETS_DATA": "gs://bucket/x"}, "a folder or an s3://bucket/prefix"),
    ({"CROPASSETS_DATA": "s3:///x"}, "no valid bucket"),
    ({"CROPASSETS_S3_RETRIES": "many"}, "CROPASSETS_S3_RETRIES must be a whole number"),
    ({"CROPASSETS_S3_TIMEOUT": "5,-1"}, "CROPASSETS_S3_TIMEOUT must be a number"),
])
def test_bad_object_store_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(env)


def test_local_roots_are_plain_paths(tmp_path, monkeypatch):
    assert load_settings({"CROPASSETS_DATA": str(tmp_path)}).data_root == tmp_path
    assert location(str(tmp_path)) == tmp_path and type(location(str(tmp_path))) is type(tmp_path)
    assert isinstance(DataRoot(root=str(tmp_path)).raw_scenes_path("T0", "2024-05-06"), Path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cube = DataRoot(root="s3://crops/x").weekly_cube_path("T0", "2024-05-06")
    assert isinstance(cube, ObjPath) and cube.options.region == "eu-west-1"
    assert str(cube) == "s3://crops/x/weekly_cube/T0/2024-05-06.zarr"
    assert (cube / ".." / ".." / ".." / "..").resolve().key == ""
    assert not (cube / "../../../../../etc").resolve().is_relative_to(location("s3://crops/x"))
