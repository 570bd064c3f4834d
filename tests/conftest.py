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


def _is_xdist_controller(config) -> bool:
    """True in the process that only hands tests to pytest-xdist workers (``-n 2``)."""
    return not hasattr(config, "workerinput") and bool(
        getattr(config.option, "numprocesses", None))


def pytest_configure(config):
    if _is_xdist_controller(config):
        return  # every worker generates its own world in its own session folder
    from cropassets.world.generate import generate_world

    generate_world(TEST_WORLD, seed=7, size=128, tiles=2, seasons=TEST_WORLD_SEASONS)
    os.environ.update({
        "CROPASSETS_DATA": str(_session_dir / "data"),
        "CROPASSETS_WORLD": str(TEST_WORLD),
        "CROPASSETS_TILES": str(TEST_WORLD / "tiles.json"),
        "CROPASSETS_SEASONS": str(TEST_WORLD / "seasons.json"),
        "CROPASSETS_STAC_URL": "",
        # the tiny test world needs no 1,500-step budget (CI time); floors are unchanged
        "CROPASSETS_TRAIN_MAX_STEPS": "150",
    })
    os.environ.setdefault("DAGSTER_HOME", str(_session_dir / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def pytest_unconfigure(config):
    import shutil

    shutil.rmtree(_session_dir, ignore_errors=True)


# The slow test files that take longest, longest first (measured, `make test` durations): one
# pytest-xdist session runs the whole suite, and starting these first keeps one of them from
# being the last thing running. A file missing here is only scheduled later, never skipped.
LONGEST_FIRST = ("test_real_series", "test_new_week_automation", "test_ml_accuracy",
                 "test_demo_loop", "test_kill_resilience", "test_dagster_backfill",
                 "test_training_assets", "test_objstore_e2e", "test_postgres_instance")


def pytest_collection_modifyitems(config, items):
    """Slow tests first, the longest files first, then the fast suite (stable order)."""
    def rank(item) -> tuple[int, int]:
        if item.get_closest_marker("slow") is None:
            return (1, 0)
        name = item.path.stem
        return (0, LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))
    items.sort(key=rank)
