"""The Dagster code location: assets and resources, wired explicitly."""

from __future__ import annotations

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from cropassets.assets import ingest, maps, series, sos, training
from cropassets.resources import build_resources
from cropassets.sensors import new_week_sensor

defs = Definitions(
    assets=load_assets_from_modules([ingest, series, sos, training, maps]),
    asset_checks=load_asset_checks_from_modules([sos, maps]),  # standalone re-checks
    resources=build_resources(),
    sensors=[new_week_sensor],
)
