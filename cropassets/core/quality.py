"""Data-quality measurements behind the asset checks (no Dagster import).

Every function returns a :class:`QualityResult`: whether the check passed, a one-line
summary and the numbers (plain Python types) that the Dagster UI shows as check metadata.
The thresholds are the module constants below; change them here (or pass other values).

Definitions used throughout:

- *pixel-observation*: one pixel of one scene.
- *valid* S2 pixel-observation: SCL code > 0 (0 = nodata, outside the swath).
- *clear* S2 pixel-observation: SCL code in :data:`~cropassets.core.cube.indices.CLEAR_SCL`
  (vegetation, not vegetated, water, unclassified).
- *observed* (feature, pixel) in weeks 1..w: the weekly composite holds a finite value of
  the feature in at least one of those weeks, or the composite's count of valid
  observations of the feature's sensor is > 0 in at least one of them.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from cropassets.core.cube.indices import CLEAR_SCL

MIN_S2_SCENES = 1
"""Fewest Sentinel-2 scenes per tile and week before ``scene_count`` warns (5-day revisit)."""
MIN_S1_SCENES = 0
"""Fewest Sentinel-1 scenes per tile and week (0: a 12-day orbit misses whole weeks)."""
MIN_CLEAR_SHARE = 0.05
"""Smallest share of clear S2 pixel-observations (raw) / of pixels with a clear
composite (weekly cube) before the cloud checks warn."""
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "ndvi": (-1.0, 1.0),
    "lswi": (-1.0, 1.0),
    "ndwi": (-1.0, 1.0),
    "vv": (-40.0, 10.0),
    "vh": (-40.0, 10.0),
    "vh_vv": (-30.0, 20.0),
}
"""Plausible value range (inclusive) of each weekly-cube feature: normalized differences
are unitless in [-1, 1]; backscatter in dB (gamma0 of land at C-band: about -30 to +5 dB,
speckle-filtered); VH - VV ratio in dB."""
FEATURE_SENSOR: dict[str, str] = {"ndvi": "s2", "lswi": "s2", "ndwi": "s2",
                                  "vv": "s1", "vh": "s1", "vh_vv": "s1"}
"""Sensor whose observation count says whether a feature was observed."""
MAX_FILL_FAILURE_SHARE = 0.0
"""Largest share of observed (feature, pixel) pairs whose gap-filled series may still hold
a NaN (or unobserved pairs holding a value) before ``gap_fill_check`` fails."""
MIN_VALIDATION_ACCURACY = 0.90
"""Overall accuracy on the validation fields a checkpoint at or after the knee must reach."""
MIN_CURRENT_SEASON_ACCURACY = 0.85
"""Overall accuracy on the current season's held-back labels, same checkpoints."""
MIN_SAMPLES_PER_CLASS = 20
"""Fewest labelled samples per class in a week's training sample before a warning."""


@dataclass(frozen=True)
class QualityResult:
    """Outcome of one quality check.

    Attributes:
        passed: The check's condition holds.
        summary: One line saying what was measured and the outcome.
        metadata: Numbers behind the outcome (plain types; NaN where undefined).
        severity: ``"error"`` or ``"warn"`` where the function decides it (accuracy
            floors), else None (the check's declared severity applies).
    """

    passed: bool
    summary: str
    metadata: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None


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


def _share(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def scene_count(n_s2: int, n_s1: int, min_s2: int = MIN_S2_SCENES,
                min_s1: int = MIN_S1_SCENES) -> QualityResult:
    """Enough scenes of each sensor in one tile x week.

    Args:
        n_s2: Sentinel-2 scenes loaded.
        n_s1: Sentinel-1 scenes loaded.
        min_s2: Fewest S2 scenes that pass.
        min_s1: Fewest S1 scenes that pass.
    """
    passed = n_s2 >= min_s2 and n_s1 >= min_s1
    return QualityResult(passed, f"{n_s2} S2 and {n_s1} S1 scenes (minimum {min_s2} and "
                         f"{min_s1})", {"s2_scenes": int(n_s2), "s1_scenes": int(n_s1),
                                        "min_s2_scenes": min_s2, "min_s1_scenes": min_s1})


def raw_clear_share(scl: np.ndarray, min_share: float = MIN_CLEAR_SHARE,
                    scene_ids: Sequence[str] | None = None,
                    clear_classes: Sequence[int] = CLEAR_SCL) -> QualityResult:
    """Share of valid S2 pixel-observations that are clear, over all scenes of a week.

    Args:
        scl: (time, y, x) SCL codes of the week's S2 scenes (0 = nodata).
        min_share: Smallest clear share that passes (0-1).
        scene_ids: Optional (time,) ids; the per-scene shares are reported under them.
        clear_classes: SCL codes counted as clear.

    Returns:
        Fails (``clear_share`` NaN) when there is no valid observation at all.
    """
    scl = np.asarray(scl)
    valid = scl > 0
    clear = np.isin(scl, clear_classes) & valid
    n_valid, n_clear = int(valid.sum()), int(clear.sum())
    share = _share(n_clear, n_valid)
    ids = list(scene_ids) if scene_ids is not None else [str(i) for i in range(len(scl))]
    per_scene = {str(i): (round(_share(c.sum(), v.sum()), 4) if v.any() else None)
                 for i, c, v in zip(ids, clear, valid, strict=True)}
    passed = bool(n_valid) and share >= min_share
    summary = (f"clear share {share:.3f} of {n_valid} valid S2 pixel-observations "
               f"(minimum {min_share})" if n_valid else "no valid S2 observation this week")
    return QualityResult(passed, summary, {
        "clear_share": share, "valid_observations": n_valid, "clear_observations": n_clear,
        "scenes": len(scl), "clear_share_per_scene": per_scene, "min_share": min_share})


def cube_clear_share(n_obs_s2: np.ndarray, min_share: float = MIN_CLEAR_SHARE
                     ) -> QualityResult:
    """Share of a weekly cube's pixels with at least one clear S2 observation.

    Args:
        n_obs_s2: (y, x) clear S2 observations per pixel in the week.
        min_share: Smallest share that passes (0-1).

    Returns:
        Fails (share NaN) for an empty tile (no pixel).
    """
    n = np.asarray(n_obs_s2)
    seen = int((n > 0).sum())
    share = _share(seen, n.size)
    passed = bool(n.size) and share >= min_share
    return QualityResult(passed, f"{share:.3f} of {n.size} pixels have a clear S2 composite "
                         f"(minimum {min_share})", {
                             "clear_pixel_share": share, "pixels": int(n.size),
                             "mean_clear_observations": float(n.mean()) if n.size else
                             float("nan"), "min_share": min_share})


def feature_ranges(features: np.ndarray, names: Sequence[str],
                   ranges: Mapping[str, tuple[float, float]] = FEATURE_RANGES,
                   absent_reason: str = "") -> QualityResult:
    """Every finite value of each feature lies in its plausible range; no infinities.

    NaN (no observation) is allowed. Features without a range are reported as unchecked.

    Args:
        features: (feature, ...) values, e.g. a weekly cube (feature, y, x); indices
            unitless, backscatter in dB.
        names: Feature names along the first axis.
        ranges: Name -> (low, high), inclusive.
        absent_reason: Why features may have no value at all (e.g. the week's radar
            status), added to the summary when some have none.

    Returns:
        Per feature: finite count, min, max, values out of range (count and share of the
        non-NaN values; an infinity counts as out of range); the features without any
        value are named in the summary and ``empty_features``.
    """
    per: dict[str, dict[str, Any]] = {}
    bad_total, unchecked = 0, []
    for i, name in enumerate(names):
        v = np.asarray(features[i])
        finite = np.isfinite(v)
        n_fin = int(finite.sum())
        n_inf = int(np.isinf(v).sum())
        lo, hi = ranges.get(str(name), (-np.inf, np.inf))
        if str(name) not in ranges:
            unchecked.append(str(name))
        fv = v[finite]
        out = int(((fv < lo) | (fv > hi)).sum()) + n_inf
        bad_total += out
        per[str(name)] = {
            "range": [lo, hi] if str(name) in ranges else None, "finite": n_fin,
            "min": float(fv.min()) if n_fin else None, "max": float(fv.max()) if n_fin else None,
            "out_of_range": out, "out_of_range_share": _share(out, n_fin + n_inf) if out else 0.0}
    worst = [n for n, p in per.items() if p["out_of_range"]]
    empty = [n for n, p in per.items() if p["finite"] == 0]
    summary = (f"values out of range in {worst}" if worst else
               "every finite value within its range")
    if empty:  # e.g. vv/vh of a week without radar: passes, but says so
        summary += f"; no value at all of {empty}" + (f" ({absent_reason})" if absent_reason
                                                      else "")
    return QualityResult(not worst, summary, {"features": per, "out_of_range": bad_total,
                                              "unchecked_features": unchecked,
                                              "empty_features": empty})


def observed_mask(raw: xr.DataArray, n_obs: xr.DataArray | None = None,
                  feature_sensor: Mapping[str, str] = FEATURE_SENSOR) -> xr.DataArray:
    """Which (feature, pixel) pairs were observed at least once (module docstring).

    Args:
        raw: (feature, week, y, x) weekly composites of weeks 1..w (NaN = no value).
        n_obs: (sensor, week, y, x) valid-observation counts, ``sensor`` coordinate values
            ``"s2"``/``"s1"``; None: only the composite values count.
        feature_sensor: Feature name -> sensor whose count applies.

    Returns:
        (feature, y, x) bool, lazy where the inputs are dask-backed.
    """
    seen = raw.notnull().any("week")
    if n_obs is None:
        return seen
    counted = (n_obs > 0).any("week")
    sensors = {str(s) for s in n_obs["sensor"].values}
    parts = []
    for f in raw["feature"].values:
        s = feature_sensor.get(str(f))
        part = seen.sel(feature=f)
        if s in sensors:
            part = part | counted.sel(sensor=s, drop=True)
        parts.append(part)
    return xr.concat(parts, dim="feature")


def gap_fill_check(filled: xr.DataArray, raw: xr.DataArray, n_obs: xr.DataArray | None = None,
                   max_failed_share: float = MAX_FILL_FAILURE_SHARE) -> QualityResult:
    """The gap-filled series is complete exactly where the season so far was observed.

    A (feature, pixel) pair *fails* when it was observed in weeks 1..w (module docstring)
    but its gap-filled series still holds a NaN in some week (the fill failed, or the
    composite lost values its counts say were observed), or when it was never observed but
    the series holds a value (invented). Pairs never observed and all-NaN are legitimate:
    nothing was seen there yet this season.

    Args:
        filled: (feature, week, y, x) series after gap-fill and smoothing, as stored.
        raw: (feature, week, y, x) weekly composites the series was built from.
        n_obs: (sensor, week, y, x) valid-observation counts of those composites.
        max_failed_share: Largest share of failing pairs among the observed pairs (0-1).

    Returns:
        Metadata: ``failed_share`` (failing pairs / observed pairs), ``failed_pairs``,
        ``invented_pairs``, ``observed_share`` and ``legit_nan_share`` (never observed) of
        all pairs, ``nan_share_after_fill`` (NaN values / all values), per feature counts.
    """
    observed = observed_mask(raw, n_obs)
    any_nan = filled.isnull().any("week")
    any_val = filled.notnull().any("week")
    stats = xr.Dataset({
        "observed": observed.sum(("y", "x")),
        "unfilled": (observed & any_nan).sum(("y", "x")),
        "invented": (~observed & any_val).sum(("y", "x")),
        "nan_values": filled.isnull().sum(("week", "y", "x")),
    }).compute()
    names = [str(f) for f in filled["feature"].values]
    pixels = int(np.prod([filled.sizes[d] for d in ("y", "x")]))
    pairs = pixels * len(names)
    n_obs_pairs = int(stats["observed"].sum())
    unfilled, invented = int(stats["unfilled"].sum()), int(stats["invented"].sum())
    failed = unfilled + invented
    failed_share = _share(failed, n_obs_pairs) if n_obs_pairs else (1.0 if failed else 0.0)
    per = {n: {"observed_share": round(_share(int(stats["observed"][i]), pixels), 6)
               if pixels else None,
               "unfilled_pixels": int(stats["unfilled"][i]),
               "invented_pixels": int(stats["invented"][i])} for i, n in enumerate(names)}
    passed = failed_share <= max_failed_share
    summary = (f"{failed} of {n_obs_pairs} observed (feature, pixel) series not gap-filled "
               f"or invented (share {failed_share:.4f}, maximum {max_failed_share})")
    n_values = pairs * filled.sizes["week"]
    return QualityResult(passed, summary, {
        "failed_share": failed_share, "failed_pairs": failed, "unfilled_pairs": unfilled,
        "invented_pairs": invented, "observed_pairs": n_obs_pairs,
        "observed_share": _share(n_obs_pairs, pairs),
        "legit_nan_share": _share(pairs - n_obs_pairs, pairs),
        "nan_share_after_fill": _share(int(stats["nan_values"].sum()), n_values),
        "weeks": int(filled.sizes["week"]), "pixels": pixels, "features": per,
        "max_failed_share": max_failed_share})


def cog_check(path: str | Path, contract: CogContract) -> QualityResult:
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

    path = Path(path)
    meta: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size
                            if path.exists() else 0}
    problems: list[str] = []
    if not path.exists():
        return QualityResult(False, f"{path.name}: missing", {**meta, "problems": ["missing"]})
    try:
        valid, errors, warns = cog_validate(str(path), quiet=True)
        problems += [f"COG: {e}" for e in errors]
        meta["cog_warnings"] = list(warns)
        with rasterio.open(path) as src:
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


def cog_files_check(paths: Sequence[str | Path], contract: CogContract) -> QualityResult:
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
    started = doy != nodata
    year_len = 366 if calendar.isleap(season_start.year) else 365
    days = (doy[started].astype(np.int64) - season_start.timetuple().tm_yday) % year_len
    window = (last_day - season_start).days
    outside = int((days > window).sum()) + int(((doy[started] < 1) | (doy[started] > 366)).sum())
    n = int(started.sum())
    return QualityResult(outside == 0, f"{outside} of {n} SOS dates outside days 0..{window} "
                         "of the season", {
                             "started_share": _share(n, doy.size) if doy.size else 0.0,
                             "started_pixels": n, "outside": outside,
                             "outside_share": _share(outside, n) if n else 0.0,
                             "min_days_since_start": int(days.min()) if n else None,
                             "max_days_since_start": int(days.max()) if n else None,
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


def knee_check(knee_week: int | None, lengths: Sequence[int], rule: str = "") -> QualityResult:
    """A knee week exists and lies within the trained sequence lengths.

    Args:
        knee_week: Minimum season length from the knee report, weeks (None: none found).
        lengths: Sequence lengths with a trained checkpoint, weeks.
        rule: How the knee was chosen (:class:`cropassets.ml.knee.KneeResult` ``rule``).
    """
    ls = sorted(int(v) for v in lengths)
    ok = knee_week is not None and bool(ls) and ls[0] <= knee_week <= ls[-1]
    rng = f"{ls[0]}..{ls[-1]}" if ls else "none"
    return QualityResult(ok, f"knee week {knee_week} within trained weeks {rng}" if ok else
                         f"no knee week within trained weeks {rng} (knee: {knee_week})", {
                             "knee_week": knee_week if knee_week is not None else -1,
                             "rule": rule, "trained_weeks": ls,
                             "first_trained_week": ls[0] if ls else -1,
                             "last_trained_week": ls[-1] if ls else -1})


def accuracy_floor(k: int, validation_accuracy: float, current_accuracy: float | None,
                   knee_week: int | None, full_season_week: int,
                   min_validation: float = MIN_VALIDATION_ACCURACY,
                   min_current: float = MIN_CURRENT_SEASON_ACCURACY) -> QualityResult:
    """Accuracy floors of the checkpoint of sequence length ``k``.

    The floors bind (severity ``"error"``) from the knee week on, the checkpoints that
    produce final maps; before the knee is known only the full-season checkpoint is held to
    them. Earlier checkpoints are reported with severity ``"warn"`` when below.

    Args:
        k: Sequence length, weeks.
        validation_accuracy: Overall accuracy on the validation fields (0-1).
        current_accuracy: Overall accuracy on the current season's held-back labels (0-1),
            None where there are none (then only the validation floor applies).
        knee_week: Knee from the knee report, None before it exists.
        full_season_week: Length of the longest season, weeks.
        min_validation: Validation floor.
        min_current: Current-season floor.
    """
    binds_from = knee_week if knee_week is not None else full_season_week
    binding = k >= binds_from
    below = []
    if not validation_accuracy >= min_validation:  # NaN counts as below
        below.append(f"validation {validation_accuracy:.3f} < {min_validation}")
    if current_accuracy is not None and not current_accuracy >= min_current:
        below.append(f"current season {current_accuracy:.3f} < {min_current}")
    where = f"k={k} {'>=' if binding else '<'} week {binds_from} " + (
        "(knee)" if knee_week is not None else "(full season; no knee report yet)")
    return QualityResult(not below, (f"below the floors: {', '.join(below)}; " if below else
                                     "accuracy floors met; ") + where, {
        "validation_accuracy": float(validation_accuracy),
        "current_season_accuracy": float("nan") if current_accuracy is None
        else float(current_accuracy),
        "min_validation_accuracy": min_validation, "min_current_season_accuracy": min_current,
        "floors_bind_from_week": binds_from, "binding": binding,
        "knee_week": knee_week if knee_week is not None else -1},
        severity="error" if binding else "warn")


def class_coverage(labels: np.ndarray, class_names: Mapping[int, str],
                   min_per_class: int = MIN_SAMPLES_PER_CLASS) -> QualityResult:
    """Every class of the legend has enough labelled samples this week.

    Args:
        labels: (N,) class code of each sample.
        class_names: Code -> name of every class expected.
        min_per_class: Fewest samples per class that pass.
    """
    labels = np.asarray(labels)
    counts = {str(class_names[c]): int((labels == c).sum()) for c in sorted(class_names)}
    short = [n for n, v in counts.items() if v < min_per_class]
    return QualityResult(not short, f"classes under {min_per_class} samples: {short}" if short
                         else f"every class has >= {min_per_class} samples", {
                             "samples": int(labels.size), "samples_per_class": counts,
                             "short_classes": short, "min_per_class": min_per_class})
