"""The trained-model record: weights, preprocessing, class list and metrics.

It holds everything inference needs to repeat training's processing: the fitted
:class:`~cropassets.ml.recipe.SeriesRecipe`. Saved with ``torch.save`` of plain types only
(tensors, str, int, float, list, dict, None), so it loads with ``weights_only=True``.

Layouts: version 2 (written now) stores the recipe as one dict under ``"recipe"``; version
1 (before the recipe existed) stored its parts as top-level keys (``n_steps``, ``scales``,
``wavelet``, ``cutoff``, ``order``, ``time_step_days``, ``step_days``, ``stats``,
``presmoothed``). Both load; a version-1 checkpoint gets its recipe rebuilt from those keys
and predicts exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch

from cropassets.core.objstore import Location, ObjPath, location
from cropassets.core.timeseries.timeaxis import check_same_steps, day_offsets, needs_resampling
from cropassets.ml.model import CNN2D, CNN2DEnsemble, ModelConfig
from cropassets.ml.recipe import InputStats, SeriesRecipe
from cropassets.ml.splits import FieldSplit

__all__ = ["FORMAT_VERSION", "READ_VERSIONS", "Checkpoint", "library_versions"]

FORMAT_VERSION = 2
"""Version of the saved layout; :meth:`Checkpoint.load` reads it and :data:`READ_VERSIONS`."""
READ_VERSIONS = (1, 2)
"""Layout versions :meth:`Checkpoint.from_dict` reads (1: the recipe as top-level keys)."""
_V1_RECIPE_KEYS = ("n_steps", "scales", "wavelet", "cutoff", "order", "time_step_days",
                   "stats")
"""Top-level keys of a version-1 checkpoint that make up its recipe (besides the optional
``step_days`` and ``presmoothed``)."""


def library_versions() -> dict[str, str]:
    """Versions of torch, numpy, pywt, scikit-learn and cropassets in this process."""
    from importlib import metadata

    import pywt
    import sklearn

    try:
        own = metadata.version("cropassets")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout only
        own = "unknown"
    return {
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "pywt": str(pywt.__version__),
        "sklearn": str(sklearn.__version__),
        "cropassets": own,
    }


@dataclass
class Checkpoint:
    """A CNN2D trained for one sequence length, with its preprocessing and metrics.

    Attributes:
        weights: The model's ``state_dict`` (CPU tensors); with ``member_weights``, the
            first member of an ensemble.
        model_config: :class:`ModelConfig` as a dict.
        features: F feature names, in input order.
        recipe: The fitted :class:`~cropassets.ml.recipe.SeriesRecipe`: sequence length,
            smoothing, day grid and step offsets, CWT scales and wavelet, fill curves and
            normalisation fitted on the training fields. Its parts are also read as
            properties (:attr:`n_steps`, :attr:`scales`, :attr:`cutoff`, ...).
        class_codes: C class labels as given to training (ints or strings); class index
            ``i`` of :func:`~cropassets.ml.predict.predict` means ``class_codes[i]``.
        class_names: C class names.
        metrics: Validation metrics (``overall_accuracy``, ``macro_f1``, ``per_class_f1``,
            ``confusion``, ...), plus training facts (steps, FLOPs per sample, ...).
        versions: Library versions used for training.
        split: Field ids of the train/val/test sets.
        history: One ``{"step", "train_loss", "val_loss", "val_accuracy"}`` per validation
            pass (``train_loss``: mean over the steps since the previous pass).
        seed: Training seed.
        member_weights: ``state_dict`` of each further member of an ensemble of the same
            architecture (``[]``, the default and what older checkpoints load as: one
            network). With members, the model is a
            :class:`~cropassets.ml.model.CNN2DEnsemble` whose output is the members' mean
            softmax (``TrainConfig.keep_selection``).
    """

    weights: dict[str, torch.Tensor]
    model_config: dict[str, Any]
    features: tuple[str, ...]
    recipe: SeriesRecipe
    class_codes: list[Any]
    class_names: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=library_versions)
    split: dict[str, list[int]] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    seed: int = 0
    member_weights: list[dict[str, torch.Tensor]] = field(default_factory=list)

    STEP_TOLERANCE: ClassVar[float] = 0.1
    """Largest accepted difference of a step's day offset, as a fraction of a grid step."""

    def __post_init__(self) -> None:
        self.recipe = SeriesRecipe.from_dict(self.recipe)
        if not self.recipe.fitted or self.recipe.scales is None \
                or self.recipe.time_step_days is None:
            raise ValueError("a checkpoint needs a fitted recipe with its scales and time "
                             "step fixed (SeriesRecipe.on_time_axis, then prepare_tensor)")

    # ---------------------------------------------------------------- the recipe's parts
    @property
    def n_steps(self) -> int:
        """Sequence length k the model was trained on (inference reads steps 0..k-1)."""
        return self.recipe.n_steps

    @property
    def scales(self) -> tuple[float, ...]:
        """S CWT scales, in steps of the day grid."""
        assert self.recipe.scales is not None  # __post_init__
        return self.recipe.scales

    @property
    def wavelet(self) -> str:
        """The pywt continuous wavelet name."""
        return self.recipe.wavelet

    @property
    def cutoff(self) -> float:
        """Butterworth cutoff, cycles per time step."""
        return self.recipe.cutoff

    @property
    def order(self) -> int:
        """Butterworth order."""
        return self.recipe.order

    @property
    def presmoothed(self) -> bool:
        """Whether the training series were already smoothed on their k-step prefix.

        :func:`~cropassets.ml.predict.predict` expects the same by default.
        """
        return self.recipe.presmoothed

    @property
    def time_step_days(self) -> float:
        """Length of one step of the regular day grid the CWT ran on, days.

        Scales in days are ``scales * time_step_days``.
        """
        assert self.recipe.time_step_days is not None  # __post_init__
        return self.recipe.time_step_days

    @property
    def step_days(self) -> tuple[float, ...]:
        """(k,) day offsets of the trained steps since step 0.

        ``()`` in checkpoints written before dates existed (regular steps of
        ``time_step_days``). Dated steps off the grid were resampled onto it; a series
        offered with other step offsets is refused (:meth:`check_compatible`).
        """
        return self.recipe.step_days or ()

    @property
    def day_offsets(self) -> np.ndarray:
        """(k,) days of the trained steps since step 0."""
        return self.recipe.day_offsets

    @property
    def irregular_steps(self) -> bool:
        """Whether the trained steps were resampled onto the day grid (dated, irregular)."""
        return needs_resampling(self.day_offsets, self.time_step_days)

    @property
    def resample_days(self) -> tuple[float, ...] | None:
        """The day offsets of irregular trained steps (resampled onto the grid), else None."""
        return tuple(self.day_offsets.tolist()) if self.irregular_steps else None

    @property
    def scales_days(self) -> tuple[float, ...]:
        """The CWT scales in days (``scales * time_step_days``)."""
        return tuple(float(s) * self.time_step_days for s in self.scales)

    # ---------------------------------------------------------------- model and stats
    @property
    def config(self) -> ModelConfig:
        """The architecture as a :class:`ModelConfig`."""
        return ModelConfig.from_dict(self.model_config)

    @property
    def field_split(self) -> FieldSplit:
        """The train/val(/test) field split as a :class:`~cropassets.ml.splits.FieldSplit`."""
        return FieldSplit(
            **{
                k: np.asarray(self.split.get(k, []), dtype=np.int64)
                for k in ("train", "val", "test")
            }
        )

    @property
    def input_stats(self) -> InputStats:
        """The fill curves and normalisation fitted on the training fields."""
        assert self.recipe.stats is not None  # __post_init__
        return self.recipe.stats

    @property
    def n_members(self) -> int:
        """Networks whose softmax is averaged (1: a single CNN2D)."""
        return 1 + len(self.member_weights)

    def build_model(self, device: torch.device | str | None = None) -> CNN2D | CNN2DEnsemble:
        """The network (or ensemble) with the trained weights, in eval mode, on ``device``."""
        nets = []
        for weights in [self.weights, *self.member_weights]:
            net = CNN2D(self.config)
            net.load_state_dict(weights)
            nets.append(net)
        model = nets[0] if len(nets) == 1 else CNN2DEnsemble(nets)
        model.eval()
        return model.to(device or "cpu")

    # ---------------------------------------------------------------- compatibility
    def check_compatible(
        self,
        features: Sequence[str] | None = None,
        scales: Sequence[float] | np.ndarray | None = None,
        n_steps: int | None = None,
        *,
        wavelet: str | None = None,
        cutoff: float | None = None,
        order: int | None = None,
        time_step_days: float | None = None,
        dates: Sequence[Any] | np.ndarray | None = None,
    ) -> None:
        """Refuse use under a configuration that differs from training.

        Every argument given is compared with the checkpoint; ``None`` skips a check.
        ``dates`` (one per step of the offered series, at least k) must put the first k
        steps at the trained day offsets, within :attr:`STEP_TOLERANCE` of a grid step.

        Raises:
            ValueError: Naming every mismatch (feature list and order, scale list, sequence
                length, wavelet, smoothing, time step, step dates).
        """
        problems: list[str] = []
        if dates is not None:
            try:
                check_same_steps(self.day_offsets, day_offsets(dates),
                                 self.STEP_TOLERANCE * self.time_step_days)
            except ValueError as err:
                problems.append(str(err))
        if features is not None and tuple(str(f) for f in features) != self.features:
            problems.append(
                f"feature list {list(features)} differs from the checkpoint's "
                f"{list(self.features)} (names and order must match)"
            )
        if scales is not None:
            sc = np.asarray(scales, dtype=np.float64).ravel()
            mine = np.asarray(self.scales, dtype=np.float64)
            if sc.shape != mine.shape or not np.allclose(sc, mine, rtol=1e-9, atol=0):
                problems.append(
                    f"scale list {np.round(sc, 4).tolist()} differs from the checkpoint's "
                    f"{np.round(mine, 4).tolist()}"
                )
        if n_steps is not None and int(n_steps) != self.n_steps:
            problems.append(
                f"sequence length {n_steps} differs from the checkpoint's {self.n_steps}"
            )
        if wavelet is not None and wavelet != self.wavelet:
            problems.append(f"wavelet {wavelet!r} differs from the checkpoint's {self.wavelet!r}")
        if cutoff is not None and not np.isclose(cutoff, self.cutoff, rtol=1e-9, atol=0):
            problems.append(f"cutoff {cutoff} differs from the checkpoint's {self.cutoff}")
        if order is not None and int(order) != self.order:
            problems.append(f"order {order} differs from the checkpoint's {self.order}")
        if time_step_days is not None and not np.isclose(time_step_days, self.time_step_days):
            problems.append(
                f"time step {time_step_days} days differs from the checkpoint's "
                f"{self.time_step_days}"
            )
        if problems:
            raise ValueError(
                "checkpoint is incompatible with the current configuration: "
                + "; ".join(problems)
            )

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain-type form, layout :data:`FORMAT_VERSION` (weights stay tensors)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["weights"] = {k: v.detach().cpu().clone() for k, v in self.weights.items()}
        d["member_weights"] = [{k: v.detach().cpu().clone() for k, v in w.items()}
                               for w in self.member_weights]
        d["features"] = list(self.features)
        d["recipe"] = self.recipe.to_dict()
        d["class_names"] = list(self.class_names)
        d["format_version"] = FORMAT_VERSION
        return d

    def save(self, path: str | os.PathLike[str] | ObjPath) -> Location:
        """Write atomically: a temporary file in the same folder, then ``os.replace``.

        Returns:
            The path written.
        """
        from cropassets.core.storage import atomic_file

        with atomic_file(path) as fh:
            torch.save(self.to_dict(), fh)
        return location(path)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_dict`; also reads the version-1 layout (module docstring).

        Raises:
            ValueError: On a layout version other than :data:`READ_VERSIONS`.
        """
        version = d.get("format_version", 1)
        if version not in READ_VERSIONS:
            raise ValueError(
                f"checkpoint format version {version} is not supported (this library "
                f"reads versions {', '.join(map(str, READ_VERSIONS))})"
            )
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if version == 1:
            kw["recipe"] = _v1_recipe(d)
        kw["features"] = tuple(kw["features"])
        kw["class_names"] = tuple(kw["class_names"])
        kw["member_weights"] = list(kw.get("member_weights", []))
        return cls(**kw)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | ObjPath) -> Checkpoint:
        """Read a checkpoint written by :meth:`save` (``weights_only=True``, onto CPU)."""
        loc = location(path)
        source = loc.open("rb") if isinstance(loc, ObjPath) else loc
        d = torch.load(source, map_location="cpu", weights_only=True)
        return cls.from_dict(d)

    def summary(self) -> dict[str, Any]:
        """Everything except the weights, JSON-ready."""
        d = self.to_dict()
        d.pop("weights")
        d.pop("member_weights")
        d["n_members"] = self.n_members
        return asdict_safe(d)


def _v1_recipe(d: dict[str, Any]) -> SeriesRecipe:
    """The recipe of a version-1 checkpoint dict, from its top-level keys.

    ``step_days`` absent or empty (written before dates existed): regular steps of
    ``time_step_days``; ``presmoothed`` absent: False.
    """
    missing = [k for k in _V1_RECIPE_KEYS if k not in d]
    if missing:
        raise ValueError(f"version-1 checkpoint lacks {missing}")
    return SeriesRecipe(
        n_steps=d["n_steps"],
        cutoff=float(d["cutoff"]),
        order=int(d["order"]),
        presmoothed=bool(d.get("presmoothed", False)),
        time_step_days=float(d["time_step_days"]),
        step_days=tuple(d.get("step_days") or ()) or None,
        scales=tuple(float(s) for s in d["scales"]),
        wavelet=d["wavelet"],
        stats=InputStats.from_dict(d["stats"]),
    )


def asdict_safe(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays and tuples into JSON-ready Python types."""
    if isinstance(obj, dict):
        return {str(k): asdict_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [asdict_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "__dataclass_fields__"):
        return asdict_safe(asdict(obj))
    return obj
