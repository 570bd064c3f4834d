"""Finding and loading scenes.

STAC search (pystac-client), per-catalog naming, item metadata, reading
scenes onto a tile grid, and the offline STAC API server of the demo world.
"""

from __future__ import annotations

from cropassets.core.stac.api_catalog import StacServerError, build_api_catalog
from cropassets.core.stac.catalog_profiles import CatalogProfile, get_profile
from cropassets.core.stac.item_metadata import (
    ScaleOffset,
    UnsupportedScene,
    asset_crs,
    item_datetime,
    item_interval,
    processing_baseline,
    raster_band,
    reflectance_scale_offset,
    s1_product_kind,
)
from cropassets.core.stac.scenes import (
    SkippedScene,
    check_s1_item,
    gdal_env,
    load_week,
    radar_status,
    radar_tags,
    radar_weeks,
    read_on_grid,
)
from cropassets.core.stac.search import StacApiError, backoff_schedule, search_items
from cropassets.core.stac.server import RunningServer, serve, shared_local_server, start_server

__all__ = [
    "CatalogProfile",
    "RunningServer",
    "ScaleOffset",
    "SkippedScene",
    "StacApiError",
    "StacServerError",
    "UnsupportedScene",
    "asset_crs",
    "backoff_schedule",
    "build_api_catalog",
    "check_s1_item",
    "gdal_env",
    "get_profile",
    "item_datetime",
    "item_interval",
    "load_week",
    "processing_baseline",
    "radar_status",
    "radar_tags",
    "radar_weeks",
    "raster_band",
    "read_on_grid",
    "reflectance_scale_offset",
    "s1_product_kind",
    "search_items",
    "serve",
    "shared_local_server",
    "start_server",
]
