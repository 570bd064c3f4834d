"""World CLI options: the full Sentinel-2 tile and the season length."""

import argparse

from cropassets.world import world_cli


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    world_cli.add_arguments(parser)
    return parser.parse_args(["--out", "w", *argv])


def test_full_tile_is_one_sentinel2_tile_of_the_current_season():
    p = world_cli.world_parameters(_args("--full-tile"))
    assert (p["size"], p["tiles"], p["workers"]) == (10980, 1, 1)
    assert [(s.id, s.role, s.weeks) for s in p["seasons"]] == [("2025", "current", 3)]
    p = world_cli.world_parameters(_args("--full-tile", "--weeks", "5", "--workers", "2"))
    assert [s.weeks for s in p["seasons"]] == [5] and p["workers"] == 2


def test_default_world_is_unchanged_and_weeks_shorten_both_seasons():
    p = world_cli.world_parameters(_args())
    assert (p["size"], p["tiles"], p["workers"]) == (512, 4, None)
    assert [s.weeks for s in p["seasons"]] == [28, 28]
    p = world_cli.world_parameters(_args("--weeks", "6"))
    assert [(s.role, s.weeks) for s in p["seasons"]] == [("reference", 6), ("current", 6)]


def test_bad_weeks_named(capsys):
    assert world_cli.main(["--out", "w", "--weeks", "0", "--quiet"]) == 2
    assert "--weeks must be at least 1, got 0" in capsys.readouterr().err
