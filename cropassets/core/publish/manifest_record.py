"""The week manifest on disk (``<data>/week_layers/<week>.json``) as a typed, versioned record.

:func:`cropassets.core.publish.week_layers.write_week_layer` writes it; the tiler, the
products' STAC items and the assets read it through :meth:`WeekManifest.from_json` (or
:meth:`WeekManifest.read`), so the layout (docs/CONTRACTS.md "Week manifest") is defined
once. Paths in it are relative to the data root (POSIX); bounds are (west, south, east,
north) in degrees (EPSG:4326); weeks of season count from 1.

Versions: the layout written so far is version 1 and carries no ``format_version`` key
(the file's bytes, and so the tiler's week versions, are those written before this record
existed); a later layout writes ``"format_version": n`` and this library refuses it, naming
the file. Version 1 files written by earlier releases lack keys added since; they read as:

- ``radar`` (radar behind the maps): None (unknown);
- ``incomplete_weeks``: none; ``regions`` and ``styles`` (QGIS files): none;
- ``coverage_range``: None;
- ``layers`` without ``coverage`` and a ``model`` entry without ``kind`` (before the
  served-model choice: the CNN2D's) are kept as they are (``coverage`` and ``kind`` None),
  since the tiler serves both objects as the file has them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cropassets.core.json_records import (
    VERSION_KEY,
    checked_version,
    json_object,
    take_fields,
)
from cropassets.core.legend import LegendEntry

FORMAT_VERSION = 1
"""Version of the layout :meth:`WeekManifest.to_json` writes (without the key: see the
module docstring)."""

TILE_PRODUCTS = ("crop", "sos", "coverage")
"""Product files a tile row may name, in the order they are written
(= :data:`cropassets.core.publish.week_layers.PRODUCTS`)."""


_FIRST_MODEL = ("week", "accuracy", "current_season_accuracy", "checkpoint_sha256")
"""Keys of a model entry from before the served-model choice (the CNN2D's), in file order."""


@dataclass(frozen=True, kw_only=True)
class ManifestModel:
    """The manifest's ``model``: which model made the week's crop map.

    Two layouts, kept as read (``/api/weeks`` serves the entry as the file has it): the
    current one, with ``kind``, ``title`` and every validation score, and the one from
    before the served-model choice (``kind`` None): week, accuracy, current-season
    accuracy and checkpoint hash only, the CNN2D's. Accuracies are overall accuracy in 0..1
    on the validation fields (``current_...``: on the current season's labels, None
    without them).
    """

    week: int                       # the model's week of season k (sequence length, weeks)
    accuracy: float                 # the served model's validation accuracy
    current_season_accuracy: float | None
    checkpoint_sha256: str          # hex SHA-256 of the checkpoint
    kind: str | None = None         # cnn2d | random_forest | combination; None: first layout
    title: str | None = None        # human name of the kind (None: first layout)
    val_accuracy: float | None = None  # = accuracy (the name STAC items use)
    cnn2d_val_accuracy: float | None = None
    random_forest_val_accuracy: float | None = None
    forest_sha256: str | None = None  # the forest's, written only when the forest is used

    @property
    def served_kind(self) -> str:
        """The kind of model that made the map (entries of the first layout: cnn2d)."""
        return self.kind or "cnn2d"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in the file's key order (the first layout's keys without kind)."""
        if self.kind is None:
            return {"week": self.week, "accuracy": self.accuracy,
                    "current_season_accuracy": self.current_season_accuracy,
                    "checkpoint_sha256": self.checkpoint_sha256}
        return {
            "week": self.week, "kind": self.kind, "title": self.title,
            "accuracy": self.accuracy, "val_accuracy": self.val_accuracy,
            "current_season_accuracy": self.current_season_accuracy,
            "cnn2d_val_accuracy": self.cnn2d_val_accuracy,
            "random_forest_val_accuracy": self.random_forest_val_accuracy,
            "checkpoint_sha256": self.checkpoint_sha256,
            **({"forest_sha256": self.forest_sha256} if self.forest_sha256 else {}),
        }

    @classmethod
    def from_dict(cls, doc: Any, source: str) -> ManifestModel:
        """Parse the ``model`` object, of either layout (without ``kind``: the first)."""
        if isinstance(doc, dict) and "kind" not in doc:
            return cls(**take_fields(doc, source, "the model entry (without kind: the layout "
                                                  "from before the served-model choice)",
                                     _FIRST_MODEL))
        return cls(**take_fields(doc, source, "the model entry", (
            *_FIRST_MODEL, "kind", "title", "val_accuracy", "cnn2d_val_accuracy",
            "random_forest_val_accuracy"), {"forest_sha256": None}))


@dataclass(frozen=True, kw_only=True)
class ManifestLayers:
    """The manifest's ``layers``: which served layers the week publishes."""

    crop: bool
    confidence: bool                # band 2 of the crop COG: published with crop
    sos: bool
    coverage: bool | None           # None: a manifest from before the coverage layer (none)

    def has(self, layer: str) -> bool:
        """Whether ``layer`` is published (False for a name that is no layer)."""
        return bool(self.to_dict().get(layer, False))

    def to_dict(self) -> dict[str, bool]:
        """The JSON object, in the file's key order (no coverage key in older files)."""
        return {"crop": self.crop, "confidence": self.confidence, "sos": self.sos,
                **({"coverage": self.coverage} if self.coverage is not None else {})}

    @classmethod
    def from_dict(cls, doc: Any, source: str) -> ManifestLayers:
        """Parse the ``layers`` object (without ``coverage``: from before the coverage layer)."""
        return cls(**take_fields(doc, source, "the layers entry", ("crop", "confidence", "sos"),
                                 {"coverage": None}))


@dataclass(frozen=True, kw_only=True)
class ManifestTile:
    """One tile of the manifest: its bounds and its published COGs."""

    bounds: list[float]             # west, south, east, north (degrees, 7 decimals)
    crop: str | None = None         # COG paths relative to the data root; None: not published
    sos: str | None = None
    coverage: str | None = None

    def file(self, product: str) -> str | None:
        """The COG of ``product`` (crop | sos | coverage), None if the tile has none."""
        return self.to_dict().get(product) if product in TILE_PRODUCTS else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: bounds, then the products the tile has, in product order."""
        files = {"crop": self.crop, "sos": self.sos, "coverage": self.coverage}
        return {"bounds": self.bounds, **{p: f for p, f in files.items() if f is not None}}

    @classmethod
    def from_dict(cls, doc: Any, source: str, tile: str) -> ManifestTile:
        """Parse the row of ``tile``."""
        return cls(**take_fields(doc, source, f"tile {tile}", ("bounds",),
                                 dict.fromkeys(TILE_PRODUCTS)))


@dataclass(frozen=True, kw_only=True)
class ManifestRadar:
    """The manifest's ``radar``: which weeks behind the maps had no Sentinel-1 data."""

    summary: str                    # all weeks | no week | missing in n of m weeks | unknown
    weeks_without_radar: list[str]  # week keys (a week counts when any tile lacked radar)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in the file's key order."""
        return {"summary": self.summary, "weeks_without_radar": self.weeks_without_radar}

    @classmethod
    def from_dict(cls, doc: Any, source: str) -> ManifestRadar:
        """Parse the ``radar`` object."""
        return cls(**take_fields(doc, source, "the radar entry",
                                 ("summary", "weeks_without_radar")))


_REQUIRED = ("week", "season", "season_start", "role", "week_of_season",
             "last_observation_date", "knee_week", "preliminary", "model", "layers", "reason",
             "tiles", "mosaics", "bounds", "minzoom", "maxzoom", "classes", "sos_range",
             "published")
"""Keys of every layout (the first one wrote only these)."""

_LATER: dict[str, Any] = {"layers_missing": {}, "radar": None, "incomplete_weeks": [],
                          "regions": {}, "regions_missing": {}, "styles": {},
                          "coverage_range": None}
"""Keys added to the layout since (value when absent); ``layers_missing`` and
``regions_missing`` are written only when not empty."""


@dataclass(frozen=True, kw_only=True)
class WeekManifest:
    """What the tiler serves for one week: layers, files, model, legend and zooms.

    Fields are declared in the file's key order (docs/CONTRACTS.md "Week manifest").
    """

    week: str                       # week key (its Monday, YYYY-MM-DD)
    season: str                     # season id
    season_start: str               # ISO date
    role: str                       # reference | current
    week_of_season: int             # 1-based
    last_observation_date: str      # ISO date: the week's Sunday
    knee_week: int | None           # knee of accuracy vs season length (weeks); None: unknown
    preliminary: bool               # week_of_season < knee_week (True without a knee)
    model: ManifestModel | None     # None: no model yet (no crop layer)
    layers: ManifestLayers
    reason: str                     # why the crop layer is missing ("" when it is published)
    layers_missing: dict[str, str]  # product -> why some tiles lack it; written when not empty
    radar: ManifestRadar | None     # None: unknown
    incomplete_weeks: list[str]     # week keys whose ingestion skipped a scene on some tile
    tiles: dict[str, ManifestTile]  # tile id -> row, in the order written
    mosaics: dict[str, str]         # product -> MosaicJSON path
    regions: dict[str, str]         # product -> whole-region VRT path
    regions_missing: dict[str, str]  # product -> why it has no VRT; written when not empty
    styles: dict[str, str]          # layer -> QGIS style (.qml) path
    bounds: list[float] | None      # union of the tiles' bounds; None without tiles
    minzoom: int | None             # zooms the mosaics are served at; None without mosaics
    maxzoom: int | None
    classes: list[LegendEntry]      # legend of the crop layer
    sos_range: list[int]            # SOS ramp limits (day of year)
    coverage_range: list[int] | None  # coverage ramp limits (observations); None: older files
    published: str                  # UTC time of publishing, YYYY-MM-DDTHH:MM:SSZ
    format_version: int = FORMAT_VERSION

    def has_layer(self, layer: str) -> bool:
        """Whether the week publishes ``layer`` (crop | confidence | sos | coverage)."""
        return self.layers.has(layer)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object, in the order the keys have always been written."""
        return {
            **({VERSION_KEY: self.format_version} if self.format_version != 1 else {}),
            "week": self.week,
            "season": self.season,
            "season_start": self.season_start,
            "role": self.role,
            "week_of_season": self.week_of_season,
            "last_observation_date": self.last_observation_date,
            "knee_week": self.knee_week,
            "preliminary": self.preliminary,
            "model": self.model.to_dict() if self.model is not None else None,
            "layers": self.layers.to_dict(),
            "reason": self.reason,
            **({"layers_missing": self.layers_missing} if self.layers_missing else {}),
            "radar": self.radar.to_dict() if self.radar is not None else None,
            "incomplete_weeks": self.incomplete_weeks,
            "tiles": {t: row.to_dict() for t, row in self.tiles.items()},
            "mosaics": self.mosaics,
            "regions": self.regions,
            **({"regions_missing": self.regions_missing} if self.regions_missing else {}),
            "styles": self.styles,
            "bounds": self.bounds,
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "classes": [e.to_dict() for e in self.classes],
            "sos_range": self.sos_range,
            "coverage_range": self.coverage_range,
            "published": self.published,
        }

    def to_json(self) -> str:
        """The file's text (JSON indented by one space, as the manifest has always been)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "week manifest") -> WeekManifest:
        """Parse a manifest written by :meth:`to_json` (or by an earlier version 1 writer).

        Raises:
            ValueError: Not a JSON object, another format version, or a missing or unknown
                field (each named, with ``source``).
        """
        doc = json_object(text, source, "week manifest")
        version = checked_version(doc, source, "week manifest", FORMAT_VERSION,
                                  "republish the week with this version: week_layers")
        d = take_fields(doc, source, "the manifest", _REQUIRED, _LATER, ignored=(VERSION_KEY,))
        try:
            return cls(
                **(d | {
                    "model": (ManifestModel.from_dict(d["model"], source)
                              if d["model"] is not None else None),
                    "layers": ManifestLayers.from_dict(d["layers"], source),
                    "radar": (ManifestRadar.from_dict(d["radar"], source)
                              if d["radar"] is not None else None),
                    "tiles": {str(t): ManifestTile.from_dict(row, source, str(t))
                              for t, row in _mapping(d["tiles"], "tiles").items()},
                    "classes": [_legend_entry(c, source) for c in d["classes"]],
                    **{k: dict(_mapping(d[k], k)) for k in (
                        "layers_missing", "mosaics", "regions", "regions_missing", "styles")},
                }),
                format_version=version)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{source} does not hold the week manifest layout: "
                             f"{type(err).__name__}: {err}") from None

    @classmethod
    def read(cls, path: str | Path) -> WeekManifest:
        """Read a manifest file (FileNotFoundError when the week was never published)."""
        p = Path(path)
        return cls.from_json(p.read_bytes(), source=str(p))


def _legend_entry(doc: Any, source: str) -> LegendEntry:
    """One class of ``classes`` (code, name, colour)."""
    c = take_fields(doc, source, "a class of the legend", ("code", "name", "color"))
    return LegendEntry(int(c["code"]), str(c["name"]), str(c["color"]))


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else TypeError naming ``key``."""
    if not isinstance(value, dict):
        raise TypeError(f"{key} is not a JSON object")
    return value
