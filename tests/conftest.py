"""Test session setup: a tiny seeded demo world that the Dagster code location loads.

The code location reads its tile grid and seasons at import time (``cropassets.partitions``),
so the world is generated here, before test modules import it, and the environment points
the settings at it. Generation is deterministic for the seed and cached per session.
"""

import os
import tempfile
from pathlib import Path

TEST_WORLD_SEASONS = [
    {"id": "2024", "start": "2024-05-06", "weeks": 6, "role": "reference"},
    {"id": "2025", "start": "2025-05-05", "weeks": 6, "role": "current"},
]
_session_dir = Path(tempfile.mkdtemp(prefix="cropassets-tests-"))
TEST_WORLD = _session_dir / "world"


def pytest_configure(config):
    from cropassets.world.generate import generate_world

    generate_world(TEST_WORLD, seed=7, size=128, tiles=2, seasons=TEST_WORLD_SEASONS)
    os.environ.update({
        "CROPASSETS_DATA": str(_session_dir / "data"),
        "CROPASSETS_WORLD": str(TEST_WORLD),
        "CROPASSETS_TILES": str(TEST_WORLD / "tiles.json"),
        "CROPASSETS_SEASONS": str(TEST_WORLD / "seasons.json"),
        "CROPASSETS_STAC_URL": "",
        # the tiny test world needs no 1,500-step budget (CI time); floors are unchanged
        "CROPASSETS_TRAIN_MAX_STEPS": "400",
    })
    os.environ.setdefault("DAGSTER_HOME", str(_session_dir / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(_session_dir, ignore_errors=True)
