"""A random-forest baseline on the same smoothed series and the same field splits.

What the scalograms and the CNN add is only visible beside a simple model trained on the
same information: the first ``k`` steps of every feature, truncated first and gap-filled +
smoothed exactly as for the CNN (:func:`cropassets.ml.prepare.smoothed_prefix`, with the
fill curve fitted on the training fields), flattened to F·k values per pixel, classified
by scikit-learn's ``RandomForestClassifier`` (fixed seed, ``n_jobs=2``, class weights
balanced like the CNN's loss).

The fitted forest is kept with everything its inference needs as a :class:`ForestModel`
(the fill curve of the training pixels, ``n_steps``, cutoff/order, the presmoothed flag,
classes, features): :meth:`ForestModel.predict` gives class and confidence for raw series
exactly as :func:`cropassets.ml.predict.predict` does for the CNN (same truncation, same
nodata convention), and :meth:`ForestModel.save` / :meth:`ForestModel.load` persist it
atomically with joblib, so the forest can be served when it beats the CNN
(:mod:`cropassets.ml.served`).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

from cropassets.core.objstore import Location, ObjPath, location
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.prepare import check_model_input, smoothed_prefix, valid_pixels
from cropassets.ml.recipe import DEFAULT_CUTOFF, DEFAULT_ORDER
from cropassets.ml.splits import FieldSplit, split_fields
from cropassets.ml.train import cap_pixels_per_field, resolve_classes

__all__ = [
    "FOREST_FORMAT",
    "BaselineResult",
    "ForestModel",
    "fit_random_forest",
    "random_forest_baseline",
]

FOREST_FORMAT = "cropassets-random-forest"
"""Value of the ``format`` key of a saved forest; :meth:`ForestModel.load` refuses others."""
FOREST_FORMAT_VERSION = 1
"""Layout version of a saved forest; :meth:`ForestModel.load` refuses other versions."""
NODATA = -1
"""Class index of pixels without any observation in the prefix (confidence 0.0), as in
:data:`cropassets.ml.predict.NODATA`."""


DEFAULT_FOREST_BATCH = 16384
"""Pixels per forest batch in :meth:`ForestModel.predict` (the smoothed F x k prefix of one
batch is all that is held besides the outputs)."""


def _versions() -> dict[str, str]:
    """Versions that decide whether a saved forest unpickles the same way."""
    import sklearn

    return {"sklearn": str(sklearn.__version__), "numpy": str(np.__version__),
            "joblib": str(joblib.__version__)}


@dataclass
class ForestModel:
    """A fitted random forest with everything its inference needs.

    Attributes:
        forest: The fitted ``RandomForestClassifier`` on F·k flattened smoothed values
            (feature-major: all k steps of feature 0, then feature 1, ...); its classes are
            class *indices* ``0..C-1``.
        n_steps: Sequence length k (inference reads steps ``0..k-1`` only).
        features: F feature names, in input order.
        fill: (F, k) float32 fill curve (mean smoothed training curve per feature and step)
            for feature series without any observation, fitted on the training pixels.
        class_codes: C class labels as given to fitting; class index ``i`` means
            ``class_codes[i]``.
        class_names: C class names.
        cutoff: Butterworth cutoff, cycles per time step.
        order: Butterworth order.
        presmoothed: The fitting series were already smoothed on their k-step prefix
            (:meth:`predict` expects the same by default).
        metrics: Validation-field metrics (same keys as the CNN checkpoint's).
        test_metrics: Metrics on another season, or ``None``.
        seed: Forest seed.
        versions: scikit-learn, numpy and joblib versions of the fit.
    """

    forest: RandomForestClassifier = field(repr=False)
    n_steps: int
    features: tuple[str, ...]
    fill: np.ndarray = field(repr=False)
    class_codes: list[Any]
    class_names: tuple[str, ...]
    cutoff: float = DEFAULT_CUTOFF
    order: int = DEFAULT_ORDER
    presmoothed: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] | None = None
    seed: int = 0
    versions: dict[str, str] = field(default_factory=_versions)

    def __post_init__(self) -> None:
        self.features = tuple(str(f) for f in self.features)
        self.class_names = tuple(str(n) for n in self.class_names)
        self.class_codes = list(self.class_codes)
        self.fill = np.asarray(self.fill, dtype=np.float32)
        self.n_steps = int(self.n_steps)
        if self.fill.shape != (len(self.features), self.n_steps):
            raise ValueError(
                f"fill curve has shape {self.fill.shape}, expected (F, k) = "
                f"({len(self.features)}, {self.n_steps})")
        if len(self.class_codes) != len(self.class_names):
            raise ValueError(f"{len(self.class_codes)} class codes but "
                             f"{len(self.class_names)} class names")
        n_in = getattr(self.forest, "n_features_in_", None)
        if n_in is not None and int(n_in) != len(self.features) * self.n_steps:
            raise ValueError(
                f"the forest takes {n_in} values per pixel, not F x k = "
                f"{len(self.features)} x {self.n_steps}")
        # predictions run with n_jobs=1 inside the forest: its threaded accumulation of tree
        # probabilities sums in a varying order (ulp differences that flip near-ties);
        # parallelism comes from pixel chunks instead (predict(n_jobs=...))
        self._serial = copy.copy(self.forest)
        self._serial.n_jobs = 1

    # ---------------------------------------------------------------- inference
    def check_compatible(self, features: Sequence[str] | None = None,
                         n_steps: int | None = None, *, source: str = "the forest") -> None:
        """Refuse use with another feature list (names and order) or sequence length.

        Raises:
            ValueError: Naming ``source`` and what was expected.
        """
        problems = []
        if features is not None and tuple(str(f) for f in features) != self.features:
            problems.append(f"it was fitted on features {list(self.features)}, not "
                            f"{[str(f) for f in features]} (names and order must match)")
        if n_steps is not None and int(n_steps) != self.n_steps:
            problems.append(f"it was fitted for k={self.n_steps} steps, not k={int(n_steps)}")
        if problems:
            raise ValueError(f"{source} cannot be used here: " + "; ".join(problems))

    def _proba_valid(self, x: np.ndarray, presmoothed: bool, n_jobs: int) -> np.ndarray:
        """(n, C) float64 class probabilities of pixels that all have an observation."""
        sm, _ = smoothed_prefix(x, self.n_steps, cutoff=self.cutoff, order=self.order,
                                fill=self.fill, presmoothed=presmoothed)
        flat = sm.reshape(len(sm), -1)
        n_jobs = max(1, min(int(n_jobs), len(flat) // 256 or 1))
        if n_jobs == 1:
            raw = self._serial.predict_proba(flat)
        else:
            from concurrent.futures import ThreadPoolExecutor

            parts = np.array_split(flat, n_jobs)
            with ThreadPoolExecutor(n_jobs) as pool:  # tree traversal releases the GIL
                raw = np.concatenate(list(pool.map(self._serial.predict_proba, parts)))
        out = np.zeros((len(flat), len(self.class_codes)), dtype=np.float64)
        out[:, np.asarray(self.forest.classes_, dtype=np.int64)] = raw
        return out

    def _input(self, series_raw: np.ndarray, features: Sequence[str] | None) -> np.ndarray:
        if features is not None:
            self.check_compatible(features=features)
        return check_model_input(series_raw, self.features, self.n_steps, "the forest")

    def predict_proba(self, series_raw: np.ndarray, batch_size: int = DEFAULT_FOREST_BATCH,
                      *, features: Sequence[str] | None = None,
                      presmoothed: bool | None = None, n_jobs: int = 1,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities per pixel, streamed in batches.

        Args:
            series_raw: (N, F, T >= k) raw series, NaN = no observation; only the first k
                steps are read.
            batch_size: Pixels per batch.
            features: Feature names of ``series_raw`` (checked against the forest's).
            presmoothed: ``None`` follows the fit.
            n_jobs: Threads, each predicting a contiguous part of a batch (deterministic:
                every pixel's probabilities are summed over the trees in tree order). 1 by
                default: on 2 busy cores, 2 threads were no faster (65k pixels, 200 trees,
                k=17, F=5: 54-79k pixels/s with 1, 56-60k with 2).

        Returns:
            ``(probabilities (N, C) float32, valid (N,) bool)``; rows of pixels without any
            observation in the prefix are 0.
        """
        x = self._input(series_raw, features)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pre = self.presmoothed if presmoothed is None else bool(presmoothed)
        k = self.n_steps
        prob = np.zeros((x.shape[0], len(self.class_codes)), dtype=np.float32)
        valid = np.zeros(x.shape[0], dtype=bool)
        for start in range(0, x.shape[0], int(batch_size)):
            chunk = x[start:start + int(batch_size), :, :k]  # truncate first (rule 1)
            ok = valid_pixels(chunk, k)
            if ok.any():
                idx = np.flatnonzero(ok) + start
                prob[idx] = self._proba_valid(chunk[ok], pre, n_jobs)
                valid[idx] = True
        return prob, valid

    def predict(self, series_raw: np.ndarray, batch_size: int = DEFAULT_FOREST_BATCH, *,
                features: Sequence[str] | None = None, presmoothed: bool | None = None,
                n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Class and confidence per pixel, like :func:`cropassets.ml.predict.predict`.

        Same arguments as :meth:`predict_proba`.

        Returns:
            ``(class_index (N,) int64, confidence (N,) float32)``: index into
            ``class_codes`` / ``class_names`` (the class of highest forest probability, the
            first one on a tie, as ``RandomForestClassifier.predict``) and that probability
            (share of the trees' votes, in [0, 1]); ``(-1, 0.0)`` for pixels with no
            observation in any feature in the first k steps.
        """
        x = self._input(series_raw, features)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pre = self.presmoothed if presmoothed is None else bool(presmoothed)
        k = self.n_steps
        n = x.shape[0]
        cls = np.full(n, NODATA, dtype=np.int64)
        conf = np.zeros(n, dtype=np.float32)
        for start in range(0, n, int(batch_size)):
            chunk = x[start:start + int(batch_size), :, :k]  # truncate first (rule 1)
            ok = valid_pixels(chunk, k)
            if not ok.any():
                continue
            p = self._proba_valid(chunk[ok], pre, n_jobs)
            c = p.argmax(axis=1)
            idx = np.flatnonzero(ok) + start
            cls[idx] = c
            conf[idx] = p[np.arange(len(c)), c]
        return cls, conf

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """What :meth:`save` writes: the forest plus plain types."""
        return {
            "format": FOREST_FORMAT, "format_version": FOREST_FORMAT_VERSION,
            "forest": self.forest, "n_steps": self.n_steps, "features": list(self.features),
            "fill": self.fill.tolist(), "class_codes": list(self.class_codes),
            "class_names": list(self.class_names), "cutoff": float(self.cutoff),
            "order": int(self.order), "presmoothed": bool(self.presmoothed),
            "metrics": self.metrics, "test_metrics": self.test_metrics,
            "seed": int(self.seed), "versions": dict(self.versions),
        }

    def save(self, path: str | os.PathLike[str] | ObjPath) -> Location:
        """Write with joblib, atomically: a temporary file in the same folder, then rename.

        Returns:
            The path written.
        """
        from cropassets.core.storage import atomic_file

        with atomic_file(path) as fh:
            joblib.dump(self.to_dict(), fh)
        return location(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | ObjPath, *, n_steps: int | None = None,
             features: Sequence[str] | None = None) -> ForestModel:
        """Read a forest written by :meth:`save`.

        The file is a pickle (joblib): load only files this project wrote (the data root).

        Args:
            path: The ``.joblib`` file.
            n_steps: Expected sequence length (None: not checked).
            features: Expected feature list, names and order (None: not checked).

        Raises:
            FileNotFoundError: The file does not exist (named).
            ValueError: Not a forest of this project, another layout version, or another
                sequence length / feature list than expected (each naming the file).
        """
        p = location(path)
        if not p.is_file():
            raise FileNotFoundError(f"random forest file {p} does not exist")
        try:
            d = joblib.load(p.open("rb") if isinstance(p, ObjPath) else p)
        except Exception as err:
            raise ValueError(f"{p} is not a readable random forest file: {err}") from err
        if not isinstance(d, dict) or d.get("format") != FOREST_FORMAT:
            raise ValueError(f"{p} is not a cropassets random forest (expected a joblib dict "
                             f"with format={FOREST_FORMAT!r})")
        if d.get("format_version") != FOREST_FORMAT_VERSION:
            raise ValueError(f"random forest {p} has format version {d.get('format_version')}; "
                             f"this library reads version {FOREST_FORMAT_VERSION}")
        try:
            model = cls(
                forest=d["forest"], n_steps=d["n_steps"], features=tuple(d["features"]),
                fill=np.asarray(d["fill"], dtype=np.float32), class_codes=d["class_codes"],
                class_names=tuple(d["class_names"]), cutoff=d["cutoff"], order=d["order"],
                presmoothed=d["presmoothed"], metrics=d.get("metrics") or {},
                test_metrics=d.get("test_metrics"), seed=d.get("seed", 0),
                versions=d.get("versions") or {})
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"random forest {p} is incomplete or inconsistent: {err}") from err
        model.check_compatible(features, n_steps, source=f"random forest {p}")
        return model


@dataclass
class BaselineResult:
    """Metrics of the baseline for one sequence length.

    Attributes:
        n_steps: Sequence length k.
        metrics: Validation-field metrics (same keys as the CNN checkpoint's).
        test_metrics: Metrics on the ``test`` set, or ``None``.
        seconds: Fit + predict wall time.
        model: The fitted forest (not serialised by reports).
        fitted: The forest with what its inference needs (:class:`ForestModel`; save it
            to serve it).
    """

    n_steps: int
    metrics: dict[str, Any]
    test_metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    model: RandomForestClassifier | None = field(default=None, repr=False)
    fitted: ForestModel | None = field(default=None, repr=False)


def fit_random_forest(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    n_steps: int,
    *,
    features: Sequence[str] | None = None,
    **kwargs: Any,
) -> ForestModel:
    """:func:`random_forest_baseline`, returning the fitted, predict-capable forest.

    Args:
        series: (N, F, T >= n_steps) raw reference series, NaN = no observation.
        labels: (N,) class labels.
        field_ids: (N,) field ids.
        n_steps: Sequence length k.
        features: F feature names (default ``feature_0..``), stored and checked at
            inference.
        **kwargs: Any keyword of :func:`random_forest_baseline`.

    Returns:
        A :class:`ForestModel` with ``metrics`` (and ``test_metrics``) set.
    """
    res = random_forest_baseline(series, labels, field_ids, n_steps, features=features,
                                 **kwargs)
    assert res.fitted is not None
    return res.fitted


def random_forest_baseline(
    series: np.ndarray,
    labels: np.ndarray,
    field_ids: np.ndarray,
    n_steps: int,
    *,
    split: FieldSplit | None = None,
    class_names: Sequence[str] | dict[Any, str] | None = None,
    cutoff: float = DEFAULT_CUTOFF,
    order: int = DEFAULT_ORDER,
    seed: int = 0,
    val_fraction: float = 0.25,
    n_estimators: int = 200,
    max_samples: float | None = None,
    n_jobs: int = 2,
    max_pixels_per_field: int | None = None,
    presmoothed: bool = False,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    features: Sequence[str] | None = None,
) -> BaselineResult:
    """Fit the forest on the training fields and score validation (and test) pixels.

    Args:
        series: (N, F, T >= n_steps) raw reference series, NaN = no observation.
        labels: (N,) class labels.
        field_ids: (N,) field ids.
        n_steps: Sequence length k.
        split: The CNN's field split (default: :func:`split_fields` with ``seed`` and
            ``val_fraction``, which is what :func:`~cropassets.ml.train.train` uses).
        class_names: As for :func:`~cropassets.ml.train.train`.
        cutoff: Butterworth cutoff, cycles per step.
        order: Butterworth order.
        seed: Forest seed (and split seed when ``split`` is None).
        val_fraction: Validation share when the split is computed here.
        n_estimators: Trees.
        max_samples: Share of the training pixels in each tree's bootstrap sample
            (``None``: as many as there are, scikit-learn's default).
        n_jobs: Worker processes/threads of the forest (fit), and threads over pixel
            chunks when predicting.
        max_pixels_per_field: Cap on training pixels per field, chosen as
            :func:`~cropassets.ml.train.train` chooses them for the same ``seed`` (the
            default matches ``TrainConfig.max_pixels_per_field``, so both models fit on
            the same pixels).
        presmoothed: Series already smoothed on their first ``n_steps`` steps (as for
            :func:`~cropassets.ml.train.train`); applies to ``test`` too.
        test: ``(series, labels)`` of another season; labels unknown to training are
            left out; pixels without any observation count as errors (nodata).
        features: F feature names stored in ``fitted`` (default ``feature_0..``).

    Returns:
        A :class:`BaselineResult`; its ``fitted`` :class:`ForestModel` predicts exactly
        what the metrics were computed from.
    """
    t0 = time.perf_counter()
    x = np.asarray(series)
    y_idx, codes, names = resolve_classes(np.asarray(labels), class_names)
    fid = np.asarray(field_ids)
    feats = (tuple(f"feature_{i}" for i in range(x.shape[1])) if features is None
             else tuple(str(f) for f in features))
    if len(feats) != x.shape[1]:
        raise ValueError(f"{len(feats)} feature names given for {x.shape[1]} features")
    if split is None:
        split = split_fields(labels, fid, val_fraction=val_fraction, seed=seed,
                             class_names=names)
    tr, va, _ = split.masks(fid)
    valid = valid_pixels(x, n_steps)
    tr &= valid
    va &= valid
    tr = cap_pixels_per_field(tr, fid, max_pixels_per_field, seed)
    x_tr, fill = smoothed_prefix(x[tr], n_steps, cutoff=cutoff, order=order,
                                 presmoothed=presmoothed)
    rf = RandomForestClassifier(
        n_estimators=n_estimators,
        max_samples=max_samples,
        random_state=seed,
        n_jobs=n_jobs,
        class_weight="balanced",
    )
    rf.fit(x_tr.reshape(len(x_tr), -1), y_idx[tr])
    fitted = ForestModel(forest=rf, n_steps=n_steps, features=feats, fill=fill,
                         class_codes=codes, class_names=names, cutoff=cutoff, order=order,
                         presmoothed=presmoothed, seed=seed)
    # validation and test pixels go through the served predictor itself, so the metrics
    # are exactly what serving the forest gives
    pred, _ = fitted.predict(x[va], n_jobs=n_jobs)
    metrics = classification_metrics(y_idx[va], pred, names)
    test_metrics = None
    if test is not None:
        xt = np.asarray(test[0])
        yt = np.asarray(test[1])
        code_arr = np.asarray(codes)
        known = np.isin(yt, code_arr)
        yt_idx = np.argsort(code_arr)[np.searchsorted(np.sort(code_arr), yt[known])]
        pt, _ = fitted.predict(xt[known], n_jobs=n_jobs)  # nodata (-1) counts as an error
        test_metrics = classification_metrics(yt_idx, pt, names)
        test_metrics["n_unknown_label"] = int((~known).sum())
    fitted.metrics = metrics
    fitted.test_metrics = test_metrics
    return BaselineResult(
        n_steps=int(n_steps),
        metrics=metrics,
        test_metrics=test_metrics,
        seconds=time.perf_counter() - t0,
        model=rf,
        fitted=fitted,
    )
