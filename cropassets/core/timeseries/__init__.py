"""Per-pixel time series.

The time axis in days, gap filling and Butterworth smoothing, season
series from weekly cubes and Start of Season.
"""

from __future__ import annotations

from cropassets.core.timeseries.gapfill import gapfill_linear
from cropassets.core.timeseries.season_series import (
    season_series,
    season_series_as_stored,
    stack_cubes,
)
from cropassets.core.timeseries.smoothing import (
    butterworth_coefficients,
    butterworth_matrix,
    padlen_for,
    smooth_dataarray,
    smooth_series,
)
from cropassets.core.timeseries.start_of_season import (
    amplitude_crossing,
    days_to_doy,
    start_of_season,
    week_mid_days,
)
from cropassets.core.timeseries.timeaxis import (
    check_same_steps,
    day_offsets,
    needs_resampling,
    nominal_step_days,
    regular_grid,
    resample_matrix,
)

__all__ = [
    "amplitude_crossing",
    "butterworth_coefficients",
    "butterworth_matrix",
    "check_same_steps",
    "day_offsets",
    "days_to_doy",
    "gapfill_linear",
    "needs_resampling",
    "nominal_step_days",
    "padlen_for",
    "regular_grid",
    "resample_matrix",
    "season_series",
    "season_series_as_stored",
    "smooth_dataarray",
    "smooth_series",
    "stack_cubes",
    "start_of_season",
    "week_mid_days",
]
