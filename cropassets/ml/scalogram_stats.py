"""Normalisation of magnitude scalograms shared by training and inference.

:class:`ScalogramStats` holds the per-feature mean and std of ``log1p(|CWT|)`` fitted on
training scalograms; :func:`normalise_scalograms` fits or applies them.

Dims used throughout: ``N`` samples (pixels), ``F`` features (indices), ``S`` scales,
``T`` time steps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch

__all__ = ["ScalogramStats", "normalise_scalograms"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class ScalogramStats:
    """Per-feature standardisation of ``log1p(|CWT|)``, fitted on training scalograms.

    Attributes:
        mean: (F,) mean of ``log1p`` magnitude per feature over (N, S, T).
        std: (F,) population standard deviation per feature over (N, S, T), floored at
            ``MIN_STD`` so a constant feature maps to zeros instead of dividing by zero.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    MIN_STD: ClassVar[float] = 1e-6

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready ``{"mean": [...], "std": [...]}``."""
        return {k: list(v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """The stats as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScalogramStats:
        """Inverse of :meth:`to_dict`; validates that mean and std match in length."""
        try:
            mean = tuple(float(v) for v in d["mean"])
            std = tuple(float(v) for v in d["std"])
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"stats must have 'mean' and 'std' lists of floats, got {d!r}"
            ) from err
        if len(mean) != len(std) or not mean:
            raise ValueError(
                f"stats mean and std must be non-empty and of equal length, "
                f"got {len(mean)} and {len(std)}"
            )
        if not all(np.isfinite(mean)) or not all(np.isfinite(std) & (np.array(std) > 0)):
            raise ValueError(f"stats must be finite with positive std, got {d!r}")
        return cls(mean, std)

    @classmethod
    def from_json(cls, text: str) -> ScalogramStats:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def normalise_scalograms(
    s: ArrayT, stats: ScalogramStats | dict[str, Any] | None = None
) -> tuple[ArrayT, ScalogramStats]:
    """``(log1p(s) - mean[f]) / std[f]``: the scalogram input of the CNN.

    With ``stats=None`` the per-feature mean and std are fitted on ``s`` (training data)
    over (N, S, T), accumulated in float64; otherwise the given stats are applied
    unchanged (validation, inference). Store the returned stats with the model.

    Args:
        s: (N, F, S, T) non-negative magnitudes, e.g. from
            :func:`cropassets.ml.scalograms.cwt_magnitude` (numpy array or torch tensor).
        stats: Stats from a previous fit, as :class:`ScalogramStats` or its dict form.

    Returns:
        (normalised (N, F, S, T) float32, same type/device as ``s``; the stats used).

    Raises:
        ValueError: If ``s`` is not 4-D, holds NaN/inf or negative values, or its feature
            count differs from the stats'.
    """
    is_numpy = isinstance(s, np.ndarray)
    if not is_numpy and not isinstance(s, torch.Tensor):
        raise ValueError(f"s must be a numpy array or torch tensor, got {type(s).__name__}")
    if s.ndim != 4:
        raise ValueError(
            f"s must be 4-D (N samples, F features, S scales, T steps), got shape {tuple(s.shape)}"
        )
    st = torch.from_numpy(np.ascontiguousarray(s)) if is_numpy else s
    st = st.to(torch.float32)
    if st.numel():
        lo, hi = torch.aminmax(st)  # one pass: NaN propagates, inf shows in hi
        if not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))):
            raise ValueError("s must be finite magnitudes, found NaN or inf")
        if float(lo) < 0:
            raise ValueError(f"s must be non-negative magnitudes, found minimum {float(lo)}")
    n_features = st.shape[1]
    z = torch.log1p(st)
    if stats is None:
        if st.shape[0] * st.shape[2] * st.shape[3] == 0:
            raise ValueError(
                f"s must be non-empty over (N, S, T) to fit stats, got shape {tuple(s.shape)}"
            )
        means, stds = [], []
        for i in range(n_features):  # one feature at a time bounds the float64 copy
            zf = z[:, i].double()
            mean = zf.mean()
            means.append(float(mean))
            stds.append(max(float(((zf - mean) ** 2).mean().sqrt()), ScalogramStats.MIN_STD))
        fitted = ScalogramStats(tuple(means), tuple(stds))
    else:
        fitted = stats if isinstance(stats, ScalogramStats) else ScalogramStats.from_dict(stats)
        if len(fitted.mean) != n_features:
            raise ValueError(
                f"stats are for {len(fitted.mean)} features but s has "
                f"{n_features} (shape {tuple(s.shape)})"
            )
    m = torch.tensor(fitted.mean, dtype=torch.float32, device=z.device)[None, :, None, None]
    d = torch.tensor(fitted.std, dtype=torch.float32, device=z.device)[None, :, None, None]
    z.sub_(m).div_(d)
    return cast(ArrayT, z.numpy() if is_numpy else z), fitted
