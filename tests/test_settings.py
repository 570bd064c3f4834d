"""Settings read from the environment: the training-step budget."""

from pathlib import Path

import pytest

from cropassets.core.stac.catalog_profiles import get_profile
from cropassets.core.stac.scenes import gdal_env
from cropassets.resources import build_resources
from cropassets.settings import cache_root, load_settings


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


def test_gdal_options_from_the_environment_reach_the_catalog_profile():
    env = {"CROPASSETS_GDAL_AWS_REQUEST_PAYER": "requester", "CROPASSETS_GDAL_": "x",
           "CROPASSETS_CATALOG_PROFILE": "earth-search", "GDAL_HTTP_TIMEOUT": "5"}
    s = load_settings(env)
    assert s.gdal_overrides == {"AWS_REQUEST_PAYER": "requester"}
    stac = build_resources(s)["stac_catalog"]
    options = gdal_env(stac.catalog_profile())
    assert options["AWS_REQUEST_PAYER"] == "requester"
    assert options["AWS_NO_SIGN_REQUEST"] == "YES"  # the profile's own stay
    # other variables do not leak in (only the CROPASSETS_GDAL_ prefix is read)
    assert options.get("GDAL_HTTP_TIMEOUT") == gdal_env(get_profile("earth-search")).get(
        "GDAL_HTTP_TIMEOUT")
    # an override wins over the profile's value; without overrides the profile is unchanged
    s2 = load_settings({**env, "CROPASSETS_GDAL_AWS_NO_SIGN_REQUEST": "NO"})
    profile = build_resources(s2)["stac_catalog"].catalog_profile()
    assert gdal_env(profile)["AWS_NO_SIGN_REQUEST"] == "NO"
    plain = build_resources(load_settings({"CROPASSETS_CATALOG_PROFILE": "earth-search"}))
    assert plain["stac_catalog"].catalog_profile() == get_profile("earth-search")


def test_cache_root_follows_xdg_cache_home(tmp_path, monkeypatch):
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": ""}) == Path.home() / ".cache"
    assert cache_root({}) == Path.home() / ".cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"  # read on every call

