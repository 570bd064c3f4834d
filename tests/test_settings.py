"""Settings read from the environment: the training-step budget."""

import pytest

from cropassets.resources import build_resources
from cropassets.settings import load_settings


def test_train_max_steps_setting():
    assert load_settings({}).train_max_steps is None
    assert load_settings({"CROPASSETS_TRAIN_MAX_STEPS": " "}).train_max_steps is None
    s = load_settings({"CROPASSETS_TRAIN_MAX_STEPS": "250"})
    assert s.train_max_steps == 250
    assert build_resources(s)["torch_device"].train_max_steps == 250
    for bad in ("0", "-3", "many"):
        with pytest.raises(ValueError, match="CROPASSETS_TRAIN_MAX_STEPS.*positive integer"):
            load_settings({"CROPASSETS_TRAIN_MAX_STEPS": bad})


def test_tile_cache_settings():
    s = load_settings({})
    assert s.tile_cache_mb == 256 and s.tile_dir is None
    s = load_settings({"CROPASSETS_TILE_CACHE_MB": "0", "CROPASSETS_TILE_DIR": "tiles"})
    assert s.tile_cache_mb == 0 and s.tile_dir is not None and s.tile_dir.is_absolute()
    for bad in ("-1", "lots", "nan", "inf"):
        with pytest.raises(ValueError, match="CROPASSETS_TILE_CACHE_MB.*MB"):
            load_settings({"CROPASSETS_TILE_CACHE_MB": bad})
