"""Command line of the world generator: ``python -m cropassets.world``, ``demo-world``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

FULL_TILE = 10980
"""Edge of a Sentinel-2 MGRS tile in 10 m pixels."""


def world_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """``generate_world`` keyword arguments from parsed ``args`` (``--full-tile``, ``--weeks``)."""
    from cropassets.world.config import DEFAULT_SEASONS

    size, tiles, seasons = args.size, args.tiles, list(DEFAULT_SEASONS)
    weeks = args.weeks
    if getattr(args, "full_tile", False):
        size, tiles = FULL_TILE, 1
        seasons = [s for s in seasons if s.role == "current"]
        weeks = weeks or 3
    if weeks is not None:
        if weeks < 1:
            raise ValueError(f"--weeks must be at least 1, got {weeks}")
        seasons = [replace(s, weeks=weeks) for s in seasons]
    workers = getattr(args, "workers", None)
    if workers is None and size * size * tiles > 50_000_000:
        workers = 1  # a full-tile scene takes ~14 GB while it is rendered
    return {"seed": args.seed, "size": size, "tiles": tiles, "seasons": seasons,
            "workers": workers}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the generator's options to ``parser``."""
    parser.add_argument("--out", type=Path, required=True, help="world folder to write")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--size", type=int, default=512,
                        help="tile edge in 10 m pixels, even (default 512)")
    parser.add_argument("--tiles", type=int, default=4, help="number of tiles (default 4)")
    parser.add_argument("--weeks", type=int, default=None,
                        help="weeks of each season (default 28; 3 with --full-tile)")
    parser.add_argument("--full-tile", action="store_true",
                        help=f"one Sentinel-2-sized tile ({FULL_TILE} x {FULL_TILE} px) and "
                             "only the current season (3 weeks unless --weeks): the world "
                             "of bench/bench_full_tile.py; about 20 CPU-minutes, 15 GB of "
                             "memory and 7 GB of disk")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes rendering scenes (default: automatic)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Generate the world described by parsed ``args``; returns an exit code."""
    from cropassets.world.generate import generate_world

    t0 = time.perf_counter()
    step = [0]

    def progress(done: int, total: int, message: str) -> None:
        if args.quiet:
            return
        if done == total or done == 1 or done - step[0] >= max(1, total // 20):
            step[0] = done
            print(f"[{done:4d}/{total}] {time.perf_counter() - t0:6.1f}s {message}",
                  file=sys.stderr, flush=True)

    try:
        out = generate_world(args.out, progress=progress, **world_parameters(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(str(out))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` and generate."""
    parser = argparse.ArgumentParser(prog="python -m cropassets.world",
                                     description="Generate the synthetic Sentinel-1/2 world.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
