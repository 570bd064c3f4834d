"""Crop-type map of a whole tile: weekly cubes -> CWT -> CNN2D -> class and confidence.

Pixels stream through :func:`cropassets.ml.predict.predict` in strips of rows, so the
scalograms of one batch and the raw series of one strip are all that is held besides the
two (y, x) uint8 outputs: memory does not grow with the tile beyond the output arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import zarr
from affine import Affine

from cropassets.core.cog import write_cog
from cropassets.core.legend import CLASS_NODATA, LegendEntry, legend_colormap
from cropassets.core.storage import open_zarr
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.predict import predict


def cube_features(path: Path) -> list[str]:
    """Feature names of a weekly cube (its ``feature`` coordinate)."""
    return [str(f) for f in open_zarr(path)["feature"].values]


def predict_tile(cube_paths: Sequence[Path], checkpoint: Checkpoint, *, strip_rows: int = 128,
                 batch_size: int = 2048, device: torch.device | str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Class code and confidence of every pixel of a tile at week k = ``checkpoint.n_steps``.

    Args:
        cube_paths: ``weekly_cube`` partitions of weeks 1..w of one season and tile, in week
            order (w >= k; only the first k are read: rule 1, nothing after week k).
        checkpoint: The model of sequence length k.
        strip_rows: Rows read and predicted at a time, within blocks one stored Zarr chunk
            wide (the raw series of one strip is rows x chunk width x F x k float32).
        batch_size: Pixels per CNN batch.
        device: Torch device (default CUDA when present).
        progress: Called with (pixels done, pixels total) after each strip.

    Returns:
        ``(class_code, confidence)``, both (y, x) uint8: class code from the checkpoint's
        ``class_codes``, confidence = softmax probability x 100 rounded (0-100);
        :data:`~cropassets.core.legend.CLASS_NODATA` (255) in both where the pixel had no clear
        observation in any feature up to week k.

    Raises:
        ValueError: Fewer cubes than k, cube features missing the checkpoint's, or class
            codes that do not fit uint8.
    """
    k = checkpoint.n_steps
    if len(cube_paths) < k:
        raise ValueError(f"the week-{k} model needs weekly cubes of weeks 1..{k}, "
                         f"got {len(cube_paths)}")
    codes = np.asarray(checkpoint.class_codes)
    if codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() >= CLASS_NODATA:
        raise ValueError(f"class codes {codes.tolist()} must be integers in 0..254")
    names = cube_features(cube_paths[0])
    missing = [f for f in checkpoint.features if f not in names]
    if missing:
        raise ValueError(f"weekly cube {cube_paths[0]} lacks features {missing} the model "
                         f"needs; it has {names}")
    pick = [names.index(f) for f in checkpoint.features]
    arrays = [zarr.open_array(Path(p) / "features", mode="r") for p in cube_paths[:k]]
    ny, nx = arrays[0].shape[1:]
    for p, a in zip(cube_paths[:k], arrays, strict=True):
        if a.shape[1:] != (ny, nx):
            raise ValueError(f"weekly cube {p} is {a.shape[1:]}, not the tile's {(ny, nx)}")
    cls = np.full((ny, nx), CLASS_NODATA, dtype=np.uint8)
    conf = np.full((ny, nx), CLASS_NODATA, dtype=np.uint8)
    lut = codes.astype(np.uint8)
    block_x = int(arrays[0].chunks[2])  # one stored chunk wide: reads never span chunks
    done = 0
    for x0 in range(0, nx, block_x):
        x1 = min(x0 + block_x, nx)
        for y0 in range(0, ny, strip_rows):
            y1 = min(y0 + strip_rows, ny)
            strip = np.stack([a[:, y0:y1, x0:x1][pick] for a in arrays], axis=1)  # F,T,y,x
            series = strip.reshape(len(pick), k, -1).transpose(2, 0, 1)  # (N, F, T)
            idx, p = predict(checkpoint, np.ascontiguousarray(series, dtype=np.float32),
                             batch_size=batch_size, device=device)
            ok = idx >= 0
            c = np.full(idx.shape, CLASS_NODATA, dtype=np.uint8)
            c[ok] = lut[idx[ok]]
            q = np.full(idx.shape, CLASS_NODATA, dtype=np.uint8)
            q[ok] = np.clip(np.round(p[ok] * 100), 0, 100).astype(np.uint8)
            cls[y0:y1, x0:x1] = c.reshape(y1 - y0, x1 - x0)
            conf[y0:y1, x0:x1] = q.reshape(y1 - y0, x1 - x0)
            done += (y1 - y0) * (x1 - x0)
            if progress:
                progress(done, ny * nx)
    return cls, conf


def write_crop_cog(path: str | Path, class_code: np.ndarray, confidence: np.ndarray, crs: str,
                   transform: Affine, legend: Sequence[LegendEntry],
                   tags: Mapping[str, object]) -> Path:
    """Write the crop map COG: band 1 class (palette = legend), band 2 confidence 0-100.

    Both bands uint8 with nodata 255; overviews by mode (a class is never averaged into
    another one); ``tags`` describe the file without the server (season, weeks, knee...).
    """
    if class_code.shape != confidence.shape:
        raise ValueError(f"class {class_code.shape} and confidence {confidence.shape} differ")
    unknown = set(np.unique(class_code).tolist()) - {e.code for e in legend} - {CLASS_NODATA}
    if unknown:
        raise ValueError(f"class codes {sorted(unknown)} are not in the legend")
    data = np.stack([class_code, confidence]).astype(np.uint8)
    return write_cog(path, data, crs, transform, CLASS_NODATA, overview_resampling="mode",
                     colormap=legend_colormap(legend), tags=tags,
                     band_descriptions=["class", "confidence"])


def class_shares(class_code: np.ndarray, legend: Sequence[LegendEntry],
                 pixel_area_m2: float) -> dict[str, dict[str, float]]:
    """Area (ha) and share (% of mapped pixels) of each legend class in a class map."""
    mapped = class_code != CLASS_NODATA
    n = max(int(mapped.sum()), 1)
    counts = np.bincount(class_code[mapped].ravel(), minlength=256)
    return {e.name: {"hectares": round(float(counts[e.code]) * pixel_area_m2 / 1e4, 2),
                     "percent": round(100.0 * float(counts[e.code]) / n, 2)} for e in legend}


def map_accuracy(class_code: np.ndarray, fields: np.ndarray,
                 class_of_field: Mapping[int, int]) -> dict[str, float | int]:
    """Agreement of a class map with labelled fields (current season's held-back labels).

    Args:
        class_code: (y, x) uint8 map, 255 = nodata.
        fields: (y, x) field ids on the same grid (0 = no field).
        class_of_field: Field id -> true class code.

    Returns:
        ``overall_accuracy`` over labelled pixels with a prediction, ``labelled_pixels``,
        ``nodata_pixels`` (labelled but unmapped); accuracy NaN when nothing is labelled.
    """
    if class_code.shape != fields.shape:
        raise ValueError(f"map {class_code.shape} and field raster {fields.shape} differ")
    top = int(fields.max()) if fields.size else 0
    lut = np.zeros(top + 1, dtype=np.int32)
    for fid, code in class_of_field.items():
        if 0 < int(fid) <= top:
            lut[int(fid)] = int(code)
    truth = lut[fields]
    labelled = truth > 0
    mapped = labelled & (class_code != CLASS_NODATA)
    n = int(mapped.sum())
    acc = float((class_code[mapped] == truth[mapped]).mean()) if n else float("nan")
    return {"overall_accuracy": acc, "labelled_pixels": n,
            "nodata_pixels": int((labelled & ~mapped).sum())}
