"""The week-model record on disk (``<data>/week_model/<week>.json``) as a typed, versioned record.

``week_model`` writes it (:func:`cropassets.ml.tile_predict.model_record` builds it) and
``crop_map``, ``week_layers`` and the crop COG's tags
(:func:`cropassets.core.publish.crop_products.crop_cog_tags`) read it through
:meth:`WeekModelRecord.read`, so the layout is defined once. It names the model that maps
one calendar week: what checkpoint k (k = the week of season) serves.

Versions: the layout written so far is version 1 and carries no ``format_version`` key
(the file's bytes are those written before this record existed); a later layout writes
``"format_version": n`` and this library refuses it. Version 1 files from before the
served-model choice lack ``model_kind``, ``model_title``, ``cnn2d_accuracy``,
``random_forest_accuracy``, ``rule``, ``forest`` and ``forest_sha256``: they read as the
CNN2D's record (no forest, no other scores, empty rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cropassets.core.json_records import (
    VERSION_KEY,
    checked_version,
    json_object,
    take_fields,
)
from cropassets.core.objstore import ObjPath, location

FORMAT_VERSION = 1
"""Version of the layout :meth:`WeekModelRecord.to_json` writes (without the key: see the
module docstring)."""

MODEL_TITLES = {"cnn2d": "CNN2D", "random_forest": "random forest",
                "combination": "CNN2D + random forest"}
"""Human names of the model kinds (web map label, COG tags, reports; ``ml.served`` uses
these)."""

_REQUIRED = ("week", "season", "week_of_season", "checkpoint", "checkpoint_sha256",
             "accuracy", "current_season_accuracy", "class_codes", "class_names",
             "knee_week", "preliminary")
"""Keys of every layout (the first one wrote only these)."""


@dataclass(frozen=True, kw_only=True)
class WeekModelRecord:
    """Which model maps a calendar week, as ``week_model`` records it.

    Fields are declared in the file's key order. Accuracies are overall accuracy in 0..1.
    """

    week: str                       # calendar week key (its Monday, YYYY-MM-DD)
    season: str                     # season id
    week_of_season: int             # k, 1-based: the checkpoint's sequence length (weeks)
    checkpoint: str                 # cnn2d_checkpoint file, relative to the data root (POSIX)
    checkpoint_sha256: str          # hex SHA-256 of that file
    model_kind: str                 # cnn2d | random_forest | combination
    model_title: str                # human name of the kind (:data:`MODEL_TITLES`)
    accuracy: float                 # the served model's validation accuracy
    current_season_accuracy: float | None  # on the current season's labels; None without
    cnn2d_accuracy: float | None    # the CNN2D's validation accuracy (None: not scored)
    random_forest_accuracy: float | None  # the forest's validation accuracy
    rule: str                       # how the served model was chosen ("" before the choice)
    forest: str | None              # the forest file (relative to the root) when it is used
    forest_sha256: str | None       # its hex SHA-256
    class_codes: list[int]          # legend class codes, in the model's output order
    class_names: list[str]          # their names
    knee_week: int | None           # knee of the knee report (weeks); None before it exists
    preliminary: bool               # week_of_season < knee_week (True without a knee)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object: every field in declaration order (no version key in v1)."""
        return {
            **({VERSION_KEY: self.format_version} if self.format_version != 1 else {}),
            "week": self.week, "season": self.season, "week_of_season": self.week_of_season,
            "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
            "model_kind": self.model_kind, "model_title": self.model_title,
            "accuracy": self.accuracy, "current_season_accuracy": self.current_season_accuracy,
            "cnn2d_accuracy": self.cnn2d_accuracy,
            "random_forest_accuracy": self.random_forest_accuracy,
            "rule": self.rule, "forest": self.forest, "forest_sha256": self.forest_sha256,
            "class_codes": self.class_codes, "class_names": self.class_names,
            "knee_week": self.knee_week, "preliminary": self.preliminary,
        }

    def to_json(self) -> str:
        """The file's text (JSON indented by one space, as ``week_model`` has always written)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "week model record") -> WeekModelRecord:
        """Parse a record written by :meth:`to_json` (or by an earlier version 1 writer).

        Raises:
            ValueError: Not a JSON object, another format version, or a missing or unknown
                field (each named, with ``source``).
        """
        doc = json_object(text, source, "week model record")
        version = checked_version(doc, source, "week model record", FORMAT_VERSION,
                                  "re-materialize week_model with this version")
        d = take_fields(doc, source, "the week model record", _REQUIRED, {
            "model_kind": "cnn2d", "model_title": None, "cnn2d_accuracy": None,
            "random_forest_accuracy": None, "rule": "", "forest": None,
            "forest_sha256": None}, ignored=(VERSION_KEY,))
        if d["model_title"] is None:  # records from before the choice: the CNN2D
            d["model_title"] = MODEL_TITLES.get(d["model_kind"], d["model_kind"])
        for key in ("class_codes", "class_names"):
            if not isinstance(d[key], list):
                raise ValueError(f"{source}: {key} is not a list")
        return cls(**d, format_version=version)

    @classmethod
    def read(cls, path: str | Path | ObjPath) -> WeekModelRecord:
        """Read ``<data>/week_model/<week>.json`` (FileNotFoundError when never written)."""
        p = location(path)
        return cls.from_json(p.read_bytes(), source=str(p))
