"""Published products.

COG writing, crop-map products, week layers (manifest + MosaicJSON; the manifest's typed
record), the products' static STAC catalog and QGIS styles / region VRTs.
"""

from __future__ import annotations

from cropassets.core.publish.cog import CogError, overview_levels, write_cog
from cropassets.core.publish.crop_products import (
    class_shares,
    crop_cog_tags,
    map_accuracy,
    write_crop_cog,
)
from cropassets.core.publish.manifest_record import (
    ManifestLayers,
    ManifestModel,
    ManifestRadar,
    ManifestTile,
    WeekManifest,
)
from cropassets.core.publish.product_stac import (
    Band,
    ProductInfo,
    build_catalog,
    build_collection,
    build_item,
    check_extensions,
    classification_classes,
    collection_id,
    item_id,
    read_items,
    stac_root,
    validate,
    week_interval,
    write_week_items,
)
from cropassets.core.publish.qgis import paletted_qml, pseudocolor_qml, region_vrt
from cropassets.core.publish.week_layers import (
    manifest_path,
    model_summary,
    mosaic_path,
    radar_summary,
    region_path,
    style_path,
    style_qml,
    union_bounds,
    write_week_layer,
)

__all__ = [
    "Band",
    "CogError",
    "ManifestLayers",
    "ManifestModel",
    "ManifestRadar",
    "ManifestTile",
    "ProductInfo",
    "WeekManifest",
    "build_catalog",
    "build_collection",
    "build_item",
    "check_extensions",
    "class_shares",
    "classification_classes",
    "collection_id",
    "crop_cog_tags",
    "item_id",
    "manifest_path",
    "map_accuracy",
    "model_summary",
    "mosaic_path",
    "overview_levels",
    "paletted_qml",
    "pseudocolor_qml",
    "radar_summary",
    "read_items",
    "region_path",
    "region_vrt",
    "stac_root",
    "style_path",
    "style_qml",
    "union_bounds",
    "validate",
    "week_interval",
    "write_cog",
    "write_crop_cog",
    "write_week_items",
    "write_week_layer",
]
