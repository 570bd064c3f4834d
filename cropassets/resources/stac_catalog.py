"""STAC catalog resource: search Sentinel-1/2 items for a tile and a week."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from cropassets.core.seasons import SeasonWeek
from cropassets.core.stac.catalog_profiles import CatalogProfile, get_profile
from cropassets.core.stac.search import search_items
from cropassets.core.tiles import TileSpec

PC_BLOB_HOST = ".blob.core.windows.net"
"""Host suffix of Planetary Computer's asset storage (hrefs there need a SAS token)."""


class StacCatalog(ConfigurableResource):
    """A STAC API searched with pystac-client.

    With ``url`` empty, the demo world's catalog in ``local_stac_dir`` is served by a real
    STAC API (stac-fastapi-geoparquet) on 127.0.0.1, started once per process.
    """

    url: str = Field(default="", description="STAC API root URL; empty = serve local_stac_dir")
    local_stac_dir: str = Field(default="", description="demo world's stac/ folder")
    profile: str = Field(default="demo",
                         description="demo | earth-search | planetary-computer | cdse")
    max_cloud_cover: float = Field(default=90.0, description="max eo:cloud_cover of S2, %")
    retries: int = 3
    backoff_s: float = 1.0
    gdal_options: dict[str, str] = Field(
        default_factory=dict,
        description="GDAL options over the profile's (CROPASSETS_GDAL_<OPTION> variables)")

    def catalog_profile(self) -> CatalogProfile:
        """The asset-naming profile in use, its GDAL options overridden by ``gdal_options``."""
        profile = get_profile(self.profile)
        if not self.gdal_options:
            return profile
        return replace(profile, gdal_env={**profile.gdal_env, **self.gdal_options})

    def api_url(self) -> str:
        """Root URL of the STAC API to search (starting the local server if needed)."""
        if self.url:
            return self.url
        if not self.local_stac_dir:
            raise ValueError("StacCatalog needs either url or local_stac_dir")
        from cropassets.core.stac.server import shared_local_server

        return shared_local_server(Path(self.local_stac_dir))

    def _modifier(self):
        """Signs Planetary Computer asset hrefs (profile ``sign_urls``) as items arrive.

        Only hrefs on Planetary Computer's blob storage need a token; an item without any
        (a local replay, a mirror) passes unchanged, so the ``planetary-computer`` package
        is needed only where something must be signed.
        """
        if not self.catalog_profile().sign_urls:
            return None

        def sign(item):
            if not any(PC_BLOB_HOST in (a.href or "") for a in item.assets.values()):
                return item
            try:
                import planetary_computer
            except ImportError as exc:  # optional extra
                raise ImportError(
                    f"item {item.id}: profile planetary-computer signs asset URLs; install "
                    "cropassets[planetary-computer]") from exc
            return planetary_computer.sign(item)

        return sign

    def search_week(self, tile: TileSpec, week: SeasonWeek) -> tuple[list[dict], list[dict]]:
        """Sentinel-2 and Sentinel-1 items acquired in ``week`` that intersect ``tile``.

        Returns:
            (s2_items, s1_items) as STAC item dicts sorted by datetime; S2 items are limited
            to ``max_cloud_cover``.
        """
        profile = self.catalog_profile()
        url = self.api_url()
        start, end = week.interval_utc()
        common = dict(bbox=tile.bbox_wgs84(), start=start, end=end, retries=self.retries,
                      backoff_s=self.backoff_s, modifier=self._modifier())
        s2 = search_items(url, [profile.s2_collection], max_cloud_cover=self.max_cloud_cover,
                          **common)
        # a profile without analysis-ready Sentinel-1 searches none (its s1_note says why)
        s1 = (search_items(url, [profile.s1_collection], **common)
              if profile.s1_collection else [])
        return s2, s1
