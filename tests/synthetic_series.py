"""Seeded generator of labelled per-pixel series for tests and examples.

Nothing here depends on the demo world: the number of classes, features and steps and the
time step are parameters, so the same generator produces e.g. weekly 28-step seasons with
5 features or 16-day composites with 23 steps and 3 features.

Every class follows a shared "bare/green-up" curve and departs from it at its own
*divergence* time (a sigmoid step of class-specific sign and size), so classes become
separable one after the other as the season advances and accuracy rises with length until
the last divergence has passed. One class never departs. Fields carry a per-field time shift
and amplitude jitter, pixels carry noise, observations are dropped at random (NaN gaps) and
a few pixels can be made all-NaN. ``year_shift`` moves every class timing, to imitate a
different season for a test set.

Dims: ``N`` pixels, ``F`` features, ``T`` time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabelledSeries", "make_labelled_series"]


@dataclass(frozen=True)
class LabelledSeries:
    """Labelled per-pixel series.

    Attributes:
        series: (N, F, T) float32 raw values (unitless, roughly index-like), NaN = no
            observation.
        labels: (N,) int64 class codes (``class_codes[c]`` for class ``c``).
        field_ids: (N,) int64 field ids; all pixels of a field share one class.
        class_codes: (C,) int64 class codes.
        class_names: C class names.
        features: F feature names.
        time_step_days: Length of one time step, days.
    """

    series: np.ndarray
    labels: np.ndarray
    field_ids: np.ndarray
    class_codes: np.ndarray
    class_names: tuple[str, ...]
    features: tuple[str, ...]
    time_step_days: float


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make_labelled_series(
    *,
    n_classes: int = 4,
    fields_per_class: int | list[int] = 10,
    pixels_per_field: int = 12,
    n_steps: int = 28,
    n_features: int = 3,
    time_step_days: float = 7.0,
    gap_fraction: float = 0.25,
    noise: float = 0.03,
    divergence: tuple[float, float] = (0.2, 0.6),
    year_shift: float = 0.0,
    all_nan_pixels: int = 0,
    field_id_offset: int = 1,
    seed: int = 0,
    class_seed: int | None = None,
) -> LabelledSeries:
    """Generate labelled series with class-specific phenology, fields and gaps.

    Time is handled as the season fraction ``u = t / (T - 1)`` so any ``n_steps`` gives the
    same shape of season. Class ``c`` departs from the shared curve at
    ``u = linspace(*divergence)[c]`` (the last class never departs), so the class-mean
    curves are identical before the first divergence.

    Args:
        n_classes: Number of classes C (>= 2).
        fields_per_class: Fields per class, one number or a list of C numbers.
        pixels_per_field: Pixels sampled per field.
        n_steps: Steps per season T.
        n_features: Features F (each a different view of the class curve).
        time_step_days: Step length in days (stored only; nothing depends on it).
        gap_fraction: Probability that an observation (pixel, feature, step) is NaN.
        noise: Per-observation Gaussian noise, in value units.
        divergence: Season fractions (first, last) of the class divergence times.
        year_shift: Season fraction added to every class timing (a different year).
        all_nan_pixels: Number of pixels (the first ones) made entirely NaN.
        field_id_offset: First field id.
        seed: Seed of fields, pixels, noise and gaps.
        class_seed: Seed of the class curves (defaults to 12345 for every ``seed``, so two
            seasons drawn with different ``seed`` share their classes).

    Returns:
        A :class:`LabelledSeries`.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if isinstance(fields_per_class, int):
        fields_per_class = [fields_per_class] * n_classes
    if len(fields_per_class) != n_classes:
        raise ValueError("fields_per_class must have one entry per class")
    crng = np.random.default_rng(12345 if class_seed is None else class_seed)
    rng = np.random.default_rng(seed)

    onset = np.linspace(divergence[0], divergence[1], max(n_classes - 1, 1))
    onset = np.concatenate([onset, [np.inf]])[:n_classes]  # last class never diverges
    sign = np.where(np.arange(n_classes) % 2 == 0, 1.0, -1.0)
    amp = sign * crng.uniform(0.25, 0.4, n_classes)
    # each feature sees the curve with its own gain, offset and phase lag
    gain = crng.uniform(0.6, 1.2, n_features) * np.where(np.arange(n_features) % 2, -1, 1)
    offset = crng.uniform(-0.3, 0.3, n_features)
    lag = crng.uniform(-0.03, 0.03, n_features)

    u = np.arange(n_steps) / max(n_steps - 1, 1)
    labels, fields, curves = [], [], []
    fid = field_id_offset
    for c in range(n_classes):
        for _ in range(fields_per_class[c]):
            shift = year_shift + rng.normal(0.0, 0.02)
            jitter = rng.normal(1.0, 0.1)
            # (F, T): shared green-up, then the class's own departure
            uu = u[None, :] - shift - lag[:, None]
            base = 0.2 + 0.5 * _sigmoid((uu - 0.15) / 0.05)
            dep = amp[c] * jitter * _sigmoid((uu - onset[c]) / 0.03)
            curve = gain[:, None] * (base + dep) + offset[:, None]
            pix = curve[None] + rng.normal(0.0, noise, (pixels_per_field, n_features, n_steps))
            pix += rng.normal(0.0, noise, (pixels_per_field, n_features, 1))  # pixel level
            curves.append(pix)
            labels.append(np.full(pixels_per_field, c))
            fields.append(np.full(pixels_per_field, fid))
            fid += 1
    series = np.concatenate(curves).astype(np.float32)
    gaps = rng.random(series.shape) < gap_fraction
    series[gaps] = np.nan
    series[: int(all_nan_pixels)] = np.nan
    codes = np.arange(n_classes, dtype=np.int64) * 10 + 10  # codes are not indices
    label_idx = np.concatenate(labels)
    return LabelledSeries(
        series=series,
        labels=codes[label_idx],
        field_ids=np.concatenate(fields).astype(np.int64),
        class_codes=codes,
        class_names=tuple(f"class_{c}" for c in range(n_classes)),
        features=tuple(f"f{i}" for i in range(n_features)),
        time_step_days=float(time_step_days),
    )
