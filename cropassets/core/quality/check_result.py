"""The outcome of a quality check, and the thresholds the checks default to.

Every check of :mod:`cropassets.core.quality` returns a :class:`QualityResult`. The
thresholds are the module constants below; change them here (or pass other values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


def _share(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")
