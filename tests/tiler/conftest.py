"""One published data root (truth maps of the test world) and one real tiler for tests/tiler.

tests/tiler has no ``__init__.py`` on purpose: as a package it would be named ``tiler`` and
shadow the application package. As a plain folder under tests/ (which pytest puts on
sys.path) it can still be taken for a namespace package ``tiler`` when the repository root
is not on sys.path (``.venv/bin/pytest`` does not add it), so it is added here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from map_fixtures import PublishedMaps, publish_truth_maps
from tiler_server import running_tiler

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> PublishedMaps:
    """Crop/SOS COGs and week manifests of the test world's current season (6 weeks)."""
    world = Path(os.environ["CROPASSETS_WORLD"])
    return publish_truth_maps(world, tmp_path_factory.mktemp("tiler-data"))


@pytest.fixture(scope="session")
def tiler_url(published: PublishedMaps) -> Iterator[str]:
    """Base URL of ``python -m tiler`` serving ``published`` on 127.0.0.1."""
    with running_tiler(published.root) as url:
        yield url


@pytest.fixture(scope="session")
def data_root(published: PublishedMaps) -> str:
    """The data root as the server resolves it (for 'no path in error text' checks)."""
    return str(Path(published.root).resolve())
