"""A small seeded world generated once per test session (default seasons, 2 tiles of 128²)."""

import json
from pathlib import Path

import pytest

from cropassets.world.generate import generate_world
from cropassets.world.profiles import load_model

SEED = 11
SIZE = 128
TILES = 2


@pytest.fixture(scope="session")
def params() -> dict:
    return {"seed": SEED, "size": SIZE, "tiles": TILES}


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    return generate_world(tmp_path_factory.mktemp("world") / "w", seed=SEED, size=SIZE,
                          tiles=TILES)


@pytest.fixture(scope="session")
def model(world):
    return load_model(world)


def read_items(world: Path, collection: str) -> list[dict]:
    path = world / "stac" / "items" / f"{collection}.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def s2_items(world):
    return read_items(world, "sentinel-2-l2a")


@pytest.fixture(scope="session")
def s1_items(world):
    return read_items(world, "sentinel-1-rtc")
