"""The Dagster code location: assets and resources, wired explicitly."""

from __future__ import annotations

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from cropassets.assets import ingest, maps, series, sos, training
from cropassets.deployment import executor_for
from cropassets.resources import build_resources
from cropassets.sensors import new_week_sensor
from cropassets.settings import load_settings

_settings = load_settings()

defs = Definitions(
    assets=load_assets_from_modules([ingest, series, sos, training, maps]),
    asset_checks=load_asset_checks_from_modules([sos, maps]),  # standalone re-checks
    resources=build_resources(_settings),
    sensors=[new_week_sensor],
    # CROPASSETS_EXECUTOR=k8s: one Kubernetes Job per step (docs/deploy-kubernetes.md)
    executor=executor_for(_settings.executor),
)
