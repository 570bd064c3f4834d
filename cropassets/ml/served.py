"""The model that serves week k: the CNN2D, the random forest, or their combination.

``cnn2d_checkpoint[k]`` trains the CNN2D and, on the same field split, the random-forest
baseline (:func:`cropassets.ml.baseline.random_forest_baseline`). Both are kept: the forest
beside the checkpoint (``k06.pt`` -> ``k06.rf.joblib``, :func:`forest_path`), and the
checkpoint's ``metrics["served"]`` records which one maps week k (:func:`select_served`):

    {"model": "cnn2d" | "random_forest" | "combination",
     "cnn2d_val_accuracy": 0.91, "random_forest_val_accuracy": 0.94,
     "combination_val_accuracy": 0.93,            # when it was evaluated
     "val_accuracy": 0.94,                        # of the served model
     "current_season_accuracy": 0.90 | None,      # of the served model, held-back labels
     "rule": SERVED_RULE,
     "forest_file": "k06.rf.joblib", "forest_sha256": "..."}

Rule (:func:`choose_served`): the higher validation overall accuracy, ties to the CNN2D; the
combination (the mean of both models' class probabilities) only when it is strictly above
both. Both scores come from the same validation fields of the same split, so the comparison
is fair; the CNN's is slightly optimistic (its early stopping watched the validation loss),
which favours the CNN in close calls.

:func:`load_served` reads what a checkpoint serves (a checkpoint without a record, written
before this choice existed, serves its CNN2D) and :meth:`ServedModel.predict` /
:func:`predict_served` give ``(class_index, confidence)`` for raw series exactly like
:func:`cropassets.ml.predict.predict`: same truncation, streamed batches, ``(-1, 0.0)`` for
pixels without any observation in the prefix. No Dagster import.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cropassets.core.objstore import Location, ObjPath, location
from cropassets.core.week_model_record import MODEL_TITLES
from cropassets.ml.baseline import DEFAULT_FOREST_BATCH, ForestModel
from cropassets.ml.checkpoint import Checkpoint
from cropassets.ml.metrics import classification_metrics
from cropassets.ml.predict import NODATA, check_steps, predict, predict_proba
from cropassets.ml.prepare import check_model_input, valid_pixels

__all__ = [
    "KINDS",
    "KIND_TITLES",
    "SERVED_RULE",
    "ServedModel",
    "choose_served",
    "evaluate_served",
    "file_sha256",
    "forest_path",
    "load_served",
    "predict_served",
    "save_served",
    "select_served",
    "served_record",
]

KINDS = ("cnn2d", "random_forest", "combination")
"""Values of ``metrics["served"]["model"]``."""

KIND_TITLES = MODEL_TITLES
"""Human names of the kinds (web map label, reports; defined with the week layers)."""

SERVED_RULE = ("higher validation overall accuracy; ties -> cnn2d; combination (mean of both "
               "models' probabilities) only when strictly above both")
"""The choice rule, recorded with every choice."""

LEGACY_RULE = "no served record (checkpoint written before the served-model choice): cnn2d"

CNN_BATCH = 2048
"""Pixels per CNN batch (see :func:`cropassets.ml.predict.predict`)."""


def forest_path(checkpoint_path: str | os.PathLike[str] | ObjPath) -> Location:
    """Where the forest of a checkpoint lives: ``<dir>/k06.pt`` -> ``<dir>/k06.rf.joblib``."""
    p = location(checkpoint_path)
    return p.with_name(f"{p.stem}.rf.joblib")


def file_sha256(path: str | os.PathLike[str] | ObjPath) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (an object: read whole)."""
    h = hashlib.sha256()
    loc = location(path)
    with loc.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finite(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def choose_served(cnn2d_val_accuracy: float, random_forest_val_accuracy: float | None,
                  combination_val_accuracy: float | None = None) -> dict[str, Any]:
    """Apply :data:`SERVED_RULE` to validation overall accuracies.

    A missing or NaN forest score never wins; a missing combination is not a candidate.

    Returns:
        ``{"model", "val_accuracy", "cnn2d_val_accuracy", "random_forest_val_accuracy",
        ["combination_val_accuracy",] "rule"}``.
    """
    cnn = float(cnn2d_val_accuracy)
    rf = _finite(random_forest_val_accuracy)
    comb = _finite(combination_val_accuracy)
    kind, best = "cnn2d", cnn
    if rf is not None and rf > cnn:
        kind, best = "random_forest", rf
    if comb is not None and comb > cnn and (rf is None or comb > rf):
        kind, best = "combination", comb
    out: dict[str, Any] = {"model": kind, "val_accuracy": best, "cnn2d_val_accuracy": cnn,
                           "random_forest_val_accuracy": rf}
    if combination_val_accuracy is not None:
        out["combination_val_accuracy"] = comb
    out["rule"] = SERVED_RULE
    return out


@dataclass
class ServedModel:
    """What maps week k: a CNN2D checkpoint, a forest, or both (combination).

    Attributes:
        kind: One of :data:`KINDS`.
        checkpoint: The CNN2D checkpoint (always loaded: it holds the record).
        forest: The forest (``random_forest`` and ``combination`` only).
        record: The checkpoint's ``metrics["served"]`` (synthesised for old checkpoints).
        checkpoint_path: Where the checkpoint was read from, if from a file.
        forest_file: Where the forest was read from, if it was.
    """

    kind: str
    checkpoint: Checkpoint
    forest: ForestModel | None = None
    record: dict[str, Any] = field(default_factory=dict)
    checkpoint_path: Location | None = None
    forest_file: Location | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"served model kind {self.kind!r} is not one of {KINDS}")
        if self.kind != "cnn2d" and self.forest is None:
            raise ValueError(f"a {self.kind} served model needs its random forest")
        if self.forest is not None:
            ck = self.checkpoint
            source = (f"random forest {self.forest_file}" if self.forest_file
                      else "the random forest")
            if self.checkpoint_path is not None:
                source += f" of checkpoint {self.checkpoint_path}"
            self.forest.check_compatible(ck.features, ck.n_steps, source=source)
            if [str(c) for c in self.forest.class_codes] != [str(c) for c in ck.class_codes]:
                raise ValueError(f"{source} has classes {self.forest.class_codes}, expected "
                                 f"the checkpoint's {ck.class_codes}")
        if not self.record:
            self.record = {"model": self.kind}

    # ------------------------------------------------------------ what it is
    @classmethod
    def cnn2d(cls, checkpoint: Checkpoint) -> ServedModel:
        """Serve a checkpoint's CNN2D, whatever its record says.

        For a checkpoint given directly, as every map was made before the choice existed.
        """
        rec = checkpoint.metrics.get("served") or {}
        return cls("cnn2d", checkpoint, record=(
            dict(rec) if rec.get("model") == "cnn2d" else _legacy_record(checkpoint)))

    @property
    def title(self) -> str:
        """Human name of the kind."""
        return KIND_TITLES[self.kind]

    @property
    def n_steps(self) -> int:
        """Sequence length k."""
        return self.checkpoint.n_steps

    @property
    def features(self) -> tuple[str, ...]:
        """Input features, in order."""
        return self.checkpoint.features

    @property
    def class_codes(self) -> list[Any]:
        """Class index ``i`` of :meth:`predict` means ``class_codes[i]``."""
        return self.checkpoint.class_codes

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names."""
        return self.checkpoint.class_names

    @property
    def val_accuracy(self) -> float:
        """Validation overall accuracy of the served model."""
        v = self.record.get("val_accuracy")
        if v is None:
            v = {"cnn2d": self.checkpoint.metrics.get("overall_accuracy"),
                 "random_forest": (self.forest.metrics if self.forest else {}).get(
                     "overall_accuracy")}.get(self.kind)
        return float("nan") if v is None else float(v)

    @property
    def current_season_accuracy(self) -> float | None:
        """Accuracy of the served model on the current season's held-back labels."""
        v = self.record.get("current_season_accuracy")
        if v is None and self.kind == "cnn2d":
            v = (self.checkpoint.metrics.get("current_season") or {}).get("overall_accuracy")
        return None if v is None else float(v)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: kind, title, accuracies, rule."""
        return {"kind": self.kind, "title": self.title, "val_accuracy": self.val_accuracy,
                "current_season_accuracy": self.current_season_accuracy,
                "cnn2d_val_accuracy": self.record.get("cnn2d_val_accuracy"),
                "random_forest_val_accuracy": self.record.get("random_forest_val_accuracy"),
                "rule": self.record.get("rule", "")}

    # ------------------------------------------------------------ inference
    def predict_proba(self, series_raw: np.ndarray, batch_size: int | None = None,
                      device: torch.device | str | None = None, *,
                      features: Sequence[str] | None = None,
                      dates: Sequence[Any] | np.ndarray | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities ``((N, C) float32, valid (N,) bool)``, rows 0 where invalid.

        CNN2D: softmax; forest: share of tree votes; combination: their mean. ``dates``
        as for :meth:`predict`.
        """
        x = self._input(series_raw, features, dates)
        if self.kind == "cnn2d":
            return predict_proba(self.checkpoint, x, batch_size or CNN_BATCH, device,
                                 dates=dates)
        assert self.forest is not None
        if self.kind == "random_forest":
            return self.forest.predict_proba(x, batch_size or DEFAULT_FOREST_BATCH)
        n = x.shape[0]
        out = np.zeros((n, len(self.class_codes)), dtype=np.float32)
        valid = np.zeros(n, dtype=bool)
        step = int(batch_size or DEFAULT_FOREST_BATCH)
        for start in range(0, n, step):
            chunk = x[start:start + step]
            p_cnn, ok = predict_proba(self.checkpoint, chunk, min(step, CNN_BATCH), device,
                                      dates=dates)
            p_rf, _ = self.forest.predict_proba(chunk, step)
            out[start:start + step] = np.where(ok[:, None], (p_cnn + p_rf) / 2, 0.0)
            valid[start:start + step] = ok
        return out, valid

    def predict(self, series_raw: np.ndarray, batch_size: int | None = None,
                device: torch.device | str | None = None, *,
                features: Sequence[str] | None = None,
                dates: Sequence[Any] | np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Class and confidence per pixel, like :func:`cropassets.ml.predict.predict`.

        Args:
            series_raw: (N, F, T >= k) raw series, NaN = no observation; only the first k
                steps are read.
            batch_size: Pixels per batch (default: 2048 for the CNN2D, 16384 for the forest
                and the combination).
            device: Torch device of the CNN2D (default CUDA when present).
            features: Feature names of ``series_raw``, checked against the model's.
            dates: (T,) step dates of ``series_raw``, checked against the trained steps
                (:func:`cropassets.ml.predict.check_steps`) for every kind of model.

        Returns:
            ``(class_index (N,) int64, confidence (N,) float32)``: index into
            ``class_codes``, probability of that class in [0, 1]; ``(-1, 0.0)`` for pixels
            with no observation in any feature in the first k steps.
        """
        x = self._input(series_raw, features, dates)
        if self.kind == "cnn2d":
            return predict(self.checkpoint, x, batch_size or CNN_BATCH, device, dates=dates)
        if self.kind == "random_forest":
            assert self.forest is not None
            return self.forest.predict(x, batch_size or DEFAULT_FOREST_BATCH)
        prob, ok = self.predict_proba(x, batch_size, device, dates=dates)
        cls = np.where(ok, prob.argmax(axis=1), NODATA).astype(np.int64)
        conf = np.where(ok, prob.max(axis=1), 0.0).astype(np.float32)
        return cls, conf

    def _input(self, series_raw: np.ndarray, features: Sequence[str] | None,
               dates: Sequence[Any] | np.ndarray | None = None) -> np.ndarray:
        if features is not None:
            self.checkpoint.check_compatible(features=features)
        x = check_model_input(series_raw, self.features, self.n_steps, "the served model")
        check_steps(self.checkpoint, dates, x.shape[2])
        return x


def _legacy_record(checkpoint: Checkpoint) -> dict[str, Any]:
    """The record of a checkpoint that serves its CNN2D without a recorded choice."""
    m = checkpoint.metrics
    cur = (m.get("current_season") or {}).get("overall_accuracy")
    return {"model": "cnn2d", "val_accuracy": m.get("overall_accuracy"),
            "cnn2d_val_accuracy": m.get("overall_accuracy"),
            "random_forest_val_accuracy": (m.get("baseline_rf") or {}).get("overall_accuracy"),
            "current_season_accuracy": cur, "rule": LEGACY_RULE}


def save_served(checkpoint: Checkpoint, forest: ForestModel, record: dict[str, Any],
                path: str | os.PathLike[str] | ObjPath) -> tuple[Location, Location]:
    """Write the forest beside the checkpoint, then the checkpoint with its record.

    Both atomically (temporary file + rename); the forest first, so a checkpoint on disk
    always finds the forest its record names. ``record`` (:func:`select_served`) gets
    ``forest_file`` (name, beside the checkpoint) and ``forest_sha256`` and is stored as
    ``checkpoint.metrics["served"]``.

    Returns:
        ``(checkpoint path, forest path)``.
    """
    if record.get("model") not in KINDS:
        raise ValueError(f"served record names model {record.get('model')!r}, not one of "
                         f"{KINDS}")
    forest.check_compatible(checkpoint.features, checkpoint.n_steps)
    ck_path = location(path)
    f_path = forest.save(forest_path(ck_path))
    checkpoint.metrics["served"] = {**record, "forest_file": f_path.name,
                                    "forest_sha256": file_sha256(f_path)}
    return checkpoint.save(ck_path), f_path


def served_record(checkpoint: Checkpoint) -> dict[str, Any]:
    """``checkpoint.metrics["served"]``, or the CNN2D record of a checkpoint without one."""
    rec = checkpoint.metrics.get("served")
    return dict(rec) if rec else _legacy_record(checkpoint)


def load_served(checkpoint_path: str | os.PathLike[str] | ObjPath, *,
                features: Sequence[str] | None = None,
                n_steps: int | None = None) -> ServedModel:
    """What a checkpoint serves: read its record, load the forest where it is needed.

    Args:
        checkpoint_path: ``<data>/cnn2d_checkpoint/k06.pt``.
        features: Expected feature list (names and order); None: not checked.
        n_steps: Expected sequence length; None: not checked.

    Raises:
        FileNotFoundError: The checkpoint, or the forest its record names, is missing (the
            message names the file and the checkpoint that needs it).
        ValueError: An unknown kind, a forest that is not the one the choice was made with
            (SHA-256), or a model for other features / another k (naming the file and what
            was expected).
    """
    ck_path = location(checkpoint_path)
    if not ck_path.is_file():
        raise FileNotFoundError(f"checkpoint {ck_path} does not exist")
    ckpt = Checkpoint.load(ck_path)
    if features is not None or n_steps is not None:
        try:
            ckpt.check_compatible(features=features, n_steps=n_steps)
        except ValueError as err:
            raise ValueError(f"checkpoint {ck_path}: {err}") from err
    rec = ckpt.metrics.get("served")
    if not rec:
        return ServedModel("cnn2d", ckpt, record=_legacy_record(ckpt), checkpoint_path=ck_path)
    kind = rec.get("model")
    if kind not in KINDS:
        raise ValueError(f"checkpoint {ck_path} serves model {kind!r}; expected one of {KINDS}")
    if kind == "cnn2d":
        return ServedModel(kind, ckpt, record=dict(rec), checkpoint_path=ck_path)
    f_path = ck_path.parent / rec.get("forest_file", forest_path(ck_path).name)
    if not f_path.is_file():
        raise FileNotFoundError(
            f"checkpoint {ck_path} serves the {KIND_TITLES[kind]}, but its random forest file "
            f"{f_path} does not exist (expected beside the checkpoint; re-materialize "
            f"cnn2d_checkpoint k={ckpt.n_steps:02d})")
    want = rec.get("forest_sha256")
    if want and file_sha256(f_path) != want:
        raise ValueError(
            f"random forest file {f_path} is not the forest checkpoint {ck_path} was compared "
            f"with (SHA-256 differs from the recorded {want[:12]}...); re-materialize "
            f"cnn2d_checkpoint k={ckpt.n_steps:02d}")
    forest = ForestModel.load(f_path, n_steps=ckpt.n_steps, features=ckpt.features)
    return ServedModel(kind, ckpt, forest, dict(rec), checkpoint_path=ck_path,
                       forest_file=f_path)


def predict_served(model: ServedModel | str | os.PathLike[str], series_raw: np.ndarray,
                   batch_size: int | None = None, device: torch.device | str | None = None,
                   *, features: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class index and confidence from what week k serves; see :meth:`ServedModel.predict`.

    ``model`` is a :class:`ServedModel` or a checkpoint path for :func:`load_served`.
    """
    served = model if isinstance(model, ServedModel) else load_served(model)
    return served.predict(series_raw, batch_size, device, features=features)


def _label_index(codes: Sequence[Any], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(known (N,) bool, class index of the known labels)."""
    code_arr = np.asarray(codes)
    y = np.asarray(labels)
    known = np.isin(y, code_arr)
    order = np.argsort(code_arr)
    return known, order[np.searchsorted(code_arr[order], y[known])]


def evaluate_served(model: ServedModel, series_raw: np.ndarray, labels: np.ndarray,
                    device: torch.device | str | None = None,
                    dates: Sequence[Any] | np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of the served model on labelled pixels.

    As :func:`cropassets.ml.predict.evaluate`: unknown labels are left out and counted in
    ``n_unknown_label``, nodata counts as an error. ``dates``: (T,) step dates.
    """
    known, y_idx = _label_index(model.class_codes, labels)
    pred, _ = model.predict(np.asarray(series_raw)[known], device=device, dates=dates)
    m = classification_metrics(y_idx, pred, model.class_names)
    m["n_unknown_label"] = int((~known).sum())
    return m


def select_served(checkpoint: Checkpoint, forest: ForestModel, series: np.ndarray,
                  labels: np.ndarray, field_ids: np.ndarray, *,
                  test: tuple[np.ndarray, np.ndarray] | None = None,
                  combination: bool = True,
                  device: torch.device | str | None = None,
                  dates: Sequence[Any] | np.ndarray | None = None) -> dict[str, Any]:
    """Choose what serves week k, on the validation fields of the checkpoint's split.

    The CNN2D and forest scores are their own validation metrics (``overall_accuracy`` of
    ``checkpoint.metrics`` and ``forest.metrics``, the same pixels: the split's validation
    fields with an observation in the prefix); the combination is scored on those pixels
    here. The served model's current-season accuracy is taken from
    ``checkpoint.metrics["current_season"]`` / ``["baseline_rf_current_season"]`` when
    present, else computed on ``test``.

    Args:
        checkpoint: The trained CNN2D.
        forest: The forest fitted on the same split (``forest.metrics`` set).
        series: (N, F, T) the reference series both were trained on.
        labels: (N,) their labels.
        field_ids: (N,) their field ids.
        test: ``(series, labels)`` of the current season, for its accuracy.
        combination: Also score the mean of both models' probabilities. Not done for a
            CNN2D refit on training + validation fields (``TrainConfig.refit``): it has
            seen the validation pixels, so the record says why the combination is absent.
        device: Torch device of the CNN2D.
        dates: (T,) step dates of ``series`` and ``test`` (needed for a checkpoint trained
            on irregular dated steps).

    Returns:
        The record for ``checkpoint.metrics["served"]`` (see the module docstring), without
        the forest file keys, which the caller adds once the forest is saved.
    """
    forest.check_compatible(checkpoint.features, checkpoint.n_steps)
    cnn_acc = float(checkpoint.metrics["overall_accuracy"])
    rf_acc = forest.metrics.get("overall_accuracy")
    comb_acc = None
    refit = bool(checkpoint.metrics.get("refit"))
    if combination and not refit:
        x = np.asarray(series)
        _, va, _ = checkpoint.field_split.masks(np.asarray(field_ids))
        va &= valid_pixels(x, checkpoint.n_steps)
        known, y_idx = _label_index(checkpoint.class_codes, np.asarray(labels)[va])
        both = ServedModel("combination", checkpoint, forest)
        if known.any():
            pred, _ = both.predict(x[va][known], device=device, dates=dates)
            comb_acc = float((pred == y_idx).mean())
    rec = choose_served(cnn_acc, rf_acc, comb_acc)
    if combination and refit:
        rec["combination_not_scored"] = ("the CNN2D was refit on the validation fields "
                                         "(TrainConfig.refit): no unbiased score")
    cur: float | None = None
    m = checkpoint.metrics
    if rec["model"] == "cnn2d" and "current_season" in m:
        cur = m["current_season"]["overall_accuracy"]
    elif rec["model"] == "random_forest" and forest.test_metrics is not None:
        cur = forest.test_metrics["overall_accuracy"]
    elif test is not None:
        served = ServedModel(rec["model"], checkpoint,
                             forest if rec["model"] != "cnn2d" else None)
        cur = evaluate_served(served, test[0], test[1], device, dates)["overall_accuracy"]
    rec["current_season_accuracy"] = None if cur is None else float(cur)
    return rec
