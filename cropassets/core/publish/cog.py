"""Cloud-Optimized GeoTIFF writing: validated, tagged, written atomically."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from cropassets.core.objstore import Location, ObjPath, location

OverviewResampling = Literal["nearest", "bilinear", "cubic", "cubic_spline", "lanczos",
                             "average", "mode", "gauss", "rms"]
"""Resampling methods rio-cogeo accepts for overviews."""


class CogError(RuntimeError):
    """A COG failed validation after writing."""


def write_cog(path: str | Path | ObjPath, data: np.ndarray, crs: str, transform: Affine,
              nodata: float | int | None, *, overview_resampling: OverviewResampling = "nearest",
              colormap: Mapping[int, Sequence[int]] | None = None,
              tags: Mapping[str, object] | None = None,
              band_descriptions: Sequence[str] | None = None,
              blocksize: int = 256) -> Location:
    """Write ``data`` as a validated COG at ``path`` (temp file, validate, rename).

    On object storage (``path`` an ``s3://`` location) the temporary file is local and,
    once valid, PUT in one request: readers see the old COG or the new one.

    Args:
        path: Destination ``.tif``.
        data: (bands, y, x) or (y, x) array; its dtype is the file's dtype.
        crs: CRS of the grid, e.g. ``"EPSG:32647"``.
        transform: Affine transform of the grid.
        nodata: Nodata value written to the file.
        overview_resampling: ``"mode"`` for classes, ``"average"``/``"nearest"`` otherwise.
        colormap: Palette (``{value: (r, g, b, a)}``) of band 1 (a class band); further
            bands (e.g. a confidence band) stay grey-scale.
        tags: Dataset tags (values are stringified) so the file describes itself.
        band_descriptions: One description per band.
        blocksize: Internal tile size in pixels.

    Returns:
        The final path.
    """
    arr = data[None] if data.ndim == 2 else data
    if colormap and arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: a colormap needs uint8/uint16 classes, got {arr.dtype}")
    final = location(path)
    if isinstance(final, ObjPath):
        with tempfile.TemporaryDirectory(prefix="cropassets-cog-") as folder:
            try:
                local = write_cog(Path(folder) / final.name, data, crs, transform, nodata,
                                  overview_resampling=overview_resampling, colormap=colormap,
                                  tags=tags, band_descriptions=band_descriptions,
                                  blocksize=blocksize)
            except CogError:
                raise
            except Exception as err:  # GDAL's or Python's: e.g. the local disk is full
                raise OSError(f"{final}: staging the COG in {folder} failed, nothing was "
                              f"published: {err}") from err
            final.upload(Path(str(local)))
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex}.tif")
    profile = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                   dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata)
    try:
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(arr)
                if colormap:  # palette on band 1 only; rio-cogeo copies it from the source
                    dst.colorinterp = [ColorInterp.palette] + [ColorInterp.gray] * (len(arr) - 1)
                    dst.write_colormap(1, dict(colormap))
                if band_descriptions:
                    for i, desc in enumerate(band_descriptions, 1):
                        dst.set_band_description(i, desc)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
            with mem.open() as src:  # reopened read-only: cog_translate needs that
                out_profile = dict(cog_profiles.get("deflate"), blockxsize=blocksize,
                                   blockysize=blocksize)
                if arr.shape[0] > 1:  # extra samples are data (e.g. confidence), not alpha;
                    # PHOTOMETRIC=MINISBLACK keeps band 1's palette and no alpha band
                    out_profile["photometric"] = "MINISBLACK"
                cog_translate(src, tmp, out_profile, overview_resampling=overview_resampling,
                              overview_level=overview_levels(arr.shape[1:]),
                              quiet=True, in_memory=True, forward_band_tags=True,
                              config={"GDAL_PAM_ENABLED": "NO"})
        valid, errors, _ = cog_validate(tmp, quiet=True)
        if not valid:
            raise CogError(f"{final}: not a valid COG: {errors}")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def overview_levels(shape: tuple[int, int], smallest: int = 8, most: int = 6) -> int:
    """Overview count for a web map: halvings until the smaller side is below ``smallest`` px.

    At most ``most`` levels: a web map zoomed out by 6 levels reads overviews, never the
    full resolution (rio-cogeo's default stops at the block size, 1 level for 512²).
    """
    side = min(shape)
    levels = 0
    while levels < most and side // 2 ** (levels + 1) >= smallest:
        levels += 1
    return levels

