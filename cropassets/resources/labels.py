"""Reference labels resource: field polygons with crop classes, one GeoJSON per season."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field


class ReferenceLabels(ConfigurableResource):
    """Labelled field polygons (``<labels_dir>/<season>.geojson``, EPSG:4326).

    Properties used: ``field_id`` (int, unique in the region), ``class_code`` (int),
    ``class_name``. Labels of the current season are only used for evaluation.
    """

    labels_dir: str = Field(description="folder holding <season>.geojson files")
    per_field: int = Field(default=20, ge=1, description="max sampled pixels per field")
    per_class: int = Field(default=4000, ge=1, description="max sampled pixels per class")

    def path(self, season_id: str) -> Path:
        """Label file of a season (raises FileNotFoundError naming it when absent)."""
        p = Path(self.labels_dir) / f"{season_id}.geojson"
        if not p.exists():
            raise FileNotFoundError(f"labels for season {season_id!r} not found: {p}")
        return p
