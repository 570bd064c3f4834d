import numpy as np
import pytest

from cropassets.world.profiles import class_mean_profiles, first_week_apart, plot_profiles

CROPS = ("rice", "maize", "cassava", "sugarcane")


@pytest.fixture(scope="module")
def profiles(world):
    return class_mean_profiles(world)


def _c(profiles, season, cls, feat):
    return np.array(profiles[season]["classes"][cls][feat])


@pytest.mark.parametrize("season", ["2024", "2025"])
def test_maize_and_cassava_only_diverge_mid_season(profiles, season):
    d = np.abs(_c(profiles, season, "maize", "ndvi") - _c(profiles, season, "cassava", "ndvi"))
    assert d[:13].max() < 0.1  # weeks 1-13: not separable
    week = first_week_apart(profiles, season, "maize", "cassava", "ndvi", 0.1)
    assert week is not None and 15 <= week <= 20
    # long-cycle and intercropped maize keep the pair close until late in the season ...
    assert d[:20].max() < 0.25
    assert d[-4:].min() > 0.3  # ... until the maize harvests are in
    vh = np.abs(_c(profiles, season, "maize", "vh_db") - _c(profiles, season, "cassava", "vh_db"))
    assert vh[:13].max() < 1.0


@pytest.mark.parametrize("season", ["2024", "2025"])
def test_rice_flooding_shows_in_water_index_and_vh(profiles, season):
    rice_ndwi = _c(profiles, season, "rice", "ndwi")
    maize_ndwi = _c(profiles, season, "maize", "ndwi")
    k = int(np.argmax(rice_ndwi[:10]))
    assert 2 <= k <= 8  # flooding in weeks 3-9
    # the class mean mixes flooded transplanted paddies with direct-seeded ones
    assert rice_ndwi[k] - maize_ndwi[k] > 0.2
    vh = _c(profiles, season, "rice", "vh_db")
    assert vh[:10].min() < -21.0 and _c(profiles, season, "maize", "vh_db")[:10].min() > -18.5


@pytest.mark.parametrize("season", ["2024", "2025"])
def test_early_ambiguity_and_late_separability(profiles, season):
    week1 = [_c(profiles, season, c, "ndvi")[0] for c in CROPS]
    assert max(week1) - min(week1) < 0.1  # bare soil everywhere before planting
    k = 19  # two thirds of 28 weeks
    for i, a in enumerate(CROPS):
        for b in CROPS[i + 1:]:
            apart = [first_week_apart(profiles, season, a, b, "ndvi", 0.1),
                     first_week_apart(profiles, season, a, b, "ndwi", 0.1),
                     first_week_apart(profiles, season, a, b, "vh_db", 1.5)]
            assert min(w for w in apart if w is not None) <= k, (a, b)


def test_non_crop_profiles(profiles):
    c = profiles["2024"]["classes"]
    assert min(c["forest"]["ndvi"]) > 0.65 and np.ptp(c["forest"]["ndvi"]) < 0.1
    assert max(c["water"]["ndvi"]) < 0 and min(c["water"]["ndwi"]) > 0.2
    assert max(c["water"]["vv_db"]) < -20
    assert np.ptp(c["built-up"]["ndvi"]) < 0.01
    assert -4 < np.mean(c["built-up"]["vv_db"]) < 0


def test_plot_profiles(world, profiles, tmp_path):
    out = plot_profiles(world, tmp_path / "p.png", profiles=profiles)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
