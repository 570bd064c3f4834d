"""Reference labels resource: field polygons with crop classes, one GeoJSON per season."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field


class ReferenceLabels(ConfigurableResource):
    """Labelled field polygons (``<labels_dir>/<season>.geojson``, EPSG:4326).

    Properties used: ``field_id`` (int, unique in the region), ``class_code`` (int),
    ``class_name``. Reference seasons need labels; the current season usually has none,
    and where it has, they are only used for evaluation.
    """

    labels_dir: str = Field(description="folder holding <season>.geojson files")
    per_field: int = Field(default=20, ge=1, description="max sampled pixels per field")
    per_class: int = Field(default=4000, ge=1, description="max sampled pixels per class")

    def find(self, season_id: str) -> Path | None:
        """Label file of a season, or None when it has none.

        None is the normal case for the current season: its labels, where there are any,
        only add accuracy metadata.
        """
        p = Path(self.labels_dir) / f"{season_id}.geojson"
        return p if p.exists() else None

    def path(self, season_id: str) -> Path:
        """Label file of a season that must have one (a reference season).

        Raises:
            FileNotFoundError: Naming the season and the file expected.
        """
        p = self.find(season_id)
        if p is None:
            raise FileNotFoundError(
                f"labels for season {season_id!r} not found: expected "
                f"{Path(self.labels_dir) / f'{season_id}.geojson'} (reference seasons need "
                "labels to train)")
        return p
