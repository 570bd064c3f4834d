"""Weekly composites: one cloud-free feature image per week from that week's scenes."""

from __future__ import annotations

import gc
import itertools
import warnings
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from cropassets.core.cube.indices import (
    CLEAR_SCL,
    DEFAULT_FEATURES,
    check_features,
    clear_mask,
    lee_filter,
    normalized_difference,
    to_db,
)
from cropassets.core.objstore import Location, ObjPath, zarr_store

S2_FEATURES = {"ndvi": ("nir", "red"), "lswi": ("nir", "swir16"), "ndwi": ("green", "nir")}
S1_FEATURES = ("vv", "vh", "vh_vv")


def _nanmedian(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN; all-NaN -> NaN without a warning. (t, y, x) -> (y, x)."""
    if stack.shape[0] == 0:
        return np.full(stack.shape[1:], np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(stack, axis=0).astype(np.float32)


def s2_feature_stack(raw: xr.Dataset, feature: str, clear: np.ndarray) -> np.ndarray:
    """One S2 index for every scene, NaN where not clear. Returns (s2_time, y, x) float32."""
    a, b = S2_FEATURES[feature]
    out = normalized_difference(raw[a].values, raw[b].values)
    out[~clear] = np.nan
    return out


def s1_db_stacks(raw: xr.Dataset, lee_window: int, enl: float) -> dict[str, np.ndarray]:
    """Lee-filtered VV, VH in dB and VH-VV (dB) for every S1 scene, each (s1_time, y, x)."""
    out = {}
    for pol in ("vv", "vh"):
        scenes = raw[pol].values
        filtered = [to_db(lee_filter(s, lee_window, enl)) for s in scenes]
        out[pol] = np.stack(filtered) if filtered else np.zeros(scenes.shape, np.float32)
    out["vh_vv"] = out["vh"] - out["vv"]
    return out


def weekly_composite(raw: xr.Dataset, features: tuple[str, ...] = DEFAULT_FEATURES,
                     dilate_px: int = 1, lee_window: int = 5, enl: float = 4.4,
                     clear_classes: tuple[int, ...] = CLEAR_SCL) -> xr.Dataset:
    """Composite one week of raw scenes into per-pixel feature medians.

    Args:
        raw: A raw-scenes dataset (see :func:`cropassets.core.stac.scenes.load_week`) with dims
            (s2_time, s1_time, y, x).
        features: Feature names (see :data:`cropassets.core.cube.indices.FEATURE_BANDS`).
        dilate_px: Buffer (pixels) grown around SCL-masked pixels in each scene.
        lee_window: Lee filter window (pixels) for S1.
        enl: Equivalent number of looks of the S1 input.
        clear_classes: SCL codes treated as clear.

    Returns:
        Dataset with ``features`` (feature, y, x) float32: the median of the week's clear
        observations (indices unitless, S1 in dB), NaN where nothing clear was seen; and
        ``n_obs`` (sensor=[s2, s1], y, x) uint8: valid observations per pixel.
    """
    features = check_features(features)
    scl = raw["scl"].values
    clear = clear_mask(scl, dilate_px, clear_classes)
    s2_bands = ("red", "nir", "green", "swir16")
    for band in s2_bands:
        if band in raw:
            clear &= np.isfinite(raw[band].values)
    layers: dict[str, np.ndarray] = {}
    for f in features:
        if f in S2_FEATURES:
            layers[f] = _nanmedian(s2_feature_stack(raw, f, clear))
    s1 = None
    if any(f in S1_FEATURES for f in features):
        s1 = s1_db_stacks(raw, lee_window, enl)
        for f in features:
            if f in S1_FEATURES:
                layers[f] = _nanmedian(s1[f])
    s1_valid = (np.isfinite(raw["vv"].values) & np.isfinite(raw["vh"].values)).sum(0)
    data = np.stack([layers[f] for f in features]).astype(np.float32)
    n_obs = np.stack([clear.sum(0), s1_valid]).clip(0, 255).astype(np.uint8)
    ds = xr.Dataset(
        {"features": (("feature", "y", "x"), data),
         "n_obs": (("sensor", "y", "x"), n_obs)},
        coords={"feature": list(features), "sensor": ["s2", "s1"],
                "y": raw["y"].values, "x": raw["x"].values},
    )
    if raw.rio.crs is not None:
        ds = ds.rio.write_crs(raw.rio.crs).rio.write_transform(raw.rio.transform())
    return ds


GC_EVERY_BLOCKS = 4
"""Blocks composited between two full garbage collections."""
_BLOCKS_DONE = itertools.count()

_RAW_VARS = ("blue", "green", "red", "nir", "swir16", "scl", "vv", "vh")


class _BlockInput:
    """A block of the raw scenes, read by the task that composites it.

    ``dask.delayed`` computes a dask-backed argument before the task runs, and the
    scheduler runs those cheap reads ahead of the composites: a 10980² tile's whole week
    (6.7 GB) was in memory at once. Wrapped, the block is read inside its task, with the
    synchronous scheduler (also inside a dask.distributed worker).
    """

    def __init__(self, block: xr.Dataset) -> None:
        self.block = block

    def read(self) -> xr.Dataset:
        """The block's values in memory."""
        return self.block.compute(scheduler="sync")


def _composite_block(block_input: _BlockInput, store: Location, ys: slice, xs: slice, y0: int,
                     x0: int, features: tuple[str, ...], dilate_px: int, lee_window: int,
                     enl: float) -> None:
    """Composite one haloed block and write its rows ``ys`` x columns ``xs`` into ``store``.

    The block's top-left pixel is (``y0``, ``x0``) of the tile.
    """
    block = block_input.read()
    out = weekly_composite(block, features, dilate_px, lee_window, enl)
    out = out.isel(y=slice(ys.start - y0, ys.stop - y0), x=slice(xs.start - x0, xs.stop - x0))
    out = out.drop_vars(list(out.coords))
    out[["features", "n_obs"]].to_zarr(zarr_store(store), region={"y": ys, "x": xs},
                                       zarr_format=2)
    del out, block
    if next(_BLOCKS_DONE) % GC_EVERY_BLOCKS == GC_EVERY_BLOCKS - 1:
        # a dataset whose .rio accessor was used is a reference cycle: its arrays wait for
        # a full collection (a 10980² tile reached 10 GB without this; one costs ~0.2 s)
        gc.collect()


def write_weekly_composite(raw: xr.Dataset, path: str | Path | ObjPath,
                           features: tuple[str, ...] = DEFAULT_FEATURES, dilate_px: int = 1,
                           lee_window: int = 5, enl: float = 4.4, chunk: int = 1024,
                           scheduler: object = None) -> int:
    """Composite a (lazily opened) raw-scenes partition block by block into a Zarr store.

    Each ``chunk`` x ``chunk`` block is read with a halo of ``lee_window // 2 + dilate_px``
    pixels (clamped at the tile edge, where the filters replicate edge pixels as the
    unchunked call does), composited with :func:`weekly_composite`, trimmed and written
    into its region of the output. Each block is one dask task (``dask.delayed``); blocks
    are the output's Zarr chunks, so tasks write disjoint chunk files and may run in any
    order, in threads or on dask.distributed workers (which must see ``path``: a shared
    folder, or an object store, each task opening it from the picklable ``ObjPath``).
    Memory holds one block per running task whatever the tile area. The store is written
    to a temporary directory and renamed into place (on object storage: a new version,
    published by its pointer once every block is written).

    Args:
        raw: Raw-scenes dataset, dims (s2_time, s1_time, y, x); dask-backed or lazily
            indexed, so only each block is read.
        path: Output ``.zarr`` path.
        features: Feature names.
        dilate_px: Buffer (pixels) around SCL-masked pixels.
        lee_window: Lee filter window (pixels).
        enl: Equivalent number of looks of the S1 input.
        chunk: Block edge in pixels (also the Zarr chunk size).
        scheduler: Passed to :func:`dask.compute`: ``None`` = the current scheduler (a
            ``distributed.Client`` made current, else threads), ``"sync"`` = one block at
            a time.

    Returns:
        Bytes written.
    """
    import dask
    import dask.array as da

    from cropassets.core.storage import dir_size, zarr_target

    features = check_features(features)
    names = [n for n in _RAW_VARS if n in raw]
    ny, nx = raw.sizes["y"], raw.sizes["x"]
    halo = lee_window // 2 + dilate_px
    template = xr.Dataset(
        {"features": (("feature", "y", "x"),
                      da.zeros((len(features), ny, nx), dtype=np.float32,
                               chunks=(-1, chunk, chunk))),
         "n_obs": (("sensor", "y", "x"), da.zeros((2, ny, nx), dtype=np.uint8,
                                                  chunks=(-1, chunk, chunk)))},
        coords={"feature": list(features), "sensor": ["s2", "s1"],
                "y": raw["y"].values, "x": raw["x"].values})
    if raw.rio.crs is not None:
        template = template.rio.write_crs(raw.rio.crs).rio.write_transform(
            raw.rio.transform())
    with zarr_target(path) as tmp:
        template.to_zarr(zarr_store(tmp), mode="w", compute=False, zarr_format=2,
                         consolidated=True)
        tasks = []
        for y0 in range(0, ny, chunk):
            for x0 in range(0, nx, chunk):
                y1, x1 = min(y0 + chunk, ny), min(x0 + chunk, nx)
                ya, xa = max(0, y0 - halo), max(0, x0 - halo)
                # read inside the task (dask-backed or lazily indexed alike)
                block = raw[names].isel(y=slice(ya, min(ny, y1 + halo)),
                                        x=slice(xa, min(nx, x1 + halo)))
                tasks.append(dask.delayed(_composite_block, pure=False)(
                    _BlockInput(block), tmp, slice(y0, y1), slice(x0, x1), ya, xa, features,
                    dilate_px, lee_window, enl))
        dask.compute(*tasks, scheduler=scheduler)
        size = dir_size(tmp)
    return size
