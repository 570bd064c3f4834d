"""The served model of week k run over a whole tile, and the record of which model that is.

Weekly cubes -> the served model (:mod:`cropassets.ml.served`: the CNN2D on CWT scalograms,
the random forest or their combination, whichever won on validation when
``cnn2d_checkpoint[k]`` was trained) -> class and confidence per pixel. Pixels stream
through it in strips of rows, so the inputs of one batch and the raw series of one strip
are all that is held besides the two (y, x) uint8 outputs: memory does not grow with the
tile beyond the output arrays. :func:`model_record` is the record ``week_model`` writes and
:func:`load_record_model` loads what it names. The published COG and its tags:
:mod:`cropassets.core.publish.crop_products`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from cropassets.core.legend import CLASS_NODATA
from cropassets.core.objstore import ObjPath, location, relative_posix
from cropassets.core.seasons import SeasonWeek
from cropassets.core.storage import open_zarr, open_zarr_array
from cropassets.core.week_model_record import WeekModelRecord
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.served import ServedModel, file_sha256, load_served

__all__ = ["cube_features", "load_record_model", "model_record", "predict_tile"]


def cube_features(path: Path) -> list[str]:
    """Feature names of a weekly cube (its ``feature`` coordinate)."""
    return [str(f) for f in open_zarr(path)["feature"].values]


def predict_tile(cube_paths: Sequence[Path], checkpoint: Checkpoint | ServedModel, *,
                 strip_rows: int = 128, batch_size: int | None = None,
                 device: torch.device | str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class code and confidence of every pixel of a tile at week k = ``checkpoint.n_steps``.

    Args:
        cube_paths: ``weekly_cube`` partitions of weeks 1..w of one season and tile, in week
            order (w >= k; only the first k are read: rule 1, nothing after week k).
        checkpoint: The model of sequence length k: what the week serves
            (:func:`cropassets.ml.served.load_served`), or a checkpoint, whose CNN2D is then
            used.
        strip_rows: Rows read and predicted at a time, within blocks one stored Zarr chunk
            wide (the raw series of one strip is rows x chunk width x F x k float32).
        batch_size: Pixels per model batch (default: the served model's, 2048 for the
            CNN2D, 16384 for the forest).
        device: Torch device (default CUDA when present).
        progress: Called with (pixels done, pixels total) after each strip.
        rows: Only rows ``r0:r1`` of the tile (a sample of a large tile, e.g. for a
            benchmark); the outputs then cover those rows. Default: every row.

    Returns:
        ``(class_code, confidence)``, both (y, x) uint8: class code from the model's
        ``class_codes``, confidence = probability of the class x 100 rounded (0-100: softmax
        for the CNN2D, share of tree votes for the forest, their mean for the combination);
        :data:`~cropassets.core.legend.CLASS_NODATA` (255) in both where the pixel had no clear
        observation in any feature up to week k.

    Raises:
        ValueError: Fewer cubes than k, cube features missing the checkpoint's, or class
            codes that do not fit uint8.
    """
    model = checkpoint if isinstance(checkpoint, ServedModel) else ServedModel.cnn2d(checkpoint)
    k = model.n_steps
    if len(cube_paths) < k:
        raise ValueError(f"the week-{k} model needs weekly cubes of weeks 1..{k}, "
                         f"got {len(cube_paths)}")
    codes = np.asarray(model.class_codes)
    if codes.dtype.kind not in "iu" or codes.min() < 0 or codes.max() >= CLASS_NODATA:
        raise ValueError(f"class codes {codes.tolist()} must be integers in 0..254")
    names = cube_features(cube_paths[0])
    missing = [f for f in model.features if f not in names]
    if missing:
        raise ValueError(f"weekly cube {cube_paths[0]} lacks features {missing} the model "
                         f"needs; it has {names}")
    pick = [names.index(f) for f in model.features]
    arrays = [open_zarr_array(p, "features") for p in cube_paths[:k]]
    ny, nx = arrays[0].shape[1:]
    for path, a in zip(cube_paths[:k], arrays, strict=True):
        if a.shape[1:] != (ny, nx):
            raise ValueError(f"weekly cube {path} is {a.shape[1:]}, not the tile's {(ny, nx)}")
    r0, r1 = rows if rows is not None else (0, ny)
    if not 0 <= r0 < r1 <= ny:
        raise ValueError(f"rows {rows} are not within the tile's 0..{ny}")
    cls = np.full((r1 - r0, nx), CLASS_NODATA, dtype=np.uint8)
    conf = np.full((r1 - r0, nx), CLASS_NODATA, dtype=np.uint8)
    lut = codes.astype(np.uint8)
    block_x = int(arrays[0].chunks[2])  # one stored chunk wide: reads never span chunks
    done = 0
    for x0 in range(0, nx, block_x):
        x1 = min(x0 + block_x, nx)
        for y0 in range(r0, r1, strip_rows):
            y1 = min(y0 + strip_rows, r1)
            # F,T,y,x
            strip = np.stack([np.asarray(a[:, y0:y1, x0:x1])[pick] for a in arrays], axis=1)
            series = strip.reshape(len(pick), k, -1).transpose(2, 0, 1)  # (N, F, T)
            idx, p = model.predict(np.ascontiguousarray(series, dtype=np.float32),
                                   batch_size=batch_size, device=device)
            ok = idx >= 0
            c = np.full(idx.shape, CLASS_NODATA, dtype=np.uint8)
            c[ok] = lut[idx[ok]]
            q = np.full(idx.shape, CLASS_NODATA, dtype=np.uint8)
            q[ok] = np.clip(np.round(p[ok] * 100), 0, 100).astype(np.uint8)
            cls[y0 - r0:y1 - r0, x0:x1] = c.reshape(y1 - y0, x1 - x0)
            conf[y0 - r0:y1 - r0, x0:x1] = q.reshape(y1 - y0, x1 - x0)
            done += (y1 - y0) * (x1 - x0)
            if progress:
                progress(done, (r1 - r0) * nx)
    return cls, conf


def model_record(week: SeasonWeek, served: ServedModel, root: str | Path | ObjPath,
                 knee_week: int | None) -> WeekModelRecord:
    """What ``week_model`` records for a calendar week: the model that maps it.

    Args:
        week: The calendar week (its week of season k picks the checkpoint).
        served: What checkpoint k serves (:func:`~cropassets.ml.served.load_served`, read
            from a file under ``root``).
        root: Data root; paths are recorded relative to it.
        knee_week: Knee of the knee report, None before it exists.

    Returns:
        The record (:class:`~cropassets.core.week_model_record.WeekModelRecord`): week,
        season, checkpoint path and SHA-256, ``model_kind`` (cnn2d | random_forest |
        combination) and ``model_title``, ``accuracy`` and ``current_season_accuracy`` of
        the served model, both models' validation scores, the choice rule, the forest file
        and SHA-256 when the forest is used, classes, the knee week and the preliminary
        flag (k < knee).
    """
    if served.checkpoint_path is None:
        raise ValueError("the served model of a week must be read from a checkpoint file")
    rootp = location(root).resolve()
    ck = served.checkpoint_path.resolve()
    forest = served.forest_file.resolve() if served.forest_file is not None else None
    cur = served.current_season_accuracy
    return WeekModelRecord(
        week=week.key, season=week.season.id, week_of_season=week.week_of_season,
        checkpoint=relative_posix(ck, rootp),
        checkpoint_sha256=file_sha256(ck),
        model_kind=served.kind, model_title=served.title,
        accuracy=float(served.val_accuracy),
        current_season_accuracy=float(cur) if cur is not None else None,
        cnn2d_accuracy=served.record.get("cnn2d_val_accuracy"),
        random_forest_accuracy=served.record.get("random_forest_val_accuracy"),
        rule=served.record.get("rule", ""),
        forest=relative_posix(forest, rootp) if forest is not None else None,
        forest_sha256=file_sha256(forest) if forest is not None else None,
        class_codes=[int(c) for c in served.class_codes],
        class_names=list(served.class_names),
        knee_week=knee_week,
        preliminary=knee_week is None or week.week_of_season < knee_week,
    )


def load_record_model(root: str | Path | ObjPath, record: WeekModelRecord) -> ServedModel:
    """Load the model a ``week_model`` record names, refusing a stale record.

    Raises:
        FileNotFoundError: The checkpoint or the forest is missing (named).
        ValueError: The checkpoint now serves another kind of model than the record says
            (re-materialize week_model), or a forest that differs from the recorded one.
    """
    path = location(root) / record.checkpoint
    served = load_served(path)
    kind = record.model_kind
    if served.kind != kind:
        raise ValueError(f"week_model of {record.week} says {kind!r} maps the week, but "
                         f"checkpoint {path} now serves {served.kind!r}: re-materialize "
                         f"week_model for this week")
    want = record.forest_sha256
    if want and served.forest_file is not None and file_sha256(served.forest_file) != want:
        raise ValueError(f"random forest {served.forest_file} differs from the one week_model "
                         f"of {record.week} recorded: re-materialize week_model")
    return served
