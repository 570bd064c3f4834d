"""Storage root resource: where every asset writes its partitions (one method per path)."""

from __future__ import annotations

from dagster import ConfigurableResource

from cropassets.core.knee_record import KneeReport
from cropassets.core.objstore import Location, location
from cropassets.core.publish.week_layers import manifest_path
from cropassets.core.storage import partition_path
from cropassets.core.week_model_record import WeekModelRecord
from cropassets.settings import load_settings


class DataRoot(ConfigurableResource):
    """Where asset outputs live as ``<root>/<asset>/<tile>/<week>.zarr``.

    ``root`` is a local folder or ``s3://bucket/prefix``; the object store is reached with
    the options of :func:`cropassets.settings.load_settings` (the AWS variables). Every
    method returns a :data:`~cropassets.core.objstore.Location` (``Path`` or ``ObjPath``).
    """

    root: str

    @property
    def location(self) -> Location:
        """The root as a ``Path`` or an ``ObjPath`` (with the object-store options)."""
        if "://" in self.root:
            return location(self.root, load_settings().object_store)
        return location(self.root)

    def partition_path(self, asset: str, tile: str, week: str, suffix: str = ".zarr"
                       ) -> Location:
        """Path of one tile x week partition of ``asset``.

        The rule behind the methods below, for code given an asset name (the COG checks).
        """
        return partition_path(self.location, asset, tile, week, suffix)

    def raw_scenes_path(self, tile: str, week: str) -> Location:
        """``raw_scenes``: the week's scenes on the tile grid (Zarr)."""
        return self.partition_path("raw_scenes", tile, week)

    def weekly_cube_path(self, tile: str, week: str) -> Location:
        """``weekly_cube``: the week's composite features and observation counts (Zarr)."""
        return self.partition_path("weekly_cube", tile, week)

    def sos_map_path(self, tile: str, week: str) -> Location:
        """``sos_map``: Start of Season as day of year (COG)."""
        return self.partition_path("sos_map", tile, week, ".tif")

    def crop_map_path(self, tile: str, week: str) -> Location:
        """``crop_map``: class code and confidence (COG)."""
        return self.partition_path("crop_map", tile, week, ".tif")

    def coverage_map_path(self, tile: str, week: str) -> Location:
        """``coverage_map``: observation counts (COG)."""
        return self.partition_path("coverage_map", tile, week, ".tif")

    def samples_path(self, week: str) -> Location:
        """``scalograms``: the labelled samples of one week (``.npz``)."""
        return self.location / "scalograms" / f"{week}.npz"

    def checkpoint_path(self, k: str) -> Location:
        """``cnn2d_checkpoint``: the checkpoint of sequence length k (``"07"``)."""
        return self.location / "cnn2d_checkpoint" / f"k{k}.pt"

    def knee_path(self, suffix: str = ".json") -> Location:
        """``knee_report``: its JSON (or ``.png`` plot)."""
        return self.location / "knee_report" / f"knee{suffix}"

    def week_model_path(self, week: str) -> Location:
        """``week_model``: the model record of a calendar week (JSON)."""
        return self.location / "week_model" / f"{week}.json"

    def week_model_record(self, week: str) -> WeekModelRecord | None:
        """The ``week_model`` record of a calendar week (None before it is materialized)."""
        p = self.week_model_path(week)
        return WeekModelRecord.read(p) if p.exists() else None

    def manifest_path(self, week: str) -> Location:
        """``week_layers``: the published manifest of a week (JSON)."""
        return manifest_path(self.location, week)

    def knee_week(self) -> int | None:
        """Knee week from ``knee_report`` (None before the report exists)."""
        p = self.knee_path()
        return KneeReport.read(p).knee_week if p.exists() else None
