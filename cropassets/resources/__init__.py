"""Resources: every external thing the assets touch, configured in one place."""

from __future__ import annotations

from cropassets.resources.dask_cluster import DaskCluster
from cropassets.resources.data_root import DataRoot
from cropassets.resources.reference_labels import ReferenceLabels
from cropassets.resources.series_settings import SeriesSettings
from cropassets.resources.stac_catalog import StacCatalog
from cropassets.resources.torch_device import TorchDevice
from cropassets.settings import Settings, load_settings


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """The resource set for the environment described by ``settings`` (default: env vars)."""
    s = settings or load_settings()
    return {
        "stac_catalog": StacCatalog(url=s.stac_url, local_stac_dir=str(s.world_dir / "stac"),
                            profile=s.catalog_profile, max_cloud_cover=s.max_cloud_cover,
                            gdal_options=dict(s.gdal_overrides)),
        "data_root": DataRoot(root=str(s.data_root)),
        "series_settings": SeriesSettings(),
        "reference_labels": ReferenceLabels(labels_dir=str(s.labels)),
        "torch_device": TorchDevice(train_max_steps=s.train_max_steps),
        "dask_cluster": DaskCluster(scheduler_address=s.dask_scheduler),
    }


__all__ = [
    "DaskCluster",
    "DataRoot",
    "ReferenceLabels",
    "SeriesSettings",
    "StacCatalog",
    "TorchDevice",
    "build_resources",
]
