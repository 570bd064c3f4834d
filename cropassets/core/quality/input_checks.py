"""Quality of a week's inputs: scene counts, clear shares, plausible feature values.

Definitions used here:

- *pixel-observation*: one pixel of one scene.
- *valid* S2 pixel-observation: SCL code > 0 (0 = nodata, outside the swath).
- *clear* S2 pixel-observation: SCL code in :data:`~cropassets.core.cube.indices.CLEAR_SCL`
  (vegetation, not vegetated, water, unclassified).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cropassets.core.cube.indices import CLEAR_SCL
from cropassets.core.quality.check_result import (
    FEATURE_RANGES,
    MIN_CLEAR_SHARE,
    MIN_S1_SCENES,
    MIN_S2_SCENES,
    QualityResult,
    _share,
)


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
