"""Crop map of a tile: streamed prediction from weekly cubes, the crop COG, area/accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from float_checks import assert_same_classes_up_to_ties
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate
from synthetic_series import make_labelled_series

from cropassets.core.legend import CLASS_NODATA, class_legend, legend_colormap
from cropassets.core.publish.crop_products import class_shares, map_accuracy, write_crop_cog
from cropassets.core.storage import open_zarr, write_zarr_atomic
from cropassets.ml import predict, train
from cropassets.ml.tile_predict import predict_tile
from cropassets.ml.train_config import TrainConfig

K = 8
SHAPE = (13, 25)  # 325 pixels: the synthetic pixels, then padding with all-NaN ones


@pytest.fixture(scope="module")
def model_and_cubes(tmp_path_factory):
    data = make_labelled_series(n_classes=3, fields_per_class=6, pixels_per_field=15,
                                n_steps=K + 2, n_features=3, seed=5, all_nan_pixels=3)
    ckpt = train(data.series, data.labels + 1, data.field_ids, K,
                 class_names=data.class_names, features=data.features,
                 config=TrainConfig(max_steps=40, eval_every=10, batch_size=64))
    n = SHAPE[0] * SHAPE[1]
    series = np.full((n, 3, K + 2), np.nan, np.float32)
    series[: len(data.series)] = data.series
    root = tmp_path_factory.mktemp("cubes")
    paths = []
    for t in range(K + 2):
        grid = series[:, :, t].T.reshape(3, *SHAPE)
        ds = xr.Dataset({"features": (("feature", "y", "x"), grid)},
                        coords={"feature": list(data.features)})
        p = root / f"week{t:02d}.zarr"
        write_zarr_atomic(ds, p)
        paths.append(p)
    return ckpt, paths, series


def test_predict_tile_equals_pixelwise_predict(model_and_cubes):
    ckpt, paths, series = model_and_cubes
    cls, conf = predict_tile(paths[:K], ckpt, strip_rows=4)
    idx, p = predict(ckpt, series, batch_size=50)
    codes = np.asarray(ckpt.class_codes)
    want_cls = np.where(idx >= 0, codes[np.maximum(idx, 0)], CLASS_NODATA).reshape(SHAPE)
    want_conf = np.where(idx >= 0, np.round(p * 100), CLASS_NODATA).reshape(SHAPE)
    # strips of 4 rows vs batches of 50 pixels: other GEMM / convolution shapes, so logits
    # equal to float32 rounding only; classes equal except at near-ties
    assert_same_classes_up_to_ties(cls, conf, want_cls, want_conf)
    assert cls.dtype == conf.dtype == np.uint8
    # pixels never observed are nodata, not class 0 or any class
    assert (cls.ravel()[len(series) - 5:] == CLASS_NODATA).all()
    valid = cls != CLASS_NODATA
    assert valid.sum() == 6 * 3 * 15 - 3 and conf[valid].max() <= 100


def test_strips_and_later_weeks_change_nothing(model_and_cubes, tmp_path):
    """Later weeks change nothing; strips, batches and chunks change nothing beyond float32
    rounding (other shapes run other BLAS / oneDNN kernels): classes agree except at
    near-ties, confidence within 1. The same call repeated is byte-identical."""
    ckpt, paths, _ = model_and_cubes
    ref = predict_tile(paths[:K], ckpt, strip_rows=128)
    for a, b in zip(ref, predict_tile(paths[:K], ckpt, strip_rows=128), strict=True):
        np.testing.assert_array_equal(a, b)  # same computation repeated
    # weeks K+1.. present, read in the same strips and batches: the same computation
    for a, b in zip(ref, predict_tile(paths, ckpt, strip_rows=128), strict=True):
        np.testing.assert_array_equal(a, b)
    again = predict_tile(paths, ckpt, strip_rows=5, batch_size=7)  # other strips and batches
    assert_same_classes_up_to_ties(*ref, *again)
    # cubes stored in chunks 7 px wide: blocks follow the chunks, same result
    chunked = []
    for p in paths[:K]:
        ds = open_zarr(p).load().chunk({"y": 6, "x": 7})
        ds["features"].encoding.pop("chunks", None)
        chunked.append(tmp_path / p.name)
        write_zarr_atomic(ds, chunked[-1])
    assert zarr.open_array(chunked[0] / "features", mode="r").chunks[1:] == (6, 7)
    assert_same_classes_up_to_ties(*ref, *predict_tile(chunked, ckpt, strip_rows=4))


def test_predict_tile_refuses_short_or_foreign_cubes(model_and_cubes, tmp_path):
    ckpt, paths, _ = model_and_cubes
    with pytest.raises(ValueError, match=f"weeks 1..{K}"):
        predict_tile(paths[: K - 1], ckpt)
    other = tmp_path / "other.zarr"
    write_zarr_atomic(xr.Dataset({"features": (("feature", "y", "x"),
                                               np.zeros((1, *SHAPE), np.float32))},
                                 coords={"feature": ["ndwi"]}), other)
    with pytest.raises(ValueError, match="lacks features"):
        predict_tile([other] * K, ckpt)


def test_tile_without_observations_is_all_nodata(model_and_cubes, tmp_path):
    ckpt, _, _ = model_and_cubes
    empty = tmp_path / "empty.zarr"
    write_zarr_atomic(xr.Dataset({"features": (("feature", "y", "x"),
                                               np.full((3, 4, 6), np.nan, np.float32))},
                                 coords={"feature": list(ckpt.features)}), empty)
    cls, conf = predict_tile([empty] * K, ckpt)
    assert (cls == CLASS_NODATA).all() and (conf == CLASS_NODATA).all()


LEGEND = class_legend([1, 2, 3], ["rice", "maize", "novel"])


def test_crop_cog_is_valid_with_palette_nodata_and_mode_overviews(tmp_path):
    # 2x2 blocks holding three 3s and one 1 at the top-left corner: nearest would pick 1,
    # an average 1.5; mode must pick 3
    block = np.array([[1, 3], [3, 3]], np.uint8)
    cls = np.tile(block, (300, 300))
    cls[:10, :10] = CLASS_NODATA
    conf = np.where(cls == CLASS_NODATA, CLASS_NODATA, 80).astype(np.uint8)
    path = write_crop_cog(tmp_path / "c.tif", cls, conf, "EPSG:32647",
                          from_origin(620000, 1620000, 10, 10), LEGEND, {"week": "2025-06-02"})
    assert cog_validate(path, quiet=True)[0]
    with rasterio.open(path) as src:
        assert src.count == 2 and src.dtypes == ("uint8", "uint8")
        assert src.nodatavals == (255, 255)
        assert src.colorinterp == (ColorInterp.palette, ColorInterp.gray)  # no alpha band
        assert src.descriptions == ("class", "confidence")
        cmap = src.colormap(1)
        for code, rgba in legend_colormap(LEGEND).items():
            if code != CLASS_NODATA:
                assert cmap[code] == rgba
        assert src.overviews(1)[:5] == [2, 4, 8, 16, 32] and len(src.overviews(1)) == 6
        assert src.tags()["OVERVIEW_RESAMPLING"] == "MODE"
        assert src.tags()["week"] == "2025-06-02"
        ov = src.read(1, out_shape=(300, 300))  # first overview
        assert set(np.unique(ov[10:, 10:]).tolist()) == {3}
        np.testing.assert_array_equal(src.read(1), cls)
    assert [p.name for p in tmp_path.iterdir()] == ["c.tif"]  # no temp or side files


def test_crop_cog_refuses_codes_outside_the_legend(tmp_path):
    cls = np.full((8, 8), 4, np.uint8)
    with pytest.raises(ValueError, match=r"class codes \[4\] are not in the legend"):
        write_crop_cog(tmp_path / "c.tif", cls, cls, "EPSG:32647",
                       from_origin(0, 0, 10, 10), LEGEND, {})
    assert not (tmp_path / "c.tif").exists()


def test_class_shares_and_map_accuracy():
    cls = np.array([[1, 1, 2, 255], [3, 3, 3, 3]], np.uint8)
    shares = class_shares(cls, LEGEND, pixel_area_m2=100.0)
    assert shares["rice"] == {"hectares": 0.02, "percent": pytest.approx(100 * 2 / 7, 0.01)}
    assert shares["novel"]["hectares"] == 0.04
    fields = np.array([[5, 5, 5, 5], [0, 6, 6, 6]], np.uint32)
    acc = map_accuracy(cls, fields, {5: 1, 6: 3})
    # field 5: 1,1 right, 2 wrong, 255 unmapped; field 6: three right
    assert acc == {"overall_accuracy": pytest.approx(5 / 6), "labelled_pixels": 6,
                   "nodata_pixels": 1}


def test_legend_colours_and_errors():
    assert [e.color for e in LEGEND[:2]] == ["#1b9e77", "#f2c500"]
    assert LEGEND[2].color.startswith("#") and len(LEGEND[2].color) == 7
    with pytest.raises(ValueError, match="255 = nodata"):
        class_legend([255], ["x"])




def test_rows_predict_a_band_of_the_tile(model_and_cubes):
    """A band of rows (a large tile's sample) equals those rows of the whole prediction."""
    ckpt, paths, _ = model_and_cubes
    whole = predict_tile(paths[:K], ckpt, strip_rows=2)
    band = predict_tile(paths[:K], ckpt, strip_rows=2, rows=(2, 5))
    assert band[0].shape == (3, SHAPE[1])
    assert_same_classes_up_to_ties(*band, whole[0][2:5], whole[1][2:5])
    with pytest.raises(ValueError, match=r"rows \(4, 99\) are not within the tile's 0..13"):
        predict_tile(paths[:K], ckpt, rows=(4, 99))
