"""The knee report on disk (``<data>/knee_report/knee.json``) as a typed, versioned record.

``knee_report`` writes it and everything that needs the knee (``week_model``, the week
manifest's preliminary flag) reads it through :meth:`KneeReport.from_json`, so the layout
is defined once. Accuracies are overall accuracy in 0..1 on the reference seasons'
validation fields (``current`` ones: on the current season's labels, None without them);
``k`` is the week of season (sequence length, steps).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cropassets.core.json_records import VERSION_KEY, checked_version, json_object, take_fields
from cropassets.core.objstore import ObjPath, location

FORMAT_VERSION = 1
"""Version of the layout; :meth:`KneeReport.from_json` refuses another (files written before
versions existed, without the key, read as version 1: the same layout)."""


@dataclass(frozen=True)
class KneeRow:
    """One sequence length of the report: both models' scores and what serves the week."""

    k: int
    cnn: float
    macro_f1: float
    per_class_f1: dict[str, float]
    rf: float
    current: float | None
    rf_current: float | None
    served: str               # cnn2d | random_forest | combination
    served_accuracy: float
    served_current: float | None


@dataclass(frozen=True)
class KneeSummary:
    """Where the knee lies: the minimum season length, in weeks (= steps) and months."""

    length_weeks: float
    length_months: float
    length_steps: int
    rule: str
    explanation: str
    accuracy: float
    full_accuracy: float


_ROW_FIELDS = tuple(f.name for f in fields(KneeRow))
_KNEE_FIELDS = tuple(f.name for f in fields(KneeSummary))


@dataclass(frozen=True)
class KneeReport:
    """Accuracy against sequence length, the knee, and which model serves each length."""

    lengths_weeks: list[int]
    rows: list[KneeRow]
    knee: KneeSummary
    baseline_wins_at_weeks: list[int]
    statement: str
    served: list[dict[str, Any]] = field(default_factory=list)
    served_statement: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def knee_week(self) -> int:
        """The knee as a week of season (k)."""
        return int(self.knee.length_steps)

    def to_json(self) -> str:
        """The file's text (indented JSON)."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "knee report") -> KneeReport:
        """Parse a report written by :meth:`to_json`.

        Raises:
            ValueError: Not JSON, another format version, or a missing field (named, with
                ``source``).
        """
        d = json_object(text, source, "knee report")
        version = checked_version(d, source, "knee report", FORMAT_VERSION,
                                  "re-materialize knee_report")
        f = take_fields(d, source, "the knee report",
                        required=("lengths_weeks", "rows", "knee", "baseline_wins_at_weeks",
                                  "statement"),
                        optional={"served": [], "served_statement": ""},
                        ignored=(VERSION_KEY,))
        if not isinstance(f["rows"], list):
            raise ValueError(f"{source}: rows of the knee report must be a list")
        rows = [take_fields(r, source, f"row {i}", _ROW_FIELDS) for i, r in enumerate(f["rows"])]
        knee = take_fields(f["knee"], source, "knee", _KNEE_FIELDS)
        try:
            return cls(
                lengths_weeks=[int(k) for k in f["lengths_weeks"]],
                rows=[KneeRow(**r) for r in rows],
                knee=KneeSummary(**(knee | {"length_steps": int(knee["length_steps"])})),
                baseline_wins_at_weeks=[int(k) for k in f["baseline_wins_at_weeks"]],
                statement=str(f["statement"]),
                served=list(f["served"]),
                served_statement=str(f["served_statement"]),
                format_version=version,
            )
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: a value of the knee report has the wrong type: "
                             f"{err}") from None

    @classmethod
    def read(cls, path: str | Path | ObjPath) -> KneeReport:
        """Read ``knee.json`` (FileNotFoundError when the report was never written)."""
        p = location(path)
        return cls.from_json(p.read_text(), source=str(p))
