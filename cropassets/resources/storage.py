"""Storage root resource: where every asset writes its partitions."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from cropassets.core.storage import partition_path


class DataRoot(ConfigurableResource):
    """A local folder holding asset outputs as ``<root>/<asset>/<tile>/<week>.zarr``."""

    root: str

    def partition_path(self, asset: str, tile: str, week: str, suffix: str = ".zarr") -> Path:
        """Path of one tile x week partition of ``asset``."""
        return partition_path(self.root, asset, tile, week, suffix)
