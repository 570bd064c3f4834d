"""Atomic partition writes: a crash mid-write leaves no partial partition and keeps the old one."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from cropassets.core.storage import (
    open_zarr,
    partition_path,
    raw_scenes_encoding,
    write_zarr_atomic,
)


def _failing_dataset():
    def boom(block):
        raise RuntimeError("disk full (simulated)")

    arr = da.zeros((4, 64, 64), chunks=(1, 64, 64), dtype=np.float32)
    arr = arr.map_blocks(lambda b, block_info=None: boom(b) if block_info[0]["chunk-location"][0]
                         == 2 else b, dtype=np.float32)
    return xr.Dataset({"red": (("s2_time", "y", "x"), arr)})


def test_crash_mid_write_leaves_no_partial_partition(tmp_path):
    path = partition_path(tmp_path, "raw_scenes", "T00", "2024-05-06")
    with pytest.raises(RuntimeError, match="disk full"):
        write_zarr_atomic(_failing_dataset(), path)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # temp directory cleaned up


def test_failed_rewrite_keeps_previous_partition(tmp_path):
    path = partition_path(tmp_path, "raw_scenes", "T00", "2024-05-06")
    good = xr.Dataset({"red": (("s2_time", "y", "x"), np.full((1, 8, 8), 0.25, np.float32))})
    write_zarr_atomic(good, path, raw_scenes_encoding(good))
    with pytest.raises(RuntimeError):
        write_zarr_atomic(_failing_dataset(), path)
    back = open_zarr(path)
    assert back["red"].dtype == np.float32
    np.testing.assert_allclose(back["red"].values, 0.25, atol=1e-7)


def test_reflectance_round_trip_is_lossless_to_dn(tmp_path):
    dn = np.array([[[1, 1000, 1234, 13000]]], np.uint16)
    refl = dn.astype(np.float32) * np.float32(1e-4) + np.float32(-0.1)
    refl[0, 0, 0] = np.nan
    ds = xr.Dataset({"nir": (("s2_time", "y", "x"), refl)})
    path = tmp_path / "x.zarr"
    write_zarr_atomic(ds, path, raw_scenes_encoding(ds))
    back = open_zarr(path)["nir"].values
    assert np.isnan(back[0, 0, 0])
    np.testing.assert_allclose(back[0, 0, 1:], refl[0, 0, 1:], atol=1e-6)


def test_partition_path_rejects_traversal(tmp_path):
    with pytest.raises(ValueError, match="tile '..'"):
        partition_path(tmp_path, "raw_scenes", "..", "2024-05-06")


def test_rewrite_removes_old_copies_a_killed_writer_left(tmp_path):
    path = partition_path(tmp_path, "raw_scenes", "T00", "2024-05-06")
    good = xr.Dataset({"red": (("s2_time", "y", "x"), np.full((1, 8, 8), 0.25, np.float32))})
    write_zarr_atomic(good, path)
    # a writer SIGKILLed between renaming the old version away and removing it
    stale = path.with_name(f".{path.name}.old-0123abcd")
    (stale / "red").mkdir(parents=True)
    (stale / "red" / "0.0.0").write_bytes(b"old chunk")
    other = path.with_name(".2024-05-13.zarr.old-0123abcd")  # another partition's: kept
    other.mkdir()
    write_zarr_atomic(good, path)
    assert sorted(p.name for p in path.parent.iterdir()) == [other.name, path.name]
