"""Quality of published products: COG contracts, SOS dates in season, crop-map values.

:class:`CogContract` says what a product COG must be (docs/CONTRACTS.md); one constant per
product (``SOS_COG``, ``CROP_COG``, ``COVERAGE_COG``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from cropassets.core.objstore import ObjPath, gdal_path, location
from cropassets.core.quality.check_result import QualityResult, _share


@dataclass(frozen=True)
class CogContract:
    """What a product COG must be (docs/CONTRACTS.md): dtype, nodata, band count."""

    dtype: str
    nodata: float
    bands: int


SOS_COG = CogContract("uint16", 0, 1)
"""``sos_map``: uint16 day of year, nodata 0, one band."""
CROP_COG = CogContract("uint8", 255, 2)
"""``crop_map``: uint8 class code and confidence, nodata 255 on both bands."""
COVERAGE_COG = CogContract("uint16", 65535, 3)
"""``coverage_map``: uint16 observation counts (season, week, radar), nodata 65535."""


def cog_check(path: str | Path | ObjPath, contract: CogContract) -> QualityResult:
    """A file is a valid COG (rio-cogeo ``cog_validate``) with the contract's dtype/nodata.

    Args:
        path: The ``.tif``.
        contract: Expected dtype (every band), nodata (every band) and band count.

    Returns:
        Fails on a missing, unreadable or truncated file, a COG-layout error, or a dtype,
        nodata or band-count mismatch; metadata lists every problem.
    """
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    path = location(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = None
    meta: dict[str, Any] = {"path": str(path), "bytes": size or 0}
    problems: list[str] = []
    if size is None:
        return QualityResult(False, f"{path.name}: missing", {**meta, "problems": ["missing"]})
    try:
        valid, errors, warns = cog_validate(gdal_path(path), quiet=True)
        problems += [f"COG: {e}" for e in errors]
        meta["cog_warnings"] = list(warns)
        with rasterio.open(gdal_path(path)) as src:
            dtypes, nodatas, count = list(src.dtypes), list(src.nodatavals), src.count
            meta.update(dtypes=dtypes, nodata=[None if v is None else float(v) for v in nodatas],
                        bands=count, width=src.width, height=src.height,
                        overviews=len(src.overviews(1)))
            # every block decodes: a file cut short after its header reads as garbage
            for _, window in src.block_windows(1):
                src.read(window=window)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
        valid = False
        problems.append(f"unreadable: {type(exc).__name__}: {str(exc)[:200]}")
    else:
        if not valid and not errors:
            problems.append("COG: not valid")
        if count != contract.bands:
            problems.append(f"{count} bands, expected {contract.bands}")
        if any(d != contract.dtype for d in dtypes):
            problems.append(f"dtype {dtypes}, expected {contract.dtype}")
        if any(v is None or v != contract.nodata for v in nodatas):
            problems.append(f"nodata {nodatas}, expected {contract.nodata}")
    meta.update(valid_cog=bool(valid), problems=problems)
    ok = not problems
    return QualityResult(ok, f"{path.name}: " + ("valid COG, " + f"{contract.dtype}, nodata "
                                                 f"{contract.nodata:g}" if ok else
                                                 "; ".join(problems)), meta)


def cog_files_check(paths: Sequence[str | Path | ObjPath], contract: CogContract) -> QualityResult:
    """:func:`cog_check` over several files; fails if any file fails.

    Returns:
        Metadata ``files``, ``invalid`` (count) and ``invalid_files`` (path -> problems).
    """
    results = [cog_check(p, contract) for p in paths]
    bad = {r.metadata["path"]: r.metadata["problems"] for r in results if not r.passed}
    return QualityResult(not bad, f"{len(paths) - len(bad)} of {len(paths)} COGs valid", {
        "files": len(paths), "invalid": len(bad), "invalid_files": bad,
        "bytes": int(sum(r.metadata["bytes"] for r in results))})


def sos_in_season(doy: np.ndarray, nodata: int, season_start: date, last_day: date
                  ) -> QualityResult:
    """Every SOS day of year falls between the season start and the week's last day.

    Args:
        doy: (y, x) day of year (1..366); ``nodata`` where the season has not started.
        nodata: Value of pixels without SOS.
        season_start: First day of the season (week 1's Monday).
        last_day: Last day observed (Sunday of this week).

    Returns:
        Metadata: started pixel share, days since season start (min, max) and the count and
        share of started pixels outside the window. Years wrap (a season over New Year).
    """
    doy = np.asarray(doy)
    counts: dict[int, int] = {}  # value -> pixels, row block by row block (a full tile's
    rows = max(1, 2**22 // max(1, doy.shape[-1]))  # int64 copy would be ~1 GB)
    for r0 in range(0, doy.shape[0], rows):
        values, n_values = np.unique(doy[r0:r0 + rows], return_counts=True)
        for v, c in zip(values.tolist(), n_values.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + c
    started = {v: c for v, c in counts.items() if v != nodata}
    year_len = 366 if calendar.isleap(season_start.year) else 365
    start_doy = season_start.timetuple().tm_yday
    days = {v: (int(v) - start_doy) % year_len for v in started}
    window = (last_day - season_start).days
    outside = sum(c for v, c in started.items() if days[v] > window or not 1 <= v <= 366)
    n = sum(started.values())
    return QualityResult(outside == 0, f"{outside} of {n} SOS dates outside days 0..{window} "
                         "of the season", {
                             "started_share": _share(n, doy.size) if doy.size else 0.0,
                             "started_pixels": n, "outside": outside,
                             "outside_share": _share(outside, n) if n else 0.0,
                             "min_days_since_start": min(days.values()) if n else None,
                             "max_days_since_start": max(days.values()) if n else None,
                             "window_days": window})


def crop_values_check(class_code: np.ndarray, confidence: np.ndarray, codes: Sequence[int],
                      nodata: int = 255) -> QualityResult:
    """A crop map holds only legend codes, confidences of 0-100 and consistent nodata.

    Args:
        class_code: (y, x) uint8 class codes, ``nodata`` where nothing was observed.
        confidence: (y, x) uint8 confidence in percent, ``nodata`` at the same pixels.
        codes: Class codes of the legend.
        nodata: Nodata value of both bands.
    """
    cls, conf = np.asarray(class_code), np.asarray(confidence)
    nod = cls == nodata
    unknown = int((~nod & ~np.isin(cls, list(codes))).sum())
    bad_conf = int(((conf > 100) & (conf != nodata)).sum())
    mismatch = int((nod != (conf == nodata)).sum())
    ok = unknown == bad_conf == mismatch == 0
    return QualityResult(ok, f"{unknown} unknown class codes, {bad_conf} confidences outside "
                         f"0-100, {mismatch} pixels with nodata in one band only", {
                             "unknown_class_pixels": unknown, "bad_confidence_pixels": bad_conf,
                             "nodata_mismatch_pixels": mismatch,
                             "nodata_share": _share(int(nod.sum()), cls.size) if cls.size
                             else 0.0, "legend_codes": [int(c) for c in codes]})
