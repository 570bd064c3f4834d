"""The demo's order: everything of the old demo, upstream first, the first crop map early."""

from datetime import date

import pytest

from cropassets.core.seasons import Season, all_weeks
from cropassets.demo_plan import demo_plan

SEASONS = [Season("2024", date(2024, 5, 6), 6, "reference"),
           Season("2025", date(2025, 5, 5), 6, "current")]
TILES = ["T00", "T01"]
MIN_WEEKS = 3


def _done_order(steps):
    """(asset, key) -> index of the first step that materializes it (refreshes ignored)."""
    order = {}
    for i, s in enumerate(steps):
        if s.refresh_after_knee:
            continue
        for a in s.assets:
            for k in s.keys or ("",):
                order.setdefault((a, k), i)
    return order


def test_plan_covers_every_partition_of_the_full_demo():
    order = _done_order(demo_plan(SEASONS, TILES, MIN_WEEKS))
    weeks = all_weeks(SEASONS)
    current = [w for w in weeks if w.season.role == "current"]
    expected = {("knee_report", "")}
    expected |= {(a, f"{t}|{w.key}") for a in ("raw_scenes", "weekly_cube", "sos_map")
                 for w in weeks for t in TILES}
    expected |= {("coverage_map", f"{t}|{w.key}") for w in current for t in TILES}
    expected |= {("scalograms", w.key) for w in weeks}
    expected |= {("cnn2d_checkpoint", f"{k:02d}") for k in range(MIN_WEEKS, 7)}
    expected |= {("week_model", w.key) for w in current if w.week_of_season >= MIN_WEEKS}
    expected |= {("crop_map", f"{t}|{w.key}") for w in current for t in TILES
                 if w.week_of_season >= MIN_WEEKS}
    expected |= {("week_layers", w.key) for w in current}
    assert set(order) == expected


def test_every_step_comes_after_what_it_reads():
    steps = demo_plan(SEASONS, TILES, MIN_WEEKS)
    order = _done_order(steps)
    weeks = all_weeks(SEASONS)

    def before(a, b):  # one run of several assets runs them in dependency order
        assert order[a] < order[b] or (order[a] == order[b] and a[0] != b[0]), \
            f"{a} must come before {b}"

    for w in weeks:
        to_date = [v for v in weeks if v.season == w.season and v.start <= w.start]
        for t in TILES:
            before(("raw_scenes", f"{t}|{w.key}"), ("weekly_cube", f"{t}|{w.key}"))
            for v in to_date:  # SEASON_TO_DATE: the cubes of weeks 1..w
                before(("weekly_cube", f"{t}|{v.key}"), ("sos_map", f"{t}|{w.key}"))
                before(("weekly_cube", f"{t}|{v.key}"), ("scalograms", w.key))
                if ("crop_map", f"{t}|{w.key}") in order:
                    before(("weekly_cube", f"{t}|{v.key}"), ("crop_map", f"{t}|{w.key}"))
        if w.week_of_season >= MIN_WEEKS:
            before(("scalograms", w.key), ("cnn2d_checkpoint", f"{w.week_of_season:02d}"))
        if ("week_model", w.key) in order:
            before(("cnn2d_checkpoint", f"{w.week_of_season:02d}"), ("week_model", w.key))
            for t in TILES:
                before(("week_model", w.key), ("crop_map", f"{t}|{w.key}"))
        if ("week_layers", w.key) in order:
            for t in TILES:
                for a in ("sos_map", "coverage_map", "crop_map"):
                    if (a, f"{t}|{w.key}") in order:
                        before((a, f"{t}|{w.key}"), ("week_layers", w.key))
    for k in range(MIN_WEEKS, 7):
        before(("cnn2d_checkpoint", f"{k:02d}"), ("knee_report", ""))


def test_the_season_unfolds_week_by_week():
    steps = demo_plan(SEASONS, TILES, MIN_WEEKS)
    published = [s.publishes for s in steps if s.publishes and not s.refresh_after_knee]
    current = [w.key for w in all_weeks(SEASONS) if w.season.role == "current"]
    assert published == current  # each week once, in order, before the knee
    first_publish = next(i for i, s in enumerate(steps) if s.publishes)
    assert not any("cnn2d_checkpoint" in s.assets for s in steps[:first_publish])
    first_crop = next(i for i, s in enumerate(steps) if "crop_map" in s.assets)
    trained_before = [s.keys[0] for s in steps[:first_crop] if "cnn2d_checkpoint" in s.assets]
    assert trained_before == [f"{MIN_WEEKS:02d}"]  # one checkpoint, not all, before the first
    knee = next(i for i, s in enumerate(steps) if s.assets == ("knee_report",))
    refresh = [s for s in steps[knee:] if s.refresh_after_knee]
    assert {s.publishes for s in refresh if s.publishes} == set(current)
    assert all(i > knee for i, s in enumerate(steps) if s.refresh_after_knee)


def test_bad_plans_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="no tiles"):
        demo_plan(SEASONS, [], MIN_WEEKS)
    with pytest.raises(ValueError, match="role 'current'.*2024"):
        demo_plan(SEASONS[:1], TILES, MIN_WEEKS)
