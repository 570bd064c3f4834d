"""find_knee: the three documented rules, noise, conversions."""

from __future__ import annotations

import numpy as np
import pytest

from cropassets.ml.knee import DAYS_PER_MONTH, find_knee

KS = np.arange(3, 29)


def _saturating(knee_at: float) -> np.ndarray:
    return 0.95 - 0.6 * np.exp(-(KS - 3) / (knee_at / 4))


def test_clear_knee():
    acc = np.minimum(0.5 + 0.05 * (KS - 3), 0.95)  # rises, then a plateau from 12 steps
    r = find_knee(KS, acc, time_step_days=7)
    assert r.rule == "kneed"
    assert r.knee_steps == r.length_steps
    assert r.length_steps == 12
    assert r.accuracy >= r.max_accuracy - 0.02
    assert r.length_weeks == pytest.approx(r.length_steps)
    assert r.length_months == pytest.approx(r.length_steps * 7 / DAYS_PER_MONTH)


def test_noisy_curve_is_fitted_monotone_and_stays_honest():
    rng = np.random.default_rng(0)
    acc = np.clip(_saturating(6.0) + rng.normal(0, 0.02, KS.size), 0, 1)
    acc[4] = acc.max() + 0.01  # a lucky early spike must not become the answer alone
    r = find_knee(KS, acc)
    assert np.all(np.diff(r.fitted) >= -1e-12)
    assert r.rule in {"kneed", "kneed+tolerance"}
    assert r.accuracy >= r.max_accuracy - 0.02


def test_knee_below_tolerance_moves_to_first_length_within_tolerance():
    # a strong early bend then a slow climb: kneed bends early, accuracy still far below
    acc = np.where(KS < 8, 0.3 + 0.1 * (KS - 3), 0.75 + 0.01 * (KS - 8))
    r = find_knee(KS, acc)
    assert r.rule == "kneed+tolerance"
    assert r.knee_steps is not None and r.length_steps > r.knee_steps
    assert r.accuracy >= r.max_accuracy - 0.02
    assert r.length_steps == int(KS[np.argmax(acc >= acc.max() - 0.02)])


@pytest.mark.parametrize(
    "acc", [np.full(KS.size, 0.9), np.linspace(0.5, 0.9, KS.size)], ids=["flat", "linear"]
)
def test_no_knee_falls_back_to_tolerance(acc):
    r = find_knee(KS, acc, time_step_days=16)
    assert r.rule == "tolerance"
    assert r.knee_steps is None
    assert r.length_steps == int(KS[np.argmax(acc >= acc.max() - 0.02)])
    assert r.length_days == r.length_steps * 16


def test_short_and_unsorted_inputs():
    r = find_knee([10, 5], [0.9, 0.5])
    assert r.rule == "tolerance" and r.length_steps == 10 and r.lengths == (5, 10)
    with pytest.raises(ValueError):
        find_knee([5, 5], [0.1, 0.2])
    with pytest.raises(ValueError):
        find_knee([], [])
