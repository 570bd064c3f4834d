"""Cloud-optimised GeoTIFF writing through rio-cogeo, atomically (temp file + rename)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles


def _blocksize(shape: tuple[int, int]) -> int:
    small = min(shape)
    return 256 if small >= 512 else 128 if small >= 128 else 64


def write_cog(path: Path, data: np.ndarray, *, crs: str, transform: Affine,
              nodata: float | int | None, resampling: str = "average",
              colormap: dict[int, tuple[int, int, int, int]] | None = None,
              zlevel: int = 1) -> Path:
    """Write ``data`` (y, x) or (band, y, x) as a deflate COG with internal overviews.

    The array goes to an in-memory GeoTIFF that is closed and reopened read-only before
    ``cog_translate`` (which fails on a dataset still open for writing), the COG is
    written next to ``path`` under a temporary name and renamed into place, so readers
    never see half a file.

    Args:
        path: Destination ``.tif``.
        data: Array (y, x) or (band, y, x); its dtype is the file's dtype.
        crs: CRS string, e.g. ``"EPSG:32647"``.
        transform: Affine transform of the grid.
        nodata: Nodata value or None.
        resampling: Overview resampling (``average`` for continuous, ``nearest`` or
            ``mode`` for classes).
        colormap: Optional palette for a single-band integer raster.
        zlevel: Deflate level (1 is fast and nearly as small for noisy data).

    Returns:
        ``path``.
    """
    arr = data[None] if data.ndim == 2 else data
    count, h, w = arr.shape
    profile = {"driver": "GTiff", "dtype": arr.dtype.name, "count": count, "height": h,
               "width": w, "crs": crs, "transform": transform, "nodata": nodata}
    dst = dict(cog_profiles.get("deflate"))
    bs = _blocksize((h, w))
    dst.update(blockxsize=bs, blockysize=bs, zlevel=zlevel,
               predictor=3 if arr.dtype.kind == "f" else 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.tif")
    try:
        with MemoryFile() as mem:
            with mem.open(**profile) as ds:
                ds.write(arr)
            with mem.open() as src, warnings.catch_warnings():
                # rio-cogeo 7 multiplies Affine objects with `*` (deprecated in affine 3)
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                cog_translate(src, str(tmp), dst, nodata=nodata, overview_resampling=resampling,
                              in_memory=True, quiet=True, colormap=colormap)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
