"""The order in which ``cropassets demo`` materializes a world: the season unfolds week by week.

A pure function of the seasons, the tiles and the shortest modelled sequence: no Dagster,
no I/O. Week k of the season is one round: the scenes and cubes of week k of every season
(the reference season's week k trains the checkpoint of sequence length k), the current
season's SOS and coverage maps, the scalograms of week k, checkpoint k, the week's model
record and crop maps, and last the week's layers, which publish it to the web map. So the
first week is on the map within a minute and the first crop map as soon as checkpoint
``min_weeks`` is trained, instead of after the whole reference season and all checkpoints.

The knee report needs every checkpoint, so it comes after the last round; the weeks
recorded before it existed are then refreshed (``refresh_after_knee``: their model record,
crop maps and layers are made again with the knee, so their preliminary flags are final).
Last, the reference season's SOS maps, which nothing on the map waits for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cropassets.core.seasons import Season, SeasonWeek, all_weeks


@dataclass(frozen=True)
class DemoStep:
    """One materialize call of the demo: assets of one partitions definition, keys in order.

    Attributes:
        assets: Asset names (same partitions definition).
        keys: Partition keys (``"T00|2025-05-05"``, ``"2025-05-05"``, ``"07"``; ``()`` for an
            unpartitioned asset).
        label: What the step does, for progress lines.
        publishes: The week key this step publishes to the web map (``week_layers``), or None.
        refresh_after_knee: Run only for weeks whose model record was written before the knee
            report existed (and then again, not only where missing).
    """

    assets: tuple[str, ...]
    keys: tuple[str, ...]
    label: str
    publishes: str | None = None
    refresh_after_knee: bool = False


def _tile_keys(tiles: Sequence[str], weeks: Sequence[SeasonWeek]) -> tuple[str, ...]:
    return tuple(f"{t}|{w.key}" for w in weeks for t in tiles)


def demo_plan(seasons: Sequence[Season], tiles: Sequence[str], min_weeks: int
              ) -> list[DemoStep]:
    """Every step of the demo in order (see the module docstring).

    Args:
        seasons: All seasons of the world; those with role ``current`` are mapped and
            published, every season is ingested and gives training samples.
        tiles: Tile ids.
        min_weeks: Shortest sequence with a model (weeks 1..min_weeks-1 get SOS and
            coverage layers but no crop map).
    """
    if not tiles:
        raise ValueError("demo_plan: no tiles")
    current = [s for s in seasons if s.role == "current"]
    if not current:
        raise ValueError(f"demo_plan: no season has role 'current' among "
                         f"{[s.id for s in seasons]}")
    weeks = all_weeks(list(seasons))
    by_k: dict[int, list[SeasonWeek]] = {}
    for w in weeks:
        by_k.setdefault(w.week_of_season, []).append(w)
    steps: list[DemoStep] = []
    for k in sorted(by_k):
        this = by_k[k]
        mapped = [w for w in this if w.season.role == "current"]
        steps.append(DemoStep(("raw_scenes", "weekly_cube"), _tile_keys(tiles, this),
                              f"week {k}: scenes and cubes"))
        if mapped:
            steps.append(DemoStep(("sos_map", "coverage_map"), _tile_keys(tiles, mapped),
                                  f"week {k}: SOS and coverage maps"))
        steps.append(DemoStep(("scalograms",), tuple(w.key for w in this),
                              f"week {k}: scalograms"))
        if k >= min_weeks:
            steps.append(DemoStep(("cnn2d_checkpoint",), (f"{k:02d}",),
                                  f"week {k}: CNN2D checkpoint k={k:02d}"))
            if mapped:
                steps.append(DemoStep(("week_model",), tuple(w.key for w in mapped),
                                      f"week {k}: model record"))
                steps.append(DemoStep(("crop_map",), _tile_keys(tiles, mapped),
                                      f"week {k}: crop maps"))
        for w in mapped:
            steps.append(DemoStep(("week_layers",), (w.key,), f"week {k}: publish",
                                  publishes=w.key))
    steps.append(DemoStep(("knee_report",), (), "knee report"))
    for w in all_weeks(current):
        label = f"week {w.week_of_season}: with the knee"
        if w.week_of_season >= min_weeks:
            steps.append(DemoStep(("week_model",), (w.key,), label, refresh_after_knee=True))
            steps.append(DemoStep(("crop_map",), _tile_keys(tiles, [w]), label,
                                  refresh_after_knee=True))
        steps.append(DemoStep(("week_layers",), (w.key,), label, publishes=w.key,
                              refresh_after_knee=True))
    others = [w for w in weeks if w.season.role != "current"]
    if others:
        steps.append(DemoStep(("sos_map",), _tile_keys(tiles, others),
                              "SOS maps of the other seasons"))
    return steps
