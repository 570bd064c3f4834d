"""A synthetic central-Thailand Sentinel-1/2 world: the project's embedded demo data.

``generate_world(out)`` writes tiles, seasons, Sentinel-2 L2A and Sentinel-1 RTC scenes as
COGs with a STAC catalog, reference labels with truth SOS and a ``world.json`` manifest
(layout in docs/CONTRACTS.md). ``class_mean_profiles`` / ``plot_profiles`` document the
intended class separability from the noise-free model.
"""

from cropassets.world.config import CLASSES, DEFAULT_SEASONS, Season, WorldConfig
from cropassets.world.generate import generate_world, is_complete
from cropassets.world.profiles import class_mean_profiles, plot_profiles

__all__ = [
    "CLASSES",
    "DEFAULT_SEASONS",
    "Season",
    "WorldConfig",
    "class_mean_profiles",
    "generate_world",
    "is_complete",
    "plot_profiles",
]
