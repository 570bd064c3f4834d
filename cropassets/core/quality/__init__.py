"""Data-quality measurements behind the asset checks (no Dagster import).

Every function returns a :class:`QualityResult`: whether the check passed, a one-line
summary and the numbers (plain Python types) that the Dagster UI shows as check metadata.
The thresholds are the constants of :mod:`cropassets.core.quality.check_result`; change
them there (or pass other values).

Modules: ``check_result`` (the result type and the thresholds), ``input_checks`` (scene
counts, clear shares, feature value ranges), ``series_checks`` (observed pairs and the
gap-fill check of season series), ``product_checks`` (COG contracts, SOS dates, crop-map
values), ``model_checks`` (knee week, accuracy floors, class coverage of the samples).

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

from cropassets.core.quality.check_result import (
    FEATURE_RANGES,
    FEATURE_SENSOR,
    MAX_FILL_FAILURE_SHARE,
    MIN_CLEAR_SHARE,
    MIN_CURRENT_SEASON_ACCURACY,
    MIN_S1_SCENES,
    MIN_S2_SCENES,
    MIN_SAMPLES_PER_CLASS,
    MIN_VALIDATION_ACCURACY,
    QualityResult,
)
from cropassets.core.quality.input_checks import (
    cube_clear_share,
    feature_ranges,
    raw_clear_share,
    scene_count,
)
from cropassets.core.quality.model_checks import accuracy_floor, class_coverage, knee_check
from cropassets.core.quality.product_checks import (
    COVERAGE_COG,
    CROP_COG,
    SOS_COG,
    CogContract,
    cog_check,
    cog_files_check,
    crop_values_check,
    sos_in_season,
)
from cropassets.core.quality.series_checks import (
    gap_fill_check,
    gap_fill_counts,
    gap_fill_verdict,
    observed_mask,
)

__all__ = [
    "COVERAGE_COG",
    "CROP_COG",
    "FEATURE_RANGES",
    "FEATURE_SENSOR",
    "MAX_FILL_FAILURE_SHARE",
    "MIN_CLEAR_SHARE",
    "MIN_CURRENT_SEASON_ACCURACY",
    "MIN_S1_SCENES",
    "MIN_S2_SCENES",
    "MIN_SAMPLES_PER_CLASS",
    "MIN_VALIDATION_ACCURACY",
    "SOS_COG",
    "CogContract",
    "QualityResult",
    "accuracy_floor",
    "class_coverage",
    "cog_check",
    "cog_files_check",
    "crop_values_check",
    "cube_clear_share",
    "feature_ranges",
    "gap_fill_check",
    "gap_fill_counts",
    "gap_fill_verdict",
    "knee_check",
    "observed_mask",
    "raw_clear_share",
    "scene_count",
    "sos_in_season",
]
