"""Shared synthetic data for the ML tests (small, seeded; no demo-world configuration)."""

from __future__ import annotations

import pytest
from synthetic_series import LabelledSeries, make_labelled_series


@pytest.fixture(scope="session")
def weekly() -> LabelledSeries:
    """4 classes x 8 fields x 10 pixels, 28 weekly steps, 3 features, 2 all-NaN pixels."""
    return make_labelled_series(
        n_classes=4, fields_per_class=8, pixels_per_field=10, n_steps=28, n_features=3,
        seed=0, all_nan_pixels=2,
    )


@pytest.fixture(scope="session")
def modis() -> tuple[LabelledSeries, LabelledSeries]:
    """16-day composites, 23 steps per season, 3 features: a reference and a later season."""
    kw = dict(n_classes=4, pixels_per_field=10, n_steps=23, n_features=3, time_step_days=16)
    ref = make_labelled_series(fields_per_class=8, seed=3, all_nan_pixels=2, **kw)
    cur = make_labelled_series(fields_per_class=4, seed=4, year_shift=0.02,
                               field_id_offset=1000, all_nan_pixels=3, **kw)
    return ref, cur
